// The "nothing lost" crash run on NATS JetStream: 10,000 messages, a worker process SIGKILLed
// three times, every effect once or in the DLQ with its history, then a replay that drains the
// DLQ. Workers import the built copy of crash-worker.ts: run `npx tsc -b` first.
import { fileURLToPath } from 'node:url';
import { builtCopyOf, describeCrashScenario } from '@bulwark/messaging/contract';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { describe } from 'vitest';
import { openCrashSubject } from './crash-worker.js';

const url = process.env.NATS_URL;
if (url === undefined) {
  console.warn('crash.int.test.ts skipped: set NATS_URL=nats://127.0.0.1:4222');
}
// Streams of our own per run, deleted afterwards.
const prefix = `bwk${process.pid}${Date.now().toString(36)}`;

describe.skipIf(url === undefined)('nats', () => {
  describeCrashScenario('NATS JetStream', () => ({
    open: openCrashSubject,
    subjectModule: builtCopyOf(fileURLToPath(new URL('./crash-worker.ts', import.meta.url))),
    params: { url: url!, prefix },
    total: 10_000,
    cleanup: async () => {
      const nc = await connect({ servers: url! });
      try {
        const jsm = await jetstreamManager(nc);
        for (const name of ['queues', 'state', 'dead', 'audit', 'effects']) {
          await jsm.streams.delete(`${prefix}_${name}`).catch(() => false);
        }
      } finally {
        await nc.close();
      }
    },
  }));
});
