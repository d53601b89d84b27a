/**
 * One chaos scenario: switch a fault on in front of one upstream, put the gateway's overview under
 * bounded concurrent load, judge every answer, switch the fault off and wait (a bounded number of
 * polls) for complete answers again.
 */
import { read, type Outcome } from './classify.js';
import {
  FAULTS,
  isCritical,
  OVERVIEW_PARTS,
  PARTS_OF,
  type Dependency,
  type FaultName,
} from './faults.js';
import { probe, runLoad } from './load.js';
import type { ShopStack } from './stack.js';
import { summariseLatency, type LatencySummary } from './stats.js';

export interface ScenarioOptions {
  /** The faulted upstream; undefined for the healthy baseline. */
  dependency?: Dependency;
  fault?: FaultName;
  /** Requests in the load. Default 200. */
  requests?: number;
  /** Requests in flight. Default 16. */
  concurrency?: number;
  /** Answers may take the overview budget plus this much, in ms. Default 250. */
  marginMs?: number;
  /** First user id of the load (ids then cycle through the seeded users). Default 1. */
  firstUserId?: number;
  /** Recovery: at most this many polls. Default 100. */
  recoveryPolls?: number;
  /** Recovery: pause between polls, in ms. Default 50. */
  recoveryIntervalMs?: number;
  /** Recovery: this many complete answers in a row count as recovered. Default 3. */
  recoveryStreak?: number;
}

export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

export interface Counts {
  requests: number;
  /** 200 with `meta.status: complete`. */
  ok: number;
  /** 200 with `meta.status: degraded`. */
  degraded: number;
  /** Anything else: problems, hangs, network failures, unexpected answers. */
  errors: number;
  byOutcome: Record<Outcome, number>;
  byStatus: Record<string, number>;
  /** `meta.parts.<name>.status` (and `:source` for non-ok values) over the 200 answers. */
  parts: Record<string, Record<string, number>>;
}

export interface RecoveryResult {
  recovered: boolean;
  polls: number;
  elapsedMs: number;
  /** The outcome of the last poll. */
  last: Outcome;
}

export interface ScenarioResult {
  id: string;
  dependency: Dependency | null;
  fault: FaultName | null;
  faultLabel: string;
  critical: boolean;
  load: { requests: number; concurrency: number; budgetMs: number; marginMs: number };
  counts: Counts;
  latency: LatencySummary;
  /** The first few defects found in answers (truthfulness, malformed problems). */
  defects: string[];
  recovery: RecoveryResult | null;
  checks: Check[];
  pass: boolean;
}

const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

function check(name: string, pass: boolean, detail: string): Check {
  return { name, pass, detail };
}

function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

const overviewPath = (userId: number) => `/api/users/${userId}/overview`;

/**
 * Warms a freshly started stack up gently (sequential requests, then a few in flight): the first
 * requests of a cold process (JIT, PGlite's first queries) are slow, and a burst at full
 * concurrency would time out and open the gateway's breakers before the first scenario. Then
 * waits out any breaker that opened anyway.
 */
export async function warmUp(stack: ShopStack, requests = 40): Promise<void> {
  const path = (i: number) => overviewPath(1 + (i % stack.seed.users));
  const hangAfterMs = stack.overviewBudgetMs * 5;
  await runLoad({ baseUrl: stack.gatewayUrl, path, requests, concurrency: 1, hangAfterMs });
  await runLoad({ baseUrl: stack.gatewayUrl, path, requests, concurrency: 4, hangAfterMs });
  await sleep(stack.breakerOpenMs + 100);
}

/** Polls one user's overview until `streak` complete answers in a row, at most `polls` times. */
export async function awaitRecovery(
  stack: ShopStack,
  options: { polls: number; intervalMs: number; streak: number; userId: number },
): Promise<RecoveryResult> {
  const started = performance.now();
  let inRow = 0;
  let last: Outcome = 'unexpected';
  for (let poll = 1; poll <= options.polls; poll++) {
    // A new user each poll: a fresh orders cache entry would otherwise hide the orders service.
    const userId = 1 + ((options.userId + poll - 1) % stack.seed.users);
    const sample = await probe(stack.gatewayUrl, overviewPath(userId), stack.overviewBudgetMs * 5);
    last = read(sample).outcome;
    inRow = last === 'complete' ? inRow + 1 : 0;
    if (inRow >= options.streak) {
      return {
        recovered: true,
        polls: poll,
        elapsedMs: Math.round(performance.now() - started),
        last,
      };
    }
    await sleep(options.intervalMs);
  }
  return {
    recovered: false,
    polls: options.polls,
    elapsedMs: Math.round(performance.now() - started),
    last,
  };
}

export async function runScenario(
  stack: ShopStack,
  options: ScenarioOptions = {},
): Promise<ScenarioResult> {
  const { dependency, fault } = options;
  if ((dependency === undefined) !== (fault === undefined)) {
    throw new TypeError('runScenario: give both dependency and fault, or neither (healthy)');
  }
  const requests = options.requests ?? 200;
  const concurrency = options.concurrency ?? 16;
  const marginMs = options.marginMs ?? 250;
  const firstUserId = options.firstUserId ?? 1;
  const budgetMs = stack.overviewBudgetMs;
  const definition = fault === undefined ? undefined : FAULTS[fault];
  const critical = dependency !== undefined && isCritical(dependency);

  await stack.clearFaults();
  if (dependency !== undefined && definition !== undefined) {
    await stack.proxies[dependency].setFaults(definition.faults);
  }
  let samples;
  try {
    samples = await runLoad({
      baseUrl: stack.gatewayUrl,
      path: i => overviewPath(1 + ((firstUserId - 1 + i) % stack.seed.users)),
      requests,
      concurrency,
      // A hang is anything well past the deadline; the limit only keeps the run bounded.
      hangAfterMs: budgetMs * 5,
    });
  } finally {
    await stack.clearFaults();
  }

  const counts: Counts = {
    requests,
    ok: 0,
    degraded: 0,
    errors: 0,
    byOutcome: { complete: 0, degraded: 0, problem: 0, unexpected: 0, hang: 0, network: 0 },
    byStatus: {},
    parts: Object.fromEntries(OVERVIEW_PARTS.map(p => [p, {}])),
  };
  const defects: string[] = [];
  let defective = 0;
  let faultedOk = 0;
  let othersNotOk = 0;
  let withoutProfile = 0;
  const faultedParts = dependency === undefined ? [] : PARTS_OF[dependency];
  for (const sample of samples) {
    const reading = read(sample);
    counts.byOutcome[reading.outcome]++;
    count(counts.byStatus, sample.failure ?? String(sample.status));
    if (reading.outcome === 'complete') counts.ok++;
    else if (reading.outcome === 'degraded') counts.degraded++;
    else counts.errors++;
    if (reading.defects.length > 0) {
      defective++;
      for (const d of reading.defects)
        if (defects.length < 10 && !defects.includes(d)) defects.push(d);
    }
    if (reading.defects.some(d => d.includes('profile'))) withoutProfile++;
    for (const [name, part] of Object.entries(reading.parts)) {
      const parts = counts.parts[name] ?? (counts.parts[name] = {});
      count(
        parts,
        part.status === 'ok' ? 'ok' : `${part.status}:${part.source ?? part.reason ?? '-'}`,
      );
      // A fresh cache hit never called the faulted service: `ok` from a cache is the truth.
      const fromCache = part.source?.startsWith('cache') === true;
      // Orders without lines need no catalog call: `ok` is the truth then too.
      const untouched = dependency === 'catalog' && name === 'orders' && reading.orderLines === 0;
      if (faultedParts.includes(name)) {
        if (part.status === 'ok' && !fromCache && !untouched) faultedOk++;
      } else if (part.status !== 'ok') {
        othersNotOk++;
      }
    }
  }
  const latency = summariseLatency(samples.map(s => s.latencyMs));
  const limitMs = budgetMs + marginMs;
  const late = samples.filter(s => s.latencyMs > limitMs).length;
  const answered200 = counts.ok + counts.degraded;

  const checks: Check[] = [];
  checks.push(
    check(
      `no hang: every answer within the budget + ${marginMs} ms (${limitMs} ms)`,
      late === 0 && counts.byOutcome.hang === 0,
      `${late} late, ${counts.byOutcome.hang} hung, max ${latency.maxMs} ms`,
    ),
  );
  checks.push(
    check(
      'answers are well-formed and meta is truthful',
      defective === 0,
      defective === 0 ? 'no defect' : `${defective} answers: ${defects.slice(0, 3).join('; ')}`,
    ),
  );
  if (dependency === undefined) {
    checks.push(
      check('every answer is 200 complete', counts.ok === requests, `${counts.ok}/${requests}`),
    );
  } else if (!critical) {
    checks.push(
      check(
        'every answer is 200 with the profile',
        answered200 === requests && withoutProfile === 0,
        `${answered200}/${requests} 200, ${withoutProfile} without the profile`,
      ),
    );
    if (definition?.total === true) {
      checks.push(
        check(
          `the faulted part (${faultedParts.join(', ')}) is never ok from origin when it needed ${dependency}`,
          faultedOk === 0,
          `${faultedOk} answers claim it ok from origin`,
        ),
      );
    }
    checks.push(
      check(
        'the other parts are ok',
        othersNotOk === 0,
        `${othersNotOk} part statuses not ok among the others`,
      ),
    );
  } else if (definition?.total === true) {
    checks.push(
      check(
        'every answer is a 503/504 problem+json',
        counts.byOutcome.problem === requests,
        `${counts.byOutcome.problem}/${requests} (${JSON.stringify(counts.byStatus)})`,
      ),
    );
  } else {
    checks.push(
      check(
        'every answer is 200 with the profile or a 503/504 problem+json',
        counts.byOutcome.problem + answered200 === requests && withoutProfile === 0,
        JSON.stringify(counts.byStatus),
      ),
    );
  }

  let recovery: RecoveryResult | null = null;
  if (dependency !== undefined) {
    recovery = await awaitRecovery(stack, {
      polls: options.recoveryPolls ?? 100,
      intervalMs: options.recoveryIntervalMs ?? 50,
      streak: options.recoveryStreak ?? 3,
      userId: firstUserId + requests,
    });
    checks.push(
      check(
        'recovery: complete answers again once the fault is removed',
        recovery.recovered,
        `${recovery.recovered ? 'recovered' : 'NOT recovered'} after ${recovery.polls} polls, ${recovery.elapsedMs} ms`,
      ),
    );
  }

  return {
    id: dependency === undefined ? 'healthy' : `${dependency}/${fault ?? ''}`,
    dependency: dependency ?? null,
    fault: fault ?? null,
    faultLabel: definition?.label ?? 'no fault',
    critical,
    load: { requests, concurrency, budgetMs, marginMs },
    counts,
    latency,
    defects,
    recovery,
    checks,
    pass: checks.every(c => c.pass),
  };
}
