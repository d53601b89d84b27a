import { describeQueueBackendContract } from '@bulwark/messaging/contract';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe } from 'vitest';
import { natsQueueBackend, type NatsQueueBackend } from './backend.js';

const url = process.env.NATS_URL;
if (url === undefined) {
  console.warn('contract.int.test.ts skipped: set NATS_URL=nats://127.0.0.1:4222');
}
// Streams of our own per run, deleted afterwards, so parallel runs never collide.
const prefix = `bwc${process.pid}${Date.now().toString(36)}`;

/** Deletes the backend's streams (and with them its consumers). */
async function dropStreams(backend: NatsQueueBackend): Promise<void> {
  const jsm = await jetstreamManager(backend.connection);
  const n = backend.names;
  for (const stream of [n.queueStream, n.stateStream, n.deadStream, n.auditStream]) {
    await jsm.streams.delete(stream).catch(() => false);
  }
}

describe.skipIf(url === undefined)('nats queue backend: contract', () => {
  let backend: NatsQueueBackend;

  beforeAll(async () => {
    backend = await natsQueueBackend({ url: url!, prefix, ackWaitMarginMs: 2_000 });
  }, 30_000);

  afterAll(async () => {
    if (backend === undefined) return;
    await dropStreams(backend);
    await backend.close();
  });

  // The broker owns the waits (nak delays, ack wait): the harness runs on real time.
  describeQueueBackendContract('nats', () => ({ backend, timing: 'broker' }));
});
