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
