/**
 * The NATS backend against a real JetStream server: what the contract suite cannot see — the
 * state stream, the broker's ack wait as the net under leases, working() on heartbeats, the
 * dead letter stream, crash recovery of an interrupted dead-lettering, wake-ups across
 * connections. The broker owns time here, so tests poll it with a bounded timeout.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { constantBackoff } from '@bulwark/core';
import {
  consume,
  createProducer,
  deadLetters,
  fail,
  type Delivery,
  type Lease,
} from '@bulwark/messaging';
import { runUntilKilled } from '@bulwark/testing';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsQueueBackend, type NatsQueueBackend } from './backend.js';
import { Documents, PULL_SILENCE_MS, pullNow } from './jetstream.js';
import type { MessageState } from './records.js';

const url = process.env.NATS_URL;
if (url === undefined) {
  console.warn('backend.int.test.ts skipped: set NATS_URL=nats://127.0.0.1:4222');
}
const prefix = `bwb${process.pid}${Date.now().toString(36)}`;
/** The kill -9 test runs the built package in a child process (`npx tsc -b` first). */
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
if (url !== undefined && !existsSync(dist)) {
  console.warn('backend.int.test.ts: kill -9 test skipped: build first (npx tsc -b)');
}

/** A child process that leases one message of `queue`, prints its id and kills itself (-9). */
async function leaseAndDie(queue: string, leaseMs: number): Promise<string> {
  const script = `
    import { natsQueueBackend } from ${JSON.stringify(dist)};
    // Ack wait = the lease: the broker redelivers what the dead child held after leaseMs.
    const b = await natsQueueBackend({ url: ${JSON.stringify(url)}, prefix: ${JSON.stringify(prefix)}, ackWaitMarginMs: 0 });
    const r = await b.fetch({ queue: ${JSON.stringify(queue)}, limit: 1, leaseMs: ${leaseMs}, now: Date.now() });
    process.stdout.write('leased ' + r.deliveries[0].message.id + '\\n', () => process.kill(process.pid, 'SIGKILL'));
  `;
  const out = await runUntilKilled(script, { cwd: fileURLToPath(new URL('..', import.meta.url)) });
  const id = /leased (\S+)/.exec(out)?.[1];
  if (id === undefined) throw new Error(`child died without leasing: ${out}`);
  return id;
}
let counter = 0;
const newQueue = (name: string) => `${name}-${++counter}`;

/** Calls `probe` until it returns a value (not undefined), at most `timeoutMs` of real time. */
async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise(resolve => setTimeout(resolve, 20));
  }
}

/** Deletes the backend's streams (and with them its consumers). */
async function dropStreams(backend: NatsQueueBackend): Promise<void> {
  const jsm = await jetstreamManager(backend.connection);
  const n = backend.names;
  for (const stream of [n.queueStream, n.stateStream, n.deadStream, n.auditStream]) {
    await jsm.streams.delete(stream).catch(() => false);
  }
}

describe.skipIf(url === undefined)('nats queue backend', () => {
  let backend: NatsQueueBackend;
  /** Same streams, ack wait = the lease itself: the broker's redelivery comes at leaseMs. */
  let tight: NatsQueueBackend;
  let jsm: JetStreamManager;
  let state: Documents;

  beforeAll(async () => {
    backend = await natsQueueBackend({ url: url!, prefix });
    tight = await natsQueueBackend({ url: url!, prefix, ackWaitMarginMs: 0 });
    jsm = await jetstreamManager(backend.connection);
    state = new Documents(jetstream(backend.connection), jsm, backend.names.stateStream);
  }, 30_000);

  afterAll(async () => {
    if (backend === undefined) return;
    await dropStreams(backend);
    await tight?.close();
    await backend.close();
  });

  const send = (b: NatsQueueBackend, queue: string, payload: unknown = 1) =>
    createProducer({ backend: b }).send({ queue, type: 't', payload });
  const fetchOne = async (b: NatsQueueBackend, queue: string, leaseMs = 10_000) =>
    (await b.fetch({ queue, limit: 1, leaseMs, now: Date.now() })).deliveries[0];
  const stateOf = (b: NatsQueueBackend, queue: string, id: string) =>
    state.get<MessageState>(b.names.stateSubject(queue, id));
  /** The queue stream sequence of the last message sent to `queue`. */
  const seqOf = async (b: NatsQueueBackend, queue: string) =>
    (await jsm.streams.getMessage(b.names.queueStream, {
      last_by_subj: b.names.queueSubject(queue),
    }))!.seq;
  const messagesIn = async (b: NatsQueueBackend, queue: string) => {
    const subject = b.names.queueSubject(queue);
    const info = await jsm.streams.info(b.names.queueStream, { subjects_filter: subject });
    return info.state.subjects?.[subject] ?? 0;
  };

  it('leases a first delivery in memory (no state document); the ack removes the message', async () => {
    const queue = newQueue('ack');
    const id = await send(backend, queue);
    const d = (await fetchOne(backend, queue))!;
    expect(d.message).toMatchObject({ id, attempt: 1 });
    expect(await stateOf(backend, queue, id)).toBeUndefined();
    expect(await backend.stats(queue, Date.now())).toMatchObject({ leased: 1, scheduled: 0 });
    expect(await backend.settle(d.lease, { kind: 'ack' }, Date.now())).toBe(true);
    // settle returned after a PING/PONG: the server has the ack; it applies it right after.
    await eventually(async () => ((await messagesIn(backend, queue)) === 0 ? true : undefined));
    expect(await stateOf(backend, queue, id)).toBeUndefined();
    // Fencing: the same lease cannot settle twice.
    expect(await backend.settle(d.lease, { kind: 'ack' }, Date.now())).toBe(false);
  });

  it('retry naks with its delay: the broker redelivers no sooner, as the next attempt with history', async () => {
    const queue = newQueue('retry');
    const id = await send(backend, queue);
    const first = (await fetchOne(backend, queue))!;
    const error = { code: 'E', message: 'boom' };
    const t = Date.now();
    expect(await backend.settle(first.lease, { kind: 'retry', delayMs: 400, error }, t)).toBe(true);
    expect(await fetchOne(backend, queue)).toBeUndefined();
    const second = await eventually(() => fetchOne(backend, queue));
    const waited = Date.now() - t;
    expect(waited).toBeGreaterThanOrEqual(390);
    expect(second.message).toMatchObject({ id, attempt: 2 });
    // From the second attempt on, attempts, history and the lease live in the state stream.
    expect((await stateOf(backend, queue, id))?.value).toMatchObject({
      attempt: 2,
      history: [{ attempt: 1, code: 'E' }],
      lease: { seq: expect.any(Number) },
    });
    expect(await backend.stats(queue, Date.now())).toMatchObject({ leased: 1, ready: 0 });
    // Dead on the second attempt: the letter keeps both attempts, the stream and state are empty.
    const deadAt = Date.now();
    const dead = { kind: 'dead', reason: 'max-attempts', error } as const;
    expect(await backend.settle(second.lease, dead, deadAt)).toBe(true);
    const letter = await backend.getDeadLetter(id);
    expect(letter).toMatchObject({ id, sourceQueue: queue, reason: 'max-attempts', deadAt });
    expect(letter?.attempts.map(a => [a.attempt, a.code])).toEqual([
      [1, 'E'],
      [2, 'E'],
    ]);
    expect(await messagesIn(backend, queue)).toBe(0);
    expect(await stateOf(backend, queue, id)).toBeUndefined();
    expect(await backend.stats(queue, Date.now())).toEqual({
      ready: 0,
      scheduled: 0,
      leased: 0,
      dead: 1,
    });
  });

  it('defer gives the attempt back and the broker waits out the delay', async () => {
    const queue = newQueue('defer');
    await send(backend, queue);
    const first = (await fetchOne(backend, queue))!;
    expect(await backend.settle(first.lease, { kind: 'defer', delayMs: 200 }, Date.now())).toBe(
      true,
    );
    expect(await backend.stats(queue, Date.now())).toMatchObject({ scheduled: 1, leased: 0 });
    const again = await eventually(() => fetchOne(backend, queue));
    expect(again.message.attempt).toBe(1);
    expect(await backend.settle(again.lease, { kind: 'ack' }, Date.now())).toBe(true);
  });

  it('working() on each heartbeat keeps the broker from redelivering past its ack wait', async () => {
    const queue = newQueue('beat');
    await send(tight, queue);
    const d = (await fetchOne(tight, queue, 300))!; // broker ack wait: 300 ms
    for (let i = 0; i < 8; i++) {
      await new Promise(resolve => setTimeout(resolve, 100));
      expect(await tight.extendLeases([d.lease], 300, Date.now())).toEqual([d.message.id]);
    }
    // 800 ms later, three ack waits: still the same delivery, nothing redelivered (a
    // redelivery would have written a state document for the lost first lease).
    expect(await fetchOne(tight, queue, 300)).toBeUndefined();
    expect(await stateOf(tight, queue, d.message.id)).toBeUndefined();
    expect(await tight.settle(d.lease, { kind: 'ack' }, Date.now())).toBe(true);
  });

  it('the ack wait is the net: a redelivery of an unsettled lease waits for the recovery decision', async () => {
    const queue = newQueue('net');
    const id = await send(tight, queue);
    const crashed = (await fetchOne(tight, queue, 200))!;
    // Nobody recovers for a while: the broker redelivers after 200 ms. Fetch does not hand out
    // a second lease: the first one (in memory, no document) is lost, so it writes the document
    // of a lease that has already expired, attempt 1 spent, and leaves it to recovery.
    const lost = await eventually(async () => {
      expect(await fetchOne(tight, queue, 200)).toBeUndefined();
      return (await stateOf(tight, queue, id))?.value;
    });
    expect(lost).toMatchObject({ attempt: 1, history: [] });
    expect(lost.lease!.expiresAt).toBeLessThanOrEqual(Date.now());
    const recovered = await tight.recoverExpiredLeases({
      queue,
      now: Date.now(),
      limit: 10,
      decide: expired => {
        expect(expired.message).toMatchObject({ id, attempt: 1 });
        return { kind: 'retry', delayMs: 0, error: { code: 'LEASE_EXPIRED', message: 'gone' } };
      },
    });
    expect(recovered).toBe(1);
    const next = await eventually(() => fetchOne(tight, queue, 200));
    expect(next.message.attempt).toBe(2);
    expect(await tight.settle(crashed.lease, { kind: 'ack' }, Date.now())).toBe(false);
    expect(await tight.settle(next.lease, { kind: 'ack' }, Date.now())).toBe(true);
    expect(await messagesIn(tight, queue)).toBe(0);
  });

  it('finishes a dead-lettering that was interrupted before the term (crash safety)', async () => {
    const queue = newQueue('crash');
    const id = await send(tight, queue, { order: 9 });
    const leased = (await fetchOne(tight, queue, 200))!;
    // What a process that died right after marking the state would leave behind.
    const error = { code: 'BAD', message: 'poison' };
    const attempt = { attempt: 1, startedAt: 1, endedAt: 1, ...error };
    const marked: MessageState = {
      attempt: 1,
      history: [attempt],
      lease: { token: 't', reply: 'r', seq: await seqOf(tight, queue), leasedAt: 1, expiresAt: 2 },
      dead: { reason: 'failed', error, deadAt: 1 },
    };
    const subject = tight.names.stateSubject(queue, id);
    expect(await state.put(subject, marked, 0)).toBeGreaterThan(0);
    // Its own lease is fenced off by the mark: settling it now is refused.
    expect(await tight.settle(leased.lease, { kind: 'retry', delayMs: 0, error }, Date.now())).toBe(
      false,
    );
    // The broker redelivers after the ack wait; the next fetch completes the job.
    await eventually(async () => {
      await fetchOne(tight, queue, 200);
      return (await tight.getDeadLetter(id)) ?? undefined;
    });
    expect(await tight.getDeadLetter(id)).toMatchObject({
      id,
      reason: 'failed',
      lastError: error,
      message: { payload: { order: 9 }, attempt: 1 },
    });
    expect(await messagesIn(tight, queue)).toBe(0);
    expect(await stateOf(tight, queue, id)).toBeUndefined();
  });

  it.skipIf(!existsSync(dist))(
    'kill -9 while holding a lease: the message comes back as a spent attempt, history kept',
    async () => {
      const queue = newQueue('kill');
      const id = await send(backend, queue, { order: 1 });
      expect(await leaseAndDie(queue, 300)).toBe(id);
      const seen: number[] = [];
      const consumer = consume({
        backend,
        queue,
        maxAttempts: 3,
        leaseMs: 300,
        pollIntervalMs: 50,
        backoff: constantBackoff({ delayMs: 100 }),
        handler: m => {
          seen.push(m.attempt);
          return fail('still poison');
        },
      });
      try {
        // The consumer raises the ack wait to its leaseMs + 5 s: the redelivery may take that long.
        const letter = await eventually(() => backend.getDeadLetter(id), 15_000);
        expect(seen).toEqual([2]);
        expect(letter.attempts.map(a => [a.attempt, a.code])).toEqual([
          [1, 'LEASE_EXPIRED'],
          [2, 'FAILED'],
        ]);
        expect(letter.message).toMatchObject({ payload: { order: 1 }, attempt: 2 });
        expect(await messagesIn(backend, queue)).toBe(0);
      } finally {
        await consumer.stop();
      }
    },
    20_000,
  );

  it('recovery removes a dead mark whose message is gone (the process died after the term)', async () => {
    const queue = newQueue('orphan');
    const id = await send(backend, queue);
    const seq = await seqOf(backend, queue);
    const d = (await fetchOne(backend, queue))!;
    const error = { code: 'BAD', message: 'poison' };
    // The term went out (here: the message is acked), the state delete did not.
    const marked: MessageState = {
      attempt: 1,
      history: [{ attempt: 1, startedAt: 1, endedAt: 1, ...error }],
      lease: { token: 't', reply: 'r', seq, leasedAt: 1, expiresAt: 2 },
      dead: { reason: 'failed', error, deadAt: 1 },
    };
    await state.put(backend.names.stateSubject(queue, id), marked, 0);
    expect(await backend.settle(d.lease, { kind: 'ack' }, Date.now())).toBe(true);
    await eventually(async () => ((await messagesIn(backend, queue)) === 0 ? true : undefined));
    expect(await backend.stats(queue, Date.now())).toMatchObject({ leased: 1 });
    const decided: unknown[] = [];
    const count = await backend.recoverExpiredLeases({
      queue,
      now: Date.now(),
      limit: 10,
      decide: expired => (decided.push(expired), { kind: 'retry', delayMs: 0, error }),
    });
    expect([count, decided]).toEqual([0, []]);
    expect(await stateOf(backend, queue, id)).toBeUndefined();
    expect(await backend.stats(queue, Date.now())).toMatchObject({ leased: 0 });
  });

  it('deleting a document that was overwritten or already deleted answers false, not an error', async () => {
    const subject = backend.names.stateSubject(newQueue('docs'), 'm1');
    const first = (await state.put(subject, { attempt: 1, history: [] }, 0))!;
    const second = (await state.put(subject, { attempt: 2, history: [] }, first))!;
    expect(await state.delete(first)).toBe(false); // overwritten: max one per subject
    expect(await state.delete(second)).toBe(true);
    expect(await state.delete(second)).toBe(false); // already gone
    expect(await state.delete(second + 1_000_000)).toBe(false); // never existed
    // The stream's last sequence, deleted twice (nats-server answers 10043, not 10057).
    const last = (await state.put(`${subject}x`, { attempt: 1, history: [] }, 0))!;
    expect(await state.delete(last)).toBe(true);
    expect(await state.delete(last)).toBe(false);
  });

  it('escapes queue names and ids that are not subject tokens', async () => {
    const queue = newQueue('orders.eu west/ü>*');
    const id = 'order 7.payment_1';
    await createProducer({ backend }).send({ queue, id, type: 't', payload: 'x' });
    const d = (await fetchOne(backend, queue))!;
    expect(d.message).toMatchObject({ id, queue });
    const dead = { kind: 'dead', reason: 'failed', error: { code: 'X', message: 'x' } } as const;
    expect(await backend.settle(d.lease, dead, Date.now())).toBe(true);
    const dlq = deadLetters({ backend });
    expect((await dlq.list({ queue })).items.map(l => l.id)).toEqual([id]);
    const replayed = await dlq.replay({ filter: { queue }, actor: 'test' });
    expect(replayed.ids).toEqual([id]);
    const again = (await fetchOne(backend, queue))!;
    expect(again.message.idempotencyKey).toBe(id);
    await backend.settle(again.lease, { kind: 'ack' }, Date.now());
  });

  it('terminates a message no Bulwark producer wrote instead of blocking the queue', async () => {
    const queue = newQueue('foreign');
    await jetstream(backend.connection).publish(backend.names.queueSubject(queue), 'not json');
    expect(await fetchOne(backend, queue)).toBeUndefined();
    await eventually(async () => ((await messagesIn(backend, queue)) === 0 ? true : undefined));
  });

  it('wakes subscribers on an enqueue from another connection', async () => {
    const queue = newQueue('wake');
    let woke = 0;
    const subscription = await backend.subscribe(queue, () => woke++);
    await backend.connection.flush();
    await send(tight, queue);
    await eventually(async () => (woke > 0 ? true : undefined), 2_000);
    subscription.dispose();
    const d = (await fetchOne(backend, queue))!;
    await backend.settle(d.lease, { kind: 'ack' }, Date.now());
  });

  it("raises the consumer's ack wait when a fetch asks for a longer lease", async () => {
    const queue = newQueue('ackwait');
    const name = backend.names.consumerName(queue);
    await backend.fetch({ queue, limit: 1, leaseMs: 1_000, now: Date.now() });
    const ackWait = async () =>
      ((await jsm.consumers.info(backend.names.queueStream, name)).config.ack_wait ?? 0) / 1e6;
    expect(await ackWait()).toBe(6_000);
    await backend.fetch({ queue, limit: 1, leaseMs: 20_000, now: Date.now() });
    expect(await ackWait()).toBe(25_000);
    // A shorter lease later keeps the longer net.
    await backend.fetch({ queue, limit: 1, leaseMs: 500, now: Date.now() });
    expect(await ackWait()).toBe(25_000);
  });

  it('at maxAckPending a fetch returns nothing (not an error) until a delivery settles', async () => {
    const small = await natsQueueBackend({ url: url!, prefix, maxAckPending: 2 });
    try {
      const queue = newQueue('pending');
      for (const i of [1, 2, 3]) await send(small, queue, i);
      const first = await small.fetch({ queue, limit: 3, leaseMs: 10_000, now: Date.now() });
      expect(first.deliveries.map(d => d.message.payload)).toEqual([1, 2]);
      const none = await small.fetch({ queue, limit: 3, leaseMs: 10_000, now: Date.now() });
      expect(none.deliveries).toEqual([]);
      await small.settle(first.deliveries[0]!.lease, { kind: 'ack' }, Date.now());
      const third = await eventually(() => fetchOne(small, queue));
      expect(third.message.payload).toBe(3);
    } finally {
      await small.close();
    }
  });

  it('a pull answered slowly (not saturated) waits for the answer instead of stranding it', async () => {
    // A responder of our own on a consumer JetStream does not have plays a server under load
    // that answers a no_wait pull after longer than the silence threshold.
    const nc = backend.connection;
    const stream = `${prefix}slow`;
    const subject = `$JS.API.CONSUMER.MSG.NEXT.${stream}.c`;
    const responder = nc.subscribe(subject, {
      max: 2,
      callback: (_err, msg) => {
        setTimeout(() => nc.publish(msg.reply!, 'late'), PULL_SILENCE_MS * 2);
      },
    });
    await nc.flush();
    let asked = 0;
    const slow = await pullNow(nc, stream, 'c', 1, 10_000, () => {
      asked++;
      return Promise.resolve(false);
    });
    expect(slow.map(m => m.string())).toEqual(['late']);
    expect(asked).toBeGreaterThanOrEqual(1);
    // Saturated: silence means "nothing for now", at once.
    const startedAt = performance.now();
    const none = await pullNow(nc, stream, 'c', 1, 10_000, () => Promise.resolve(true));
    expect(none).toEqual([]);
    expect(performance.now() - startedAt).toBeLessThan(PULL_SILENCE_MS * 2);
    responder.unsubscribe();
  });

  it('refuses leases it does not know and keeps going', async () => {
    const bogus: Lease = { id: 'nope', token: 'x' };
    expect(await backend.settle(bogus, { kind: 'ack' }, Date.now())).toBe(false);
    expect(await backend.extendLeases([bogus], 1_000, Date.now())).toEqual([]);
    const unknown: Lease = { id: 'nope', token: `${crypto.randomUUID()}:no-such-queue` };
    expect(await backend.settle(unknown, { kind: 'ack' }, Date.now())).toBe(false);
  });

  it('close() drains the connection; a server that is not there fails as BACKEND_ERROR', async () => {
    const other = await natsQueueBackend({ url: url!, prefix });
    const queue = newQueue('close');
    const id = await send(other, queue);
    await other.close();
    expect(other.connection.isClosed()).toBe(true);
    // The message sent before close() is stored.
    const d: Delivery = (await fetchOne(backend, queue))!;
    expect(d.message.id).toBe(id);
    await backend.settle(d.lease, { kind: 'ack' }, Date.now());
    await expect(
      natsQueueBackend({ url: 'nats://127.0.0.1:1', requestTimeoutMs: 500 }),
    ).rejects.toMatchObject({ code: 'BACKEND_ERROR', retryable: true });
  });
});
