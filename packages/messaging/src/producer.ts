/** The producer: turns `SendInput`s into stored messages. */
import { InvalidOptionsError, systemClock, type Clock } from '@bulwark/core';
import {
  checkClock,
  describeValue,
  rejectUnknownKeys,
  requireObject,
  requireText,
} from './validate.js';
import type { QueueBackend } from './backend.js';
import { newMessageId, type EnqueueRecord, type SendInput } from './message.js';

export interface ProducerOptions {
  backend: QueueBackend;
  /** Default: the system clock. Message times come from `clock.wallNow()`. */
  clock?: Clock;
}

export interface Producer {
  /** Stores one message; resolves with its id once the backend has it. */
  send<P>(input: SendInput<P>): Promise<string>;
  /** Stores all messages or none (one backend call); resolves with their ids in order. */
  sendBatch(inputs: readonly SendInput[]): Promise<string[]>;
}

export function createProducer(options: ProducerOptions): Producer {
  const where = 'createProducer';
  requireObject(where, options);
  rejectUnknownKeys(where, options, ['backend', 'clock']);
  checkBackend(where, options.backend);
  const backend = options.backend;
  const clock = checkClock(where, options.clock) ?? systemClock;
  return {
    async send(input) {
      const record = toRecord(input, clock.wallNow());
      await backend.enqueue([record]);
      return record.id;
    },
    async sendBatch(inputs) {
      const list: unknown = inputs;
      if (!Array.isArray(list)) {
        throw new InvalidOptionsError(
          `sendBatch: expected an array of messages, got ${describeValue(inputs)}`,
        );
      }
      const now = clock.wallNow();
      const records = inputs.map(input => toRecord(input, now));
      if (records.length > 0) await backend.enqueue(records);
      return records.map(r => r.id);
    },
  };
}

const SEND_KEYS = ['queue', 'type', 'payload', 'headers', 'idempotencyKey', 'delayMs', 'id'];

/** Validates a `SendInput` and stamps it with ids and times. Shared with the outbox. */
export function toRecord(input: SendInput, now: number): EnqueueRecord {
  const where = 'send';
  requireObject(where, input);
  rejectUnknownKeys(where, input, SEND_KEYS);
  requireText(where, 'queue', input.queue);
  requireText(where, 'type', input.type);
  if (input.payload === undefined) {
    throw new InvalidOptionsError(
      `${where}: payload is required (any JSON value; use null for "no payload")`,
    );
  }
  const headers = input.headers ?? {};
  if (typeof headers !== 'object' || headers === null) {
    throw new InvalidOptionsError(`${where}: headers must be an object of strings`);
  }
  for (const [key, value] of Object.entries(headers)) {
    if (typeof value !== 'string') {
      throw new InvalidOptionsError(
        `${where}: header "${key}" must be a string, got ${describeValue(value)}; stringify it`,
      );
    }
  }
  if (input.idempotencyKey !== undefined)
    requireText(where, 'idempotencyKey', input.idempotencyKey);
  if (input.id !== undefined) requireText(where, 'id', input.id);
  const delayMs = input.delayMs ?? 0;
  if (typeof delayMs !== 'number' || !(delayMs >= 0) || !Number.isFinite(delayMs)) {
    throw new InvalidOptionsError(
      `${where}: delayMs must be a finite number >= 0 (milliseconds), got ${describeValue(delayMs)}`,
    );
  }
  const base = {
    id: input.id ?? newMessageId(now),
    queue: input.queue,
    type: input.type,
    payload: input.payload,
    headers: { ...headers },
    availableAt: now + delayMs,
    firstSeenAt: now,
  };
  // Not `{ ...base, idempotencyKey }`: on Node 20 a spread followed by a new property takes
  // V8's slow path (about 1 µs); adding it to the literal does not.
  return input.idempotencyKey === undefined
    ? base
    : Object.assign(base, { idempotencyKey: input.idempotencyKey });
}

export function checkBackend(where: string, backend: unknown): void {
  const b = backend as Partial<QueueBackend> | null | undefined;
  if (
    b === null ||
    typeof b !== 'object' ||
    typeof b.enqueue !== 'function' ||
    typeof b.fetch !== 'function' ||
    typeof b.settle !== 'function'
  ) {
    throw new InvalidOptionsError(
      `${where}: backend must implement QueueBackend (for example memoryQueueBackend() or the Postgres backend from @bulwark/postgres), got ${describeValue(backend)}`,
    );
  }
}
