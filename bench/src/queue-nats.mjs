/**
 * Queues on NATS JetStream: `@bulwark/nats`'s queue backend (with `@bulwark/messaging`'s
 * producer and consumer) against a bare `@nats-io/jetstream` consume-and-ack loop on the same
 * server (NATS_URL). Issue target: bulwark processes >= 0.7x the bare loop's messages/s. One run
 * of one variant, on fresh streams with a unique name prefix:
 *
 *   enqueue   N messages in batches of 1,000, each publish acknowledged by the server (bulwark
 *             sendBatch; bare: the batch's js.publish calls in parallel, awaited together)
 *   process   handle and ack those N at concurrency 100 (bulwark consume() with concurrency =
 *             prefetch = 100; bare: a durable pull consumer, consume({ max_messages: 100 }),
 *             msg.ack() per message), from the start of the consumer until the last one is acked
 *
 * after a warm-up on a separate queue. Both store the same JSON payload; every handled id is
 * counted once and the queue must be empty at the end.
 *
 *   node --expose-gc src/queue-nats.mjs --variant bare [--quick]
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
const natsAdapter = await optionalImport('@bulwark/nats');
const transport = await optionalImport('@nats-io/transport-node');
const jetstreamLib = await optionalImport('@nats-io/jetstream');

const NATS_URL = process.env.NATS_URL;
const requiresUrl = requireEnv('NATS_URL', 'nats://127.0.0.1:4222');

const variants = {
  bulwark: {
    label: '@bulwark/nats queue backend, producer + consume()',
    lib: '@bulwark/nats',
    role: 'subject',
    requires: requiresBulwarkAdapter(
      requiresUrl,
      messaging,
      natsAdapter,
      'natsQueueBackend',
      '@bulwark/nats',
    ),
    open: openBulwark,
  },
  bare: {
    label: '@nats-io/jetstream: js.publish, pull consumer consume({ max_messages: 100 }), ack each',
    lib: '@nats-io/jetstream',
    role: 'baseline',
    requires: () =>
      requiresUrl() ??
      (typeof jetstreamLib?.jetstream === 'function' ? undefined : '@nats-io/jetstream missing'),
    open: openBare,
  },
};

async function deleteStreams(names) {
  const nc = await transport.connect({ servers: NATS_URL });
  try {
    const jsm = await jetstreamLib.jetstreamManager(nc);
    for (const name of names) await jsm.streams.delete(name).catch(() => false);
  } finally {
    await nc.close();
  }
}

async function openBulwark() {
  const prefix = uniqueName('bb').replaceAll('-', '_');
  const backend = await natsAdapter.natsQueueBackend({ url: NATS_URL, prefix });
  const n = backend.names;
  return bulwarkQueueSubject(messaging, backend, () =>
    deleteStreams([n.queueStream, n.stateStream, n.deadStream, n.auditStream]),
  );
}

async function openBare() {
  const stream = uniqueName('bench_bare').replaceAll('-', '_');
  const nc = await transport.connect({ servers: NATS_URL });
  const js = jetstreamLib.jetstream(nc);
  const jsm = await jetstreamLib.jetstreamManager(nc);
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  const consumers = new Set();
  const consumerOf = async queue => {
    const name = `c_${queue}`;
    if (!consumers.has(name)) {
      await jsm.consumers.add(stream, {
        durable_name: name,
        filter_subject: `${stream}.${queue}`,
        ack_policy: jetstreamLib.AckPolicy.Explicit,
      });
      consumers.add(name);
    }
    return name;
  };
  return {
    async enqueue(queue, count, batch) {
      await consumerOf(queue);
      for (let i = 0; i < count; i += batch) {
        const n = Math.min(batch, count - i);
        await Promise.all(
          Array.from({ length: n }, (_, j) =>
            js.publish(
              `${stream}.${queue}`,
              JSON.stringify({ id: globalThis.crypto.randomUUID(), payload: payload(i + j) }),
            ),
          ),
        );
      }
    },
    async process(queue, count) {
      const tracker = completionTracker(count);
      const consumer = await js.consumers.get(stream, await consumerOf(queue));
      const messages = await consumer.consume({ max_messages: CONCURRENCY });
      const loop = (async () => {
        for await (const m of messages) {
          tracker.handled(m.json().id);
          m.ack();
        }
      })();
      try {
        await tracker.done;
      } finally {
        await nc.flush(); // the acks are on the wire
        await messages.close();
        await loop;
      }
    },
    async remaining(queue) {
      const info = await jsm.consumers.info(stream, await consumerOf(queue));
      return info.num_pending + info.num_ack_pending;
    },
    async close() {
      await jsm.streams.delete(stream).catch(() => false);
      await nc.close();
    },
  };
}

await runScenario(import.meta, 'queue-nats', variants, async (variant, { quick }) =>
  measureEnqueueAndProcess(await variant.open(), quick, uniqueName('q').replaceAll('-', '_')),
);
