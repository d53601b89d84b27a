import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import amqp from 'amqplib';
import { createProducer, deadLetters, fail, consume } from '@bulwark/messaging';
import { builtCopyOf, describeQueueBackendContract } from '@bulwark/messaging/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rabbitmqQueueBackend, type RabbitmqQueueBackend } from './backend.js';

const url = process.env.AMQP_URL;
if (url === undefined) {
  console.warn('backend.int.test.ts skipped: set AMQP_URL=amqp://guest:guest@127.0.0.1:5672');
}
// A prefix of our own per run, deleted afterwards, so parallel runs never share a queue.
const prefix = `bw-test-${process.pid}-${Date.now().toString(36)}`;
let counter = 0;
const queueName = (what: string) => `${what}-${Date.now().toString(36)}-${++counter}`;

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
    const connection = await amqp.connect(url);
    try {
      for (const name of names) {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        await channel.deleteQueue(name).catch(() => undefined);
        await channel.close().catch(() => undefined);
      }
    } finally {
      await connection.close();
    }
  }, 60_000);

  describeQueueBackendContract('rabbitmq', () => ({ backend, timing: 'broker' }));

  it('counts a delivery the broker took back from a crashed consumer as a spent attempt', async () => {
    const queue = queueName('crash');
    const crashed = await open();
    const id = await createProducer({ backend }).send({ queue, type: 't', payload: 1 });
    const first = await crashed.fetch({ queue, limit: 1, leaseMs: 60_000, now: Date.now() });
    expect(first.deliveries.map(d => d.message.attempt)).toEqual([1]);
    // Closing the connection without settling is what kill -9 looks like to the broker.
    await crashed.close();
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

  it('kill -9 of a process holding leases: the broker redelivers them, as spent attempts', async () => {
    const queue = queueName('kill');
    const ids = await createProducer({ backend }).sendBatch(
      [0, 1, 2].map(i => ({ queue, type: 't', payload: i })),
    );
    // The worker runs our built backend (Node 20 cannot run TypeScript): run `npx tsc -b` first.
    const built = pathToFileURL(
      builtCopyOf(fileURLToPath(new URL('./backend.ts', import.meta.url))),
    );
    const script = `
      const { rabbitmqQueueBackend } = await import(${JSON.stringify(built.href)});
      const b = await rabbitmqQueueBackend({ url: ${JSON.stringify(url)}, prefix: ${JSON.stringify(prefix)} });
      const now = Date.now();
      const { deliveries } = await b.fetch({ queue: ${JSON.stringify(queue)}, limit: 3, leaseMs: 60000, now });
      await b.settle(deliveries[0].lease, { kind: 'ack' }, now);
      console.log(JSON.stringify(deliveries.map(d => [d.message.id, d.message.attempt])));
      setInterval(() => undefined, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const held = JSON.parse(line.toString()) as [string, number][];
    expect(held.map(([id, attempt]) => [ids.indexOf(id), attempt])).toEqual([
      [0, 1],
      [1, 1],
      [2, 1],
    ]);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const back = await eventually(
      () => backend.fetch({ queue, limit: 3, leaseMs: 60_000, now: Date.now() }),
      r => r.deliveries.length > 0,
    );
    const more =
      back.deliveries.length < 2
        ? (await backend.fetch({ queue, limit: 3, leaseMs: 60_000, now: Date.now() })).deliveries
        : [];
    const all = [...back.deliveries, ...more];
    // The acked one is gone; the two held ones come back on their second attempt.
    expect(all.map(d => [ids.indexOf(d.message.id), d.message.attempt]).sort()).toEqual([
      [1, 2],
      [2, 2],
    ]);
    for (const d of all)
      expect(await backend.settle(d.lease, { kind: 'ack' }, Date.now())).toBe(true);
  });

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
