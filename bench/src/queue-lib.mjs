/**
 * Helpers of the queue benchmarks (`queue-pg.mjs`, `queue-latency.mjs`, `queue-redis.mjs`):
 * service URLs from the environment, unique names per run, optional imports (a variant whose
 * package or export is missing is reported as n/a), throughput and latency arithmetic, and the
 * clean-up of what a run created on a shared server.
 */
import process from 'node:process';
import pg from 'pg';

/** Messages a throughput operation moves; `--quick` is 10x fewer. */
export function sizes(quick) {
  return quick
    ? { bulk: 1_000, bulkBatch: 1_000, single: 100, process: 1_000, warmup: 200 }
    : { bulk: 10_000, bulkBatch: 1_000, single: 1_000, process: 10_000, warmup: 1_000 };
}

/** Handlers at once / messages per fetch, for every process-and-complete operation. */
export const CONCURRENCY = 100;

/** Longest wait for one operation to finish before the run reports an error, ms. */
export const OPERATION_TIMEOUT_MS = 120_000;

/** A returns-undefined-when-set check for `requires`, naming the variable to set. */
export function requireEnv(name, example) {
  return () =>
    process.env[name] ? undefined : `${name} is not set (e.g. ${name}=${example}): skipped`;
}

/**
 * The `requires` of a broker scenario's bulwark variant: the broker's URL set, `@bulwark/messaging`
 * and the adapter built (its factory `factory` exported).
 */
export function requiresBulwarkAdapter(requiresUrl, messaging, adapter, factory, packageName) {
  return () =>
    requiresUrl() ??
    (typeof adapter?.[factory] === 'function' && typeof messaging?.consume === 'function'
      ? undefined
      : `${packageName} is not built or has no ${factory} (npx tsc -b)`);
}

/**
 * A lower-case identifier no other run uses (schema names, queue names, key prefixes): the
 * process id and the time, so runs in parallel or one after the other never meet.
 */
export function uniqueName(prefix) {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}`;
}

/** Imports `specifier`, or returns undefined when it is not installed or not built. */
export async function optionalImport(specifier) {
  try {
    return await import(specifier);
  } catch {
    return undefined;
  }
}

/** Messages per second. */
export function perSecond(count, elapsedNs) {
  return count / (elapsedNs / 1e9);
}

export function hrNow() {
  return process.hrtime.bigint();
}

/** Runs `fn` and returns its result with the elapsed ns. */
export async function timed(fn) {
  const start = hrNow();
  const value = await fn();
  return { value, elapsedNs: Number(hrNow() - start) };
}

/** The p-th percentile (0–100) of an already sorted array, nearest rank. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/**
 * A counter of handled messages that resolves `done` when `expected` distinct ids were seen and
 * rejects it on a duplicate (a message handled twice is a broken run, not a fast one).
 */
export function completionTracker(expected) {
  const seen = new Set();
  let resolve;
  let reject;
  const done = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(
    () => reject(new Error(`only ${seen.size} of ${expected} messages handled in time`)),
    OPERATION_TIMEOUT_MS,
  );
  timer.unref();
  return {
    done,
    get count() {
      return seen.size;
    },
    handled(id) {
      if (seen.has(id)) {
        reject(new Error(`message ${id} was handled twice`));
        return;
      }
      seen.add(id);
      if (seen.size === expected) {
        clearTimeout(timer);
        resolve();
      }
    },
  };
}

/** Drops `schema` (and everything in it) on the server at `url`; errors are reported, not thrown. */
export async function dropSchema(url, schema) {
  const client = new pg.Client({ connectionString: url, application_name: 'bulwark-bench' });
  try {
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
  } catch (error) {
    process.stderr.write(`bench: could not drop schema ${schema}: ${String(error)}\n`);
  } finally {
    await client.end().catch(() => {});
  }
}

/** A small JSON payload, the same for every library. */
export function payload(i) {
  return { n: i, kind: 'bench' };
}

/**
 * The bulwark side of a throughput scenario on any queue backend: `@bulwark/messaging`'s producer
 * (`sendBatch`) and `consume()` at concurrency = prefetch = CONCURRENCY with a no-op handler,
 * timed until the last handler ran and `stop()` returned (it waits for the acks). `close(queues)`
 * runs after the backend is closed, with the queue names the run used, to remove what it created.
 * Arrow functions, so a scenario can hand them on detached (queue-pg's `bulk: subject.enqueue`).
 */
export function bulwarkQueueSubject(messaging, backend, close) {
  const producer = messaging.createProducer({ backend });
  const used = new Set();
  return {
    enqueue: async (queue, count, batch) => {
      used.add(queue);
      for (let i = 0; i < count; i += batch) {
        const n = Math.min(batch, count - i);
        await producer.sendBatch(
          Array.from({ length: n }, (_, j) => ({ queue, type: 'bench', payload: payload(i + j) })),
        );
      }
    },
    process: async (queue, count) => {
      const tracker = completionTracker(count);
      const consumer = messaging.consume({
        backend,
        queue,
        maxAttempts: 3,
        concurrency: CONCURRENCY,
        prefetch: CONCURRENCY,
        handler: message => {
          tracker.handled(message.id);
        },
      });
      try {
        await tracker.done;
      } finally {
        await consumer.stop(); // waits for the running handlers' acks
      }
    },
    remaining: async queue => {
      const s = await backend.stats(queue, Date.now());
      return s.ready + s.scheduled + s.leased;
    },
    close: async () => {
      await backend.close?.();
      await close?.([...used]);
    },
  };
}

/** How long a non-zero count of messages left is read again before it counts as left, in ms. */
const SETTLE_MS = 2_000;

/**
 * The count of messages left, read again every 50 ms for up to {@link SETTLE_MS} while it is not
 * 0. JetStream applies acks on the consumer's own goroutine after the connection has read them
 * (nats-server `consumer.go`, `processInboundAcks`), so its ack-pending count read right after the
 * last ack's PONG can still hold acks the server has. An ack that was lost keeps its message
 * pending for the whole ack wait or lease (15 s or more), so the re-read still tells the two apart. The
 * other backends answer 0 on the first read (`remainingSettledAfterMs` in the JSON says).
 */
async function settledRemaining(read) {
  let left = await read();
  let waitedMs = 0;
  while (left !== 0 && waitedMs < SETTLE_MS) {
    await new Promise(resolve => setTimeout(resolve, 50));
    waitedMs += 50;
    left = await read();
  }
  return { left, waitedMs };
}

/**
 * One run of an enqueue-then-process scenario (`queue-redis`, `queue-rabbitmq`, `queue-nats`):
 * a warm-up on its own queue, then N messages enqueued in batches and processed, both timed; the
 * queue must be empty afterwards.
 */
export async function measureEnqueueAndProcess(subject, quick, queuePrefix = uniqueName('q')) {
  const n = sizes(quick);
  const q = queuePrefix;
  try {
    await subject.enqueue(`${q}_warm`, n.warmup, Math.min(n.warmup, n.bulkBatch));
    await subject.process(`${q}_warm`, n.warmup);
    globalThis.gc?.();

    const enqueue = await timed(() => subject.enqueue(`${q}_a`, n.process, n.bulkBatch));
    const proc = await timed(() => subject.process(`${q}_a`, n.process));
    const { left, waitedMs } = await settledRemaining(() => subject.remaining(`${q}_a`));
    if (left !== 0) {
      return { error: `${left} messages left after processing (read again for ${waitedMs} ms)` };
    }
    return {
      messages: n.process,
      remainingSettledAfterMs: waitedMs,
      bulkBatch: n.bulkBatch,
      concurrency: CONCURRENCY,
      ops: {
        enqueue: perSecond(n.process, enqueue.elapsedNs),
        process: perSecond(n.process, proc.elapsedNs),
      },
    };
  } finally {
    await subject.close();
  }
}
