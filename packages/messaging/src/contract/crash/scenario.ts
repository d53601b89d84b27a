/**
 * The parent side of a crash run ("nothing lost", DESIGN.md principle 6): enqueue N messages,
 * consume them in a worker process that is SIGKILLed several times mid-flight (a new one started
 * after each kill), wait until the queue is empty, then read back the effects and the dead
 * letters; optionally "fix" the poison, replay the DLQ and consume again.
 *
 * The parent never touches the store while a worker runs: it observes through the worker's
 * progress reports. That is what lets the same run work on PGlite, whose data folder belongs to
 * one process at a time, as on a server.
 */
import { InvalidOptionsError, seededRandom } from '@bulwark/core';
import type { DeadLetter, QueueStats } from '../../backend.js';
import { deadLetters } from '../../dead-letters.js';
import { createProducer } from '../../producer.js';
import { CRASH_MESSAGE_TYPE, countOfKind, crashIdempotencyKey } from './plan.js';
import { workerScript } from './built.js';
import { drained, type CrashProgress, type CrashWorkerConfig } from './protocol.js';
import type { CrashSubject, OpenCrashSubject } from './subject.js';
import { WorkerProcess } from './worker-process.js';

export interface CrashScenarioOptions {
  /** Opens the subject in this process (to enqueue, replay and check). */
  open: OpenCrashSubject;
  /**
   * Absolute path of the BUILT module (ESM .js) exporting `openCrashSubject`, which the workers
   * import; Node 20 cannot run TypeScript. `builtCopyOf(sourcePath)` finds it.
   */
  subjectModule: string;
  /** Adapter-specific strings handed to `open` here and in the workers. */
  params?: Readonly<Record<string, string>>;
  /** Unique per run. Default: pid + time. */
  runId?: string;
  /** Messages. Default 10_000. */
  total?: number;
  /** SIGKILLs of the worker, spread evenly over the run (k / (kills + 1) done). Default 3. */
  kills?: number;
  /** Seeds the kill points' jitter (±2% of the run) and the workers' backoff jitter. Default 1. */
  seed?: number;
  /** Handlers at once per worker. Default 8. */
  concurrency?: number;
  /** Leases held per worker. Default 2 × concurrency. */
  prefetch?: number;
  /** Lease length, ms: a killed worker's messages come back after it. Default 2_000. */
  leaseMs?: number;
  /** Default 10: enough that kills plus the one transient failure never dead-letter a message. */
  maxAttempts?: number;
  /** The workers' idle poll and expired-lease scan interval, ms. Default 200. */
  pollIntervalMs?: number;
  /** Worker progress report interval, ms. Default 100. */
  progressIntervalMs?: number;
  /** Longest time a phase (crash run, replay run) may take, ms. Default 120_000. */
  timeoutMs?: number;
  /** Replay the DLQ with the poison fixed and consume again. Default true. */
  replay?: boolean;
  /** Progress lines (kills, phases). Default: none. */
  log?: (line: string) => void;
}

export interface CrashKill {
  readonly pid: number;
  /** The worker's last report before the kill. */
  readonly progress: CrashProgress;
  /** `effects + dead` that triggered it. */
  readonly target: number;
  /** The message whose effect had committed but whose ack had not been sent when it died. */
  readonly heldIndex: number;
}

/** What the store holds after a phase, read by the parent once no worker runs. */
export interface CrashSnapshot {
  /** Message index → effect rows. */
  readonly effects: ReadonlyMap<number, number>;
  readonly effectRows: number;
  readonly deadLetters: readonly DeadLetter[];
  readonly stats: QueueStats;
}

export interface CrashReport {
  readonly runId: string;
  readonly queue: string;
  readonly total: number;
  readonly poison: number;
  readonly transient: number;
  readonly kills: readonly CrashKill[];
  /** Worker processes started in the crash phase (kills + 1). */
  readonly workers: number;
  /** Expired leases the workers recovered (as last reported; a killed worker may under-report). */
  readonly recovered: number;
  /** Redelivered messages whose effect the inbox refused, by index (each reported once). */
  readonly duplicates: readonly number[];
  readonly afterCrash: CrashSnapshot;
  readonly replay?: {
    readonly replayed: number;
    readonly after: CrashSnapshot;
  };
  /** Wall-clock durations, ms. */
  readonly timings: {
    readonly enqueueMs: number;
    readonly crashPhaseMs: number;
    readonly replayPhaseMs: number;
    readonly totalMs: number;
  };
}

const W = 'runCrashScenario';

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidOptionsError(`${W}: ${name} must be an integer >= ${min}, got ${value}`);
  }
  return value;
}

async function snapshot(subject: CrashSubject, queue: string): Promise<CrashSnapshot> {
  const effects = await subject.effectCounts();
  let effectRows = 0;
  for (const n of effects.values()) effectRows += n;
  const ops = deadLetters({ backend: subject.backend });
  const letters: DeadLetter[] = [];
  for (let page = await ops.list({ queue }, { limit: 1_000 }); ;) {
    letters.push(...page.items);
    if (page.next === undefined) break;
    page = await ops.list({ queue }, { limit: 1_000, after: page.next });
  }
  const stats = await subject.backend.stats(queue, Date.now());
  return { effects, effectRows, deadLetters: letters, stats };
}

async function withSubject<T>(
  open: OpenCrashSubject,
  config: CrashWorkerConfig['subject'],
  fn: (subject: CrashSubject) => Promise<T>,
): Promise<T> {
  const subject = await open(config);
  try {
    return await fn(subject);
  } finally {
    await subject.close();
  }
}

/** Runs a crash scenario and reports what the store holds; the caller asserts. */
export async function runCrashScenario(options: CrashScenarioOptions): Promise<CrashReport> {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError(`${W}: expected an options object { open, subjectModule }`);
  }
  if (typeof options.open !== 'function') {
    throw new InvalidOptionsError(`${W}: open must be the adapter's openCrashSubject function`);
  }
  if (typeof options.subjectModule !== 'string' || !/\.m?js$/.test(options.subjectModule)) {
    throw new InvalidOptionsError(
      `${W}: subjectModule must be the path of a built ESM module (.js or .mjs), e.g. builtCopyOf(source)`,
    );
  }
  const total = positiveInt('total', options.total, 10_000);
  const kills = positiveInt('kills', options.kills, 3, 0);
  const seed = positiveInt('seed', options.seed, 1, 0);
  const concurrency = positiveInt('concurrency', options.concurrency, 8);
  const prefetch = positiveInt('prefetch', options.prefetch, 2 * concurrency, concurrency);
  const leaseMs = positiveInt('leaseMs', options.leaseMs, 2_000);
  const maxAttempts = positiveInt('maxAttempts', options.maxAttempts, 10, kills + 2);
  const pollIntervalMs = positiveInt('pollIntervalMs', options.pollIntervalMs, 200);
  const progressIntervalMs = positiveInt('progressIntervalMs', options.progressIntervalMs, 100);
  const timeoutMs = positiveInt('timeoutMs', options.timeoutMs, 120_000);
  const log = options.log ?? (() => undefined);
  const runId = options.runId ?? `crash_${process.pid}_${Date.now().toString(36)}`;
  const queue = `${runId}.q`;
  const subjectConfig = { runId, queue, params: options.params ?? {} };
  const script = workerScript();
  const workerConfig = (fixPoison: boolean): CrashWorkerConfig => ({
    subjectModule: options.subjectModule,
    subject: subjectConfig,
    consumer: {
      concurrency,
      prefetch,
      leaseMs,
      maxAttempts,
      pollIntervalMs,
      backoffBaseMs: 20,
      backoffMaxMs: 200,
    },
    fixPoison,
    seed,
    progressIntervalMs,
  });
  const live = new Set<WorkerProcess>();
  const start = (fixPoison: boolean): WorkerProcess => {
    const worker = new WorkerProcess(script, workerConfig(fixPoison));
    live.add(worker);
    return worker;
  };
  const t0 = Date.now();

  try {
    await withSubject(options.open, subjectConfig, async subject => {
      const producer = createProducer({ backend: subject.backend });
      for (let from = 0; from < total; from += 1_000) {
        const batch = [];
        for (let i = from; i < Math.min(total, from + 1_000); i++) {
          batch.push({
            queue,
            type: CRASH_MESSAGE_TYPE,
            payload: { index: i },
            idempotencyKey: crashIdempotencyKey(runId, i),
          });
        }
        await producer.sendBatch(batch);
      }
    });
    const t1 = Date.now();
    log(`enqueued ${total} in ${t1 - t0} ms`);

    // Kill points: evenly spread, each moved by up to ±2% of the run (seeded).
    const random = seededRandom(seed);
    const targets = Array.from({ length: kills }, (_, k) =>
      Math.round(total * ((k + 1) / (kills + 1) + (random.next() - 0.5) * 0.04)),
    );
    const deadline = t1 + timeoutMs;
    const killed: CrashKill[] = [];
    let recovered = 0;
    const duplicates = new Set<number>();
    let workers = 0;
    const tally = (worker: WorkerProcess): void => {
      recovered += worker.latest?.recovered ?? 0;
      for (const index of worker.duplicates) duplicates.add(index);
    };
    for (const target of targets) {
      const worker = start(false);
      workers++;
      const progress = await worker.waitFor(
        p => p.effects + p.dead >= target,
        deadline,
        `${target} messages done`,
      );
      const heldIndex = await worker.hold(deadline);
      await worker.kill();
      live.delete(worker);
      tally(worker);
      killed.push({ pid: worker.pid, progress, target, heldIndex });
      log(
        `SIGKILLed worker ${worker.pid} at ${progress.effects} effects + ${progress.dead} dead, holding #${heldIndex}`,
      );
    }
    const last = start(false);
    workers++;
    await last.waitFor(p => drained(p.stats), deadline, 'the queue to drain');
    await last.stop(deadline);
    live.delete(last);
    tally(last);
    const afterCrash = await withSubject(options.open, subjectConfig, s => snapshot(s, queue));
    const t2 = Date.now();
    log(`crash phase: ${t2 - t1} ms, ${workers} workers, ${recovered} leases recovered`);

    let replay: CrashReport['replay'];
    if (options.replay !== false) {
      const replayed = await withSubject(options.open, subjectConfig, async subject => {
        const result = await deadLetters({ backend: subject.backend }).replay({
          filter: { queue },
          actor: 'crash-harness',
        });
        return result.ids.length;
      });
      const worker = start(true);
      const replayDeadline = Date.now() + timeoutMs;
      await worker.waitFor(p => drained(p.stats), replayDeadline, 'the replayed messages');
      await worker.stop(replayDeadline);
      live.delete(worker);
      const after = await withSubject(options.open, subjectConfig, s => snapshot(s, queue));
      replay = { replayed, after };
      log(`replay phase: ${replayed} replayed in ${Date.now() - t2} ms`);
    }
    const t3 = Date.now();
    return {
      runId,
      queue,
      total,
      poison: countOfKind(total, 'poison'),
      transient: countOfKind(total, 'transient'),
      kills: killed,
      workers,
      recovered,
      duplicates: [...duplicates].sort((a, b) => a - b),
      afterCrash,
      ...(replay === undefined ? {} : { replay }),
      timings: {
        enqueueMs: t1 - t0,
        crashPhaseMs: t2 - t1,
        replayPhaseMs: t3 - t2,
        totalMs: t3 - t0,
      },
    };
  } finally {
    // A failed run must not leave workers consuming (or holding a PGlite folder).
    await Promise.all([...live].map(w => w.kill()));
  }
}
