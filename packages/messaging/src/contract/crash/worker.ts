/**
 * The consumer side of a crash run, in its own process: consumes with concurrency, applies each
 * message's effect through the subject's inbox, and reports progress to the parent, which may
 * SIGKILL it at any point. Nothing here tries to survive the kill: surviving it is the backend's
 * and the inbox's job.
 */
import { exponentialBackoff, seededRandom } from '@bulwark/core';
import { consume } from '../../consumer.js';
import { fail, retry } from '../../outcome.js';
import { crashMessageKind, type CrashPayload } from './plan.js';
import {
  drained,
  type CrashProgress,
  type CrashWorkerConfig,
  type ParentToWorker,
  type WorkerToParent,
} from './protocol.js';
import type { CrashSubject } from './subject.js';

export interface CrashWorkerIo {
  send(message: WorkerToParent): Promise<void>;
  onMessage(listener: (message: ParentToWorker) => void): void;
}

/** Runs until the parent says stop (resolves after the final report) or the process dies. */
export async function runCrashWorker(
  config: CrashWorkerConfig,
  subject: CrashSubject,
  io: CrashWorkerIo,
): Promise<void> {
  const { queue } = config.subject;
  const c = config.consumer;
  let applied = 0;
  let duplicates = 0;
  let deadHere = 0;
  let recovered = 0;
  let holdRequested = false;
  let holding = false;
  // Counted once: from then on this worker is the only writer, so it can count in memory.
  const baseline = await subject.countEffects();
  const deadBefore = (await subject.backend.stats(queue, Date.now())).dead;

  const consumer = consume<CrashPayload>({
    backend: subject.backend,
    queue,
    maxAttempts: c.maxAttempts,
    concurrency: c.concurrency,
    prefetch: c.prefetch,
    leaseMs: c.leaseMs,
    pollIntervalMs: c.pollIntervalMs,
    backoff: exponentialBackoff({ baseMs: c.backoffBaseMs, maxMs: c.backoffMaxMs }),
    // Each process its own stream: a restarted worker should not replay the same jitter.
    random: seededRandom((config.seed * 31 + process.pid) | 0),
    handler: async message => {
      const index = message.payload.index;
      const kind = crashMessageKind(index);
      if (kind === 'poison' && !config.fixPoison) {
        return fail({ code: 'POISON', message: `message ${index} is poison` });
      }
      if (kind === 'transient' && message.attempt === 1) {
        return retry({ code: 'TRANSIENT', reason: `message ${index} fails its first attempt` });
      }
      if (await subject.applyEffect(message, index)) {
        applied++;
        if (holdRequested && !holding) {
          holding = true;
          await io.send({ type: 'held', index });
          // Never settles: the effect is committed, the ack never goes out; SIGKILL comes next.
          await new Promise(() => undefined);
        }
      } else {
        duplicates++;
        // Awaited before the ack: if this worker dies first, the message comes back and is
        // reported again, so the parent hears of every suppressed effect at least once.
        await io.send({ type: 'duplicate', index });
      }
      return undefined;
    },
  });
  consumer.onEvent(event => {
    if (event.type === 'message.dead') deadHere++;
    else if (event.type === 'lease.recovered') recovered += event.count;
    else if (event.type === 'backend.error') {
      console.error(`crash worker ${process.pid}: ${event.operation} failed:`, event.error);
    }
  });

  const progress = async (withStats: boolean): Promise<CrashProgress> => {
    const counts = {
      effects: baseline + applied,
      dead: deadBefore + deadHere,
      applied,
      duplicates,
      recovered,
    };
    return withStats
      ? { ...counts, stats: await subject.backend.stats(queue, Date.now()) }
      : counts;
  };

  let reporting = false;
  const timer = setInterval(() => {
    // One report at a time: a slow stats query must not pile up behind the consumer's own calls.
    if (reporting) return;
    reporting = true;
    progress(consumer.held === 0)
      .then(p => io.send({ type: 'progress', ...p }))
      .catch((error: unknown) => console.error(`crash worker ${process.pid}: report failed`, error))
      .finally(() => (reporting = false));
  }, config.progressIntervalMs);

  await new Promise<void>(resolve => {
    io.onMessage(message => {
      if (message.type === 'stop') resolve();
      else holdRequested = true;
    });
  });
  clearInterval(timer);
  await consumer.stop();
  const final = await progress(true);
  if (!drained(final.stats)) {
    console.error(`crash worker ${process.pid}: stopped with messages left`, final.stats);
  }
  await subject.close();
  await io.send({ type: 'stopped', ...final });
}
