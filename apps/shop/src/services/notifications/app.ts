/**
 * The notifications service: consumes `order.placed` and sends each order's confirmation through
 * the mail provider, once. Its HTTP side is for operators and demos: what was sent, the mail
 * provider's faults, the dead letters of its queue and their replay.
 */
import {
  exponentialBackoff,
  InvalidOptionsError,
  systemClock,
  type Backoff,
  type Clock,
  type Random,
} from '@bulwark/core';
import { consume, deadLetters, type Consumer, type QueueBackend } from '@bulwark/messaging';
import { inbox } from '@bulwark/postgres';
import type { FastifyInstance } from 'fastify';
import { createServiceApp, type ServiceOptions } from '../common/service-app.js';
import { NOTIFICATIONS_QUEUE } from '../orders/events.js';
import { orderConfirmationHandler } from './confirmation.js';
import { prepareNotifications } from './data.js';
import { FakeMailProvider } from './mail-provider.js';
import { usersRecipients, type Recipients } from './recipients.js';
import { registerOperatorRoutes } from './routes.js';

/** The notifications service's port in the one-process shop. */
export const NOTIFICATIONS_PORT = 3005;
/** Inbox scope of the confirmation effect. */
export const CONFIRMATION_INBOX = 'notifications.order-confirmation';

/** How the `order.placed` consumer retries. */
export interface ConfirmationConsumerOptions {
  /** Deliveries per message, the first included. Default 5. */
  maxAttempts?: number;
  /** Default exponential, full jitter, 1 s doubling to at most 60 s. */
  backoff?: Backoff;
  /** Per attempt (user look-up plus send), ms. Default 10_000. */
  handlerTimeoutMs?: number;
  /** Emails sent at once. Default 4. */
  concurrency?: number;
  /** Longest idle wait (wake-ups usually come sooner), ms. Default 1_000. */
  pollIntervalMs?: number;
  /** Jitter source. Default `Math.random`. */
  random?: Random;
}

export interface NotificationsServiceOptions extends Omit<ServiceOptions, 'seed'> {
  /** Where `order.placed` is consumed from (e.g. `postgresQueueBackend({ db })`). Required. */
  backend: QueueBackend;
  /** Queue to consume. Default `notifications`. */
  queue?: string;
  /** The mail provider. Default: a new `FakeMailProvider` on `clock`. */
  mail?: FakeMailProvider;
  /**
   * Where addresses come from. Default: the users service at `usersUrl` (else env `USERS_URL`,
   * else `http://127.0.0.1:3001`).
   */
  recipients?: Recipients;
  usersUrl?: string;
  consumer?: ConfirmationConsumerOptions;
  /** Consumer timers, inbox and send times. Default: the system clock. */
  clock?: Clock;
}

export interface NotificationsHandle {
  /** Started when the app is ready, stopped when it closes. */
  readonly consumer: Consumer;
  readonly mail: FakeMailProvider;
  readonly queue: string;
}

export type NotificationsApp = FastifyInstance & { readonly notifications: NotificationsHandle };

const KNOWN_CONSUMER = [
  'maxAttempts',
  'backoff',
  'handlerTimeoutMs',
  'concurrency',
  'pollIntervalMs',
  'random',
];

/** Migrates the `notifications` schema, then returns the app, not listening. */
export async function createNotificationsService(
  options: NotificationsServiceOptions,
): Promise<NotificationsApp> {
  const where = 'createNotificationsService';
  if (typeof options?.backend?.fetch !== 'function') {
    throw new InvalidOptionsError(
      `${where}: backend must be a QueueBackend, e.g. await postgresQueueBackend({ db })`,
    );
  }
  const {
    backend,
    queue = NOTIFICATIONS_QUEUE,
    mail: givenMail,
    recipients: givenRecipients,
    usersUrl,
    consumer: settings = {},
    clock = systemClock,
    ...rest
  } = options;
  for (const key of Object.keys(settings)) {
    if (!KNOWN_CONSUMER.includes(key)) {
      throw new InvalidOptionsError(
        `${where}: unknown consumer option "${key}"; known: ${KNOWN_CONSUMER.join(', ')}`,
      );
    }
  }
  const { db } = options;
  const mail = givenMail ?? new FakeMailProvider({ clock });
  const recipients =
    givenRecipients ??
    usersRecipients({
      usersUrl: usersUrl ?? process.env.USERS_URL ?? 'http://127.0.0.1:3001',
    });
  // Built (and its options checked) before the app, so bad options leave nothing to close.
  let consumer: Consumer;
  try {
    consumer = consume({
      backend,
      queue,
      clock,
      autoStart: false,
      maxAttempts: settings.maxAttempts ?? 5,
      backoff: settings.backoff ?? exponentialBackoff({ baseMs: 1_000, maxMs: 60_000 }),
      handlerTimeoutMs: settings.handlerTimeoutMs ?? 10_000,
      concurrency: settings.concurrency ?? 4,
      pollIntervalMs: settings.pollIntervalMs ?? 1_000,
      ...(settings.random === undefined ? {} : { random: settings.random }),
      // The consumer runs the handler under its own timeout, not under the deadline of the HTTP
      // request whose enqueue woke it (a replay, an order's relay kick).
      handler: orderConfirmationHandler({
        db,
        mail,
        recipients,
        clock,
        inbox: inbox({ db, name: CONFIRMATION_INBOX, clock }),
      }),
    });
  } catch (error) {
    if (givenRecipients === undefined) await recipients.close();
    throw error;
  }
  const { app } = await createServiceApp('notifications', { ...rest, seed: false });
  await prepareNotifications(db);

  consumer.onEvent(event => {
    if (event.type === 'message.dead') {
      app.log.warn(
        { messageId: event.message.id, reason: event.reason, error: event.error },
        'order confirmation dead-lettered',
      );
    } else if (event.type === 'backend.error') {
      app.log.error({ operation: event.operation, err: event.error }, 'queue backend error');
    }
  });

  registerOperatorRoutes(app, {
    mail,
    backend,
    queue,
    clock,
    dlq: deadLetters({ backend, clock }),
  });
  app.addHook('onReady', done => {
    consumer.start();
    done();
  });
  // preClose, not onClose: stop taking messages as soon as shutdown starts, and settle the ones
  // in flight while the database is still open (whoever closes it does so in an onClose hook).
  app.addHook('preClose', async () => {
    await consumer.stop();
    if (givenRecipients === undefined) await recipients.close();
  });

  const handle: NotificationsHandle = { consumer, mail, queue };
  app.decorate('notifications', handle);
  return app as NotificationsApp;
}
