/**
 * Queues on RabbitMQ: `@bulwark/rabbitmq`'s queue backend (with `@bulwark/messaging`'s producer
 * and consumer) against a bare amqplib consume-and-ack loop on the same broker (AMQP_URL). Issue
 * target: bulwark processes >= 0.7x the bare loop's messages/s. One run of one variant, on
 * fresh quorum queues with a unique name prefix:
 *
 *   enqueue   N messages in batches of 1,000 with publisher confirms (bulwark sendBatch; bare:
 *             publish to the quorum queue on a confirm channel, waitForConfirms per batch)
 *   process   handle and ack those N at concurrency 100 (bulwark consume() with concurrency =
 *             prefetch = 100; bare basic.consume with prefetch 100, channel.ack per message),
 *             from the start of the consumer until the last one is acked
 *
 * after a warm-up on a separate queue. Both store the same JSON payload; every handled id is
 * counted once and the queue must be empty at the end.
 *
 *   node --expose-gc src/queue-rabbitmq.mjs --variant bare [--quick]
 */
import process from 'node:process';
import { runScenario } from './lib.mjs';
import {
  bulwarkQueueSubject,
  completionTracker,
  CONCURRENCY,
  measureEnqueueAndProcess,
  optionalImport,
  payload,
  requireEnv,
  requiresBulwarkAdapter,
  uniqueName,
} from './queue-lib.mjs';

const messaging = await optionalImport('@bulwark/messaging');
const rabbitmq = await optionalImport('@bulwark/rabbitmq');
const amqplib = await optionalImport('amqplib');

const AMQP_URL = process.env.AMQP_URL;
const requiresUrl = requireEnv('AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672');

const variants = {
  bulwark: {
    label: '@bulwark/rabbitmq queue backend, producer + consume()',
    lib: '@bulwark/rabbitmq',
    role: 'subject',
    requires: requiresBulwarkAdapter(
      requiresUrl,
      messaging,
      rabbitmq,
      'rabbitmqQueueBackend',
      '@bulwark/rabbitmq',
    ),
    open: openBulwark,
  },
  bare: {
    label: 'amqplib: confirm-channel publish, basic.consume prefetch 100, ack each',
    lib: 'amqplib',
    role: 'baseline',
    requires: () =>
      requiresUrl() ?? (typeof amqplib?.connect === 'function' ? undefined : 'amqplib missing'),
    open: openBare,
  },
};

/** Deletes the named queues (a shared broker: only what this run declared). */
async function deleteQueues(names) {
  const connection = await amqplib.connect(AMQP_URL);
  try {
    for (const name of names) {
      const channel = await connection.createChannel();
      await channel.deleteQueue(name).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

async function openBulwark() {
  const prefix = uniqueName('bench-bulwark');
  const backend = await rabbitmq.rabbitmqQueueBackend({ url: AMQP_URL, prefix });
  return bulwarkQueueSubject(messaging, backend, queues =>
    deleteQueues([...queues.map(q => `${prefix}.q.${q}`), `${prefix}.dead-letters`]),
  );
}

async function openBare() {
  const prefix = uniqueName('bench-bare');
  const connection = await amqplib.connect(AMQP_URL);
  const publisher = await connection.createConfirmChannel();
  const declared = new Set();
  const nameOf = queue => `${prefix}.${queue}`;
  const declare = async queue => {
    if (declared.has(queue)) return;
    await publisher.assertQueue(nameOf(queue), {
      durable: true,
      arguments: { 'x-queue-type': 'quorum' },
    });
    declared.add(queue);
  };
  return {
    async enqueue(queue, count, batch) {
      await declare(queue);
      for (let i = 0; i < count; i += batch) {
        const n = Math.min(batch, count - i);
        for (let j = 0; j < n; j++) {
          const body = { id: globalThis.crypto.randomUUID(), payload: payload(i + j) };
          publisher.sendToQueue(nameOf(queue), Buffer.from(JSON.stringify(body)), {
            persistent: true,
            contentType: 'application/json',
          });
        }
        await publisher.waitForConfirms();
      }
    },
    async process(queue, count) {
      const tracker = completionTracker(count);
      const channel = await connection.createChannel();
      await channel.prefetch(CONCURRENCY);
      const { consumerTag } = await channel.consume(nameOf(queue), msg => {
        if (msg === null) return;
        const body = JSON.parse(msg.content.toString('utf8'));
        tracker.handled(body.id);
        channel.ack(msg);
      });
      try {
        await tracker.done;
      } finally {
        await channel.cancel(consumerTag);
        await channel.close(); // flushes the acks already written
      }
    },
    async remaining(queue) {
      const { messageCount } = await publisher.checkQueue(nameOf(queue));
      return messageCount;
    },
    async close() {
      await publisher.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
      await deleteQueues([...declared].map(nameOf));
    },
  };
}

await runScenario(import.meta, 'queue-rabbitmq', variants, async (variant, { quick }) =>
  measureEnqueueAndProcess(await variant.open(), quick),
);
