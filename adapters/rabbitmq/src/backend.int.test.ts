import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  consume,
  createProducer,
  deadLetters,
  fail,
  type Delivery,
  type ExpiredLease,
  type RecoveryDecision,
} from '@bulwark/messaging';
import { builtCopyOf, describeQueueBackendContract } from '@bulwark/messaging/contract';
import { runUntilKilled } from '@bulwark/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rabbitmqQueueBackend, type RabbitmqQueueBackend } from './backend.js';
import { deleteQueues } from './test-queues.js';

const url = process.env.AMQP_URL;
if (url === undefined) {
  console.warn('backend.int.test.ts skipped: set AMQP_URL=amqp://guest:guest@127.0.0.1:5672');
}
// A prefix of our own per run, deleted afterwards, so parallel runs never share a queue.
const prefix = `bw-test-${process.pid}-${Date.now().toString(36)}`;
let counter = 0;
const queueName = (what: string) => `${what}-${Date.now().toString(36)}-${++counter}`;

/** The built backend's URL: child processes run Node 20, which cannot run TypeScript. */
const builtBackend = () =>
  pathToFileURL(builtCopyOf(fileURLToPath(new URL('./backend.ts', import.meta.url)))).href;

/**
 * A child process leases one message of `queue` and SIGKILLs itself once it has said which:
 * resolves `[id, attempt]`. Run `npx tsc -b` first.
 */
async function leaseAndDie(queue: string): Promise<[string, number]> {
  const script = `
    const { rabbitmqQueueBackend } = await import(${JSON.stringify(builtBackend())});
    const b = await rabbitmqQueueBackend({ url: ${JSON.stringify(url)}, prefix: ${JSON.stringify(prefix)} });
    const r = await b.fetch({ queue: ${JSON.stringify(queue)}, limit: 1, leaseMs: 60000, now: Date.now() });
    const d = r.deliveries[0];
    process.stdout.write('leased ' + JSON.stringify([d.message.id, d.message.attempt]) + '\\n', () =>
      process.kill(process.pid, 'SIGKILL'),
    );
  `;
  const out = await runUntilKilled(script);
  const leased = /leased (.+)/.exec(out)?.[1];
  if (leased === undefined) throw new Error(`child died without leasing: ${out}`);
  return JSON.parse(leased) as [string, number];
}

/** Polls a broker-side condition (the broker owns time here) with a bounded wait. */
async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms = 5_000) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > end) return value;
    await new Promise(resolve => setTimeout(resolve, 10));
  }
}

describe.skipIf(url === undefined)('rabbitmq queue backend', () => {
  let backend: RabbitmqQueueBackend;
  const opened: RabbitmqQueueBackend[] = [];
  const open = async () => {
    const other = await rabbitmqQueueBackend({ url: url!, prefix });
    opened.push(other);
    return other;
  };

  beforeAll(async () => {
    backend = await open();
  }, 30_000);

  afterAll(async () => {
    const names = new Set(opened.flatMap(b => b.declaredQueues()));
    for (const b of opened) await b.close();
    if (url === undefined) return;
    await deleteQueues(url, names);
  }, 60_000);

  describeQueueBackendContract('rabbitmq', () => ({ backend, timing: 'broker' }));

  /** Fetches (limit: what is still missing) until exactly `n` are leased; returns them. */
  const leaseExactly = async (b: RabbitmqQueueBackend, queue: string, n: number) => {
    const got: Delivery[] = [];
    await eventually(
      async () => {
        const r = await b.fetch({ queue, limit: n - got.length, leaseMs: 60_000, now: Date.now() });
        got.push(...r.deliveries);
        return got.length;
      },
      count => count === n,
    );
    return got;
  };
  /** Fetches until the backend holds `leased` leases (delivered or expired); returns the delivered. */
  const fetchUntilLeased = async (
    b: RabbitmqQueueBackend,
    queue: string,
    limit: number,
    leased: number,
  ) => {
    const delivered: Delivery[] = [];
    await eventually(
      async () => {
        const r = await b.fetch({ queue, limit, leaseMs: 60_000, now: Date.now() });
        delivered.push(...r.deliveries);
        return (await b.stats(queue, Date.now())).leased;
      },
      held => held === leased,
    );
    return delivered;
  };

  /** The consumer's policy for an expired lease, as `consume` applies it (retry at once here). */
  const retryLost = (expired: ExpiredLease): RecoveryDecision => ({
    kind: 'retry',
    delayMs: 0,
    error: { code: 'LEASE_EXPIRED', message: `lost attempt ${expired.message.attempt}` },
  });

  it('holds a delivery the broker took back from a crashed consumer as an expired lease for recovery', async () => {
    const queue = queueName('crash');
    const crashed = await open();
    const id = await createProducer({ backend }).send({ queue, type: 't', payload: 1 });
    const first = await crashed.fetch({ queue, limit: 1, leaseMs: 60_000, now: Date.now() });
    expect(first.deliveries.map(d => d.message.attempt)).toEqual([1]);
    // Closing the connection without settling is what kill -9 looks like to the broker.
    await crashed.close();
    // Back with the broker: the fetch takes it, delivers nothing, and holds it as expired.
    const held = await eventually(
      async () => {
        const { deliveries } = await backend.fetch({
          queue,
          limit: 1,
          leaseMs: 60_000,
          now: Date.now(),
        });
        expect(deliveries).toEqual([]);
        return (await backend.stats(queue, Date.now())).leased;
      },
      leased => leased === 1,
    );
    expect(held).toBe(1);
    const decided: ExpiredLease[] = [];
    const recovered = await backend.recoverExpiredLeases({
      queue,
      now: Date.now(),
      limit: 10,
      decide: expired => (decided.push(expired), retryLost(expired)),
    });
    expect(recovered).toBe(1);
    expect(decided.map(e => [e.message.id, e.message.attempt])).toEqual([[id, 1]]);
    const again = await eventually(
      () => backend.fetch({ queue, limit: 1, leaseMs: 60_000, now: Date.now() }),
      r => r.deliveries.length === 1,
    );
    expect(again.deliveries[0]!.message).toMatchObject({ id, attempt: 2 });
    const lease = again.deliveries[0]!.lease;
    expect(
      await backend.settle(
        lease,
        { kind: 'dead', reason: 'failed', error: { code: 'X', message: 'x' } },
        Date.now(),
      ),
    ).toBe(true);
    const dead = await deadLetters({ backend }).show(id);
    expect(dead.attempts.map(a => [a.attempt, a.code])).toEqual([
      [1, 'LEASE_EXPIRED'],
      [2, 'X'],
    ]);
  });

  it('pushes to a subscribed consumer: out-of-order acks ack only what was settled, and unsubscribing hands back the waiting deliveries unspent', async () => {
    const queue = queueName('push');
    const pusher = await open();
    const ids = await createProducer({ backend: pusher }).sendBatch(
      Array.from({ length: 12 }, (_, i) => ({ queue, type: 't', payload: i })),
    );
    const subscription = await pusher.subscribe(queue, () => undefined);
    // The first fetch while subscribed starts the consume, its limit (6) as the broker's window.
    const got = await leaseExactly(pusher, queue, 6);
    expect(got.map(d => d.message.id)).toEqual(ids.slice(0, 6));
    expect(got.map(d => d.message.attempt)).toEqual([1, 1, 1, 1, 1, 1]);

    // Acks of 0, 2 and 3 in one tick (1 stays unsettled): the broker pushes 3 more, which wait.
    const settle = (i: number) => pusher.settle(got[i]!.lease, { kind: 'ack' }, Date.now());
    expect(await Promise.all([settle(0), settle(2), settle(3)])).toEqual([true, true, true]);
    // All three, not only the first: one still on its way when the consume is cancelled is
    // returned by the broker as a spent attempt (README, Limits).
    await eventually(
      () => pusher.waiting(queue),
      n => n === 3,
    );
    subscription.dispose(); // cancels the consume; the waiting ones are handed back
    expect(await Promise.all([settle(4), settle(5)])).toEqual([true, true]);
    await pusher.close(); // what kill -9 looks like for the unsettled one (1)

    // Another backend (not subscribed: basic.get) sees 6..11 as first attempts, and 1 as lost.
    const delivered = await fetchUntilLeased(backend, queue, 12, 7); // 6 delivered + 1 held as expired
    expect(delivered.map(d => d.message.id).sort()).toEqual(ids.slice(6).sort());
    expect(delivered.every(d => d.message.attempt === 1)).toBe(true);
    const decided: ExpiredLease[] = [];
    await backend.recoverExpiredLeases({
      queue,
      now: Date.now(),
      limit: 10,
      decide: expired => (decided.push(expired), retryLost(expired)),
    });
    expect(decided.map(e => [e.message.id, e.message.attempt])).toEqual([[ids[1], 1]]);
    for (const d of delivered) await backend.settle(d.lease, { kind: 'ack' }, Date.now());
  });

  it('close() with a consumer still subscribed hands its waiting deliveries back unspent', async () => {
    const queue = queueName('push-close');
    const pusher = await open();
    const ids = await createProducer({ backend: pusher }).sendBatch(
      Array.from({ length: 8 }, (_, i) => ({ queue, type: 't', payload: i })),
    );
    await pusher.subscribe(queue, () => undefined);
    const got = await leaseExactly(pusher, queue, 3);
    // Acked, so the window (3) lets the broker push 3 more, which wait unleased.
    const acked = await Promise.all(
      got.map(d => pusher.settle(d.lease, { kind: 'ack' }, Date.now())),
    );
    expect(acked).toEqual([true, true, true]);
    await eventually(
      () => pusher.waiting(queue),
      n => n === 3,
    );
    await pusher.close(); // the subscription was never disposed

    const delivered = await fetchUntilLeased(backend, queue, 8, 5);
    // No returned delivery is held as an expired lease: all five come as first attempts.
    expect(delivered.map(d => d.message.id).sort()).toEqual(ids.slice(3).sort());
    expect(delivered.every(d => d.message.attempt === 1)).toBe(true);
    for (const d of delivered) await backend.settle(d.lease, { kind: 'ack' }, Date.now());
  });

  it('kill -9 of a process holding leases: the broker returns them, recovery retries them', async () => {
    const queue = queueName('kill');
    const ids = await createProducer({ backend }).sendBatch(
      [0, 1, 2].map(i => ({ queue, type: 't', payload: i })),
    );
    const script = `
      const { rabbitmqQueueBackend } = await import(${JSON.stringify(builtBackend())});
      const b = await rabbitmqQueueBackend({ url: ${JSON.stringify(url)}, prefix: ${JSON.stringify(prefix)} });
      const now = Date.now();
      const { deliveries } = await b.fetch({ queue: ${JSON.stringify(queue)}, limit: 3, leaseMs: 60000, now });
      await b.settle(deliveries[0].lease, { kind: 'ack' }, now);
      const held = JSON.stringify(deliveries.map(d => [d.message.id, d.message.attempt]));
      process.stdout.write(held + '\\n', () => process.kill(process.pid, 'SIGKILL'));
    `;
    const held = JSON.parse(await runUntilKilled(script)) as [string, number][];
    expect(held.map(([id, attempt]) => [ids.indexOf(id), attempt])).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
    const decided: number[][] = [];
    const decide = (expired: ExpiredLease) => {
      decided.push([ids.indexOf(expired.message.id), expired.message.attempt]);
      return retryLost(expired);
    };
    // Fetch until both returned deliveries are held, recovering them as they come.
    await eventually(
      async () => {
        await backend.fetch({ queue, limit: 3, leaseMs: 60_000, now: Date.now() });
        await backend.recoverExpiredLeases({ queue, now: Date.now(), limit: 10, decide });
        return decided.length;
      },
      n => n === 2,
    );
    // The acked one is gone; the two held ones were spent attempts, retried as their second.
    expect(decided.sort()).toEqual([
      [1, 1],
      [2, 1],
    ]);
    const all: Delivery[] = [];
    while (all.length < 2) {
      const { deliveries } = await eventually(
        () => backend.fetch({ queue, limit: 3, leaseMs: 60_000, now: Date.now() }),
        r => r.deliveries.length > 0,
      );
      expect(deliveries.length).toBeGreaterThan(0);
      all.push(...deliveries);
    }
    expect(all.map(d => [ids.indexOf(d.message.id), d.message.attempt]).sort()).toEqual([
      [1, 2],
      [2, 2],
    ]);
    for (const d of all)
      expect(await backend.settle(d.lease, { kind: 'ack' }, Date.now())).toBe(true);
  });

  it('kill -9 on the last attempt: the lost attempt is the last one, dead-lettered by the policy, never run again', async () => {
    const queue = queueName('last');
    const id = await createProducer({ backend }).send({ queue, type: 't', payload: { order: 1 } });
    // Attempt 1 fails and is retried at once; attempt 2 (the last of 2) dies with its process.
    const first = await backend.fetch({ queue, limit: 1, leaseMs: 60_000, now: Date.now() });
    expect(first.deliveries.map(d => d.message.attempt)).toEqual([1]);
    const failed = { code: 'E', message: 'transient' };
    await backend.settle(
      first.deliveries[0]!.lease,
      { kind: 'retry', delayMs: 0, error: failed },
      Date.now(),
    );
    expect(await leaseAndDie(queue)).toEqual([id, 2]);
    const seen: number[] = [];
    let recovered = 0;
    const consumer = consume({
      backend,
      queue,
      maxAttempts: 2,
      leaseMs: 5_000,
      pollIntervalMs: 50,
      handler: message => {
        seen.push(message.attempt);
        return fail('should not run: attempt 2 was the last');
      },
    });
    consumer.onEvent(event => {
      if (event.type === 'lease.recovered') recovered += event.count;
    });
    try {
      // The consumer reports the recovery once the dead letter is written (a handler run of a
      // third attempt would be the fault this guards against).
      await eventually(
        () => Promise.resolve(recovered + seen.length),
        n => n > 0,
        10_000,
      );
      expect(seen).toEqual([]);
      expect(recovered).toBe(1);
      const letter = await backend.getDeadLetter(id);
      expect(letter).toMatchObject({
        reason: 'max-attempts',
        lastError: { code: 'LEASE_EXPIRED' },
        message: { payload: { order: 1 }, attempt: 2 },
      });
      expect(letter!.attempts.map(a => [a.attempt, a.code])).toEqual([
        [1, 'E'],
        [2, 'LEASE_EXPIRED'],
      ]);
      expect((await backend.stats(queue, Date.now())).leased).toBe(0);
    } finally {
      await consumer.stop();
    }
  }, 20_000);

  it('keeps dead letters in the stream: another backend lists them, and one replay wins', async () => {
    const queue = queueName('shared');
    const id = await createProducer({ backend }).send({ queue, type: 't', payload: { n: 1 } });
    let handled = false;
    const c = consume({
      backend,
      queue,
      maxAttempts: 1,
      pollIntervalMs: 10,
      handler: () => {
        handled = true;
        return fail('poison');
      },
    });
    await eventually(
      () => Promise.resolve(handled),
      h => h,
    );
    await c.stop();
    // A fresh backend (another process, in effect) reads the stream from its first record.
    const other = await open();
    const seen = await other.getDeadLetter(id);
    expect(seen).toMatchObject({ id, sourceQueue: queue, lastError: { code: 'FAILED' } });
    const record = (n: number) => ({
      id: globalThis.crypto.randomUUID(),
      queue,
      type: 't',
      payload: n,
      headers: {},
      availableAt: Date.now(),
      firstSeenAt: Date.now(),
    });
    const results = await Promise.all([
      backend.replayDeadLetter(id, record(1)),
      other.replayDeadLetter(id, record(2)),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await backend.getDeadLetter(id)).toBeUndefined();
    expect(await other.getDeadLetter(id)).toBeUndefined();
    const ready = await eventually(
      () => backend.stats(queue, Date.now()),
      s => s.ready === 1,
    );
    expect(ready).toMatchObject({ ready: 1, dead: 0 });
  });

  it('holds a delayed message in its delay bucket, then moves it to the work queue', async () => {
    const queue = queueName('delay');
    await createProducer({ backend }).send({ queue, type: 't', payload: 1, delayMs: 300 });
    const early = await backend.stats(queue, Date.now());
    expect(early).toMatchObject({ ready: 0, scheduled: 1 });
    const late = await eventually(
      () => backend.stats(queue, Date.now()),
      s => s.ready === 1,
    );
    expect(late).toMatchObject({ ready: 1, scheduled: 0 });
    expect(backend.declaredQueues()).toContain(`${prefix}.delay.${queue}.300`);
  });

  it('close() closes the connection; later calls fail with BACKEND_ERROR', async () => {
    const other = await open();
    await other.close();
    await expect(other.stats('x', Date.now())).rejects.toMatchObject({ code: 'BACKEND_ERROR' });
    await other.close(); // idempotent
  });

  it('reports an unreachable broker as BACKEND_ERROR without leaking the password', async () => {
    const error = await rabbitmqQueueBackend({ url: 'amqp://user:secret@127.0.0.1:1' }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'BACKEND_ERROR' });
    expect(String((error as Error).message)).not.toContain('secret');
  });
});
