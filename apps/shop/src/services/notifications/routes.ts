/**
 * Operator and demo routes of the notifications service: what the fake provider sent, its faults
 * (so chaos runs and a person with curl can make it fail), the queue's depth, and the dead
 * letters of the queue with their replay.
 */
import { isBulwarkError, type Clock } from '@bulwark/core';
import type { DeadLetter, DeadLetterOps, QueueBackend } from '@bulwark/messaging';
import { ProblemError, ProblemTypes } from '@bulwark/http/fastify';
import type { FastifyInstance } from 'fastify';
import { checkFault, type FakeMailProvider } from './mail-provider.js';

export interface OperatorRoutesOptions {
  mail: FakeMailProvider;
  backend: QueueBackend;
  dlq: DeadLetterOps;
  queue: string;
  clock: Clock;
}

const limitQuery = {
  type: 'object',
  properties: { limit: { type: 'integer', minimum: 1, maximum: 1_000, default: 50 } },
} as const;

function badFault(error: unknown): ProblemError {
  const message = error instanceof Error ? error.message : String(error);
  return new ProblemError({
    status: 400,
    type: ProblemTypes.validation,
    title: 'Validation Failed',
    detail: `The request is invalid: body ${message}.`,
    code: 'VALIDATION_FAILED',
    retryable: false,
    extensions: { errors: [{ field: '', in: 'body', message }] },
  });
}

function summary(letter: DeadLetter) {
  return {
    id: letter.id,
    type: letter.message.type,
    idempotencyKey: letter.message.idempotencyKey ?? null,
    payload: letter.message.payload,
    reason: letter.reason,
    lastError: letter.lastError,
    attempts: letter.attempts.map(a => ({
      attempt: a.attempt,
      code: a.code,
      message: a.message,
      endedAt: new Date(a.endedAt).toISOString(),
    })),
    deadAt: new Date(letter.deadAt).toISOString(),
  };
}

export function registerOperatorRoutes(app: FastifyInstance, o: OperatorRoutesOptions): void {
  const { mail, dlq, queue } = o;

  app.get<{ Querystring: { limit: number } }>(
    '/sent',
    { schema: { querystring: limitQuery } },
    request => {
      const all = mail.sent;
      return Promise.resolve({
        total: all.length,
        // The newest `limit`, oldest first.
        items: all.slice(-request.query.limit).map(m => ({
          messageId: m.messageId,
          to: m.to,
          subject: m.subject,
          idempotencyKey: m.idempotencyKey,
          sentAt: new Date(m.sentAt).toISOString(),
        })),
      });
    },
  );

  app.get('/faults', () => Promise.resolve({ items: mail.faults }));

  app.post('/faults', (request, reply) => {
    try {
      checkFault(request.body);
    } catch (error) {
      if (isBulwarkError(error)) throw badFault(error);
      throw error;
    }
    return reply.code(201).send(mail.addFault(request.body));
  });

  app.delete('/faults', () => Promise.resolve({ removed: mail.clearFaults() }));

  app.delete<{ Params: { id: number } }>(
    '/faults/:id',
    {
      schema: {
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'integer', minimum: 1 } },
        },
      },
    },
    request => Promise.resolve({ removed: mail.clearFaults(request.params.id) }),
  );

  app.get('/queue', async () => ({
    queue,
    ...(await o.backend.stats(queue, o.clock.wallNow())),
  }));

  app.get<{ Querystring: { limit: number } }>(
    '/dead-letters',
    { schema: { querystring: limitQuery } },
    async request => {
      const page = await dlq.list({ queue }, { limit: request.query.limit });
      return { items: page.items.map(summary), more: page.next !== undefined };
    },
  );

  app.post<{ Body: { ids?: string[]; dryRun?: boolean } | null }>(
    '/dead-letters/replay',
    {
      schema: {
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            ids: {
              type: 'array',
              minItems: 1,
              maxItems: 1_000,
              items: { type: 'string', minLength: 1 },
            },
            dryRun: { type: 'boolean' },
          },
        },
      },
    },
    async request => {
      const body = request.body ?? {};
      const result = await dlq.replay({
        filter: body.ids === undefined ? { queue } : { queue, ids: body.ids },
        dryRun: body.dryRun ?? false,
        actor: 'notifications-http',
      });
      return {
        dryRun: result.dryRun,
        matched: result.matched,
        ids: result.ids,
        messageIds: result.messageIds,
      };
    },
  );
}
