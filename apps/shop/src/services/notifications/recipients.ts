/**
 * Who gets the confirmation: the notifications service asks the users service (which owns the
 * profiles) over HTTP at send time, rather than carrying the address in the event, so an email
 * goes to the address the user has now, and the orders service never handles addresses. When the
 * users service is down the lookup throws a retryable error and the message is retried with
 * backoff; an unknown user is answered `undefined`, which no retry can fix.
 */
import { timeout, retry, exponentialBackoff } from '@bulwark/core';
import { httpDependency, type HttpDependency } from '@bulwark/http';

export interface Recipient {
  email: string;
  name: string;
}

export interface Recipients {
  /** The user's address and name, or undefined when there is no such user. */
  lookup(userId: number, options: { signal: AbortSignal }): Promise<Recipient | undefined>;
  close(): Promise<void>;
}

export interface UsersRecipientsOptions {
  /** Base URL of the users service, e.g. `http://127.0.0.1:3001`. */
  usersUrl: string;
  /** Per attempt, ms. Default 500. Two attempts at most. */
  attemptTimeoutMs?: number;
}

export function usersRecipients(options: UsersRecipientsOptions): Recipients {
  const users: HttpDependency = httpDependency({
    name: 'users',
    baseUrl: options.usersUrl,
    connectTimeoutMs: 500,
    // A 404 is an answer (no such user), not a failure to retry or count against the breaker.
    acceptStatus: status => (status >= 200 && status < 300) || status === 404,
    policies: [
      retry({
        name: 'users.retry',
        maxAttempts: 2,
        backoff: exponentialBackoff({ baseMs: 20, maxMs: 100 }),
      }),
      timeout({ name: 'users.attempt', timeoutMs: options.attemptTimeoutMs ?? 500 }),
    ],
  });
  return {
    async lookup(userId, { signal }) {
      const res = await users.request<{ email: string; name: string }>({
        path: `/users/${userId}`,
        signal,
      });
      if (res.status === 404) return undefined;
      return { email: res.body.email, name: res.body.name };
    },
    close: () => users.close(),
  };
}
