/**
 * The queue backend contract: one suite every `QueueBackend` runs, so attempt counts, backoff
 * timing, outcomes, dead letters, replay, purge and lease recovery are the same on every backend.
 *
 * Usage (in a backend's test file):
 *   describeQueueBackendContract('postgres', async () => ({ backend, close }));
 * The factory runs before each test. Tests use their own queue names, so a factory may return the
 * same backend every time; tests that look at all dead letters filter by their queue.
 */
import { afterEach, beforeEach, describe, expect, it as vitestIt } from 'vitest';
import { BulwarkError, constantBackoff, exponentialBackoff, type Backoff } from '@bulwark/core';
import type { DeadLetter, QueueBackend } from '../backend.js';
import { REPLAYED_FROM_HEADER, type Message } from '../message.js';
import { defer, fail, retry, type Outcome } from '../outcome.js';
import { ContractHarness, type ContractTiming } from './harness.js';

export interface QueueBackendUnderTest {
  readonly backend: QueueBackend;
  /** Called after each test (close what the factory opened for this test, if anything). */
  close?(): Promise<void>;
  /**
   * Who owns time. 'virtual' (default): the backend honours every `now` it is given, and the suite
   * runs on a TestClock with exact timing assertions. 'broker': the broker keeps its own timers
   * (TTLs, redelivery), so the suite runs on real time and each timed event is asserted no earlier
   * than expected (less {@link BROKER_EARLY_SLACK_MS}) and at most `toleranceMs` later than
   * expected after the event before it.
   */
  readonly timing?: ContractTiming;
  /** Broker timing only: allowed lateness of a timed event, ms. Default 500. */
  readonly toleranceMs?: number;
}

/**
 * Broker timing: how much earlier than expected an event may be measured, ms. Node's timers and
 * the broker's each round to whole milliseconds against `Date.now()`.
 */
export const BROKER_EARLY_SLACK_MS = 2;

/**
 * Per-test limit. Virtual runs take milliseconds; broker runs really wait for their delays (a few
 * seconds at most per test).
 */
const TEST_TIMEOUT_MS = 30_000;

const it = (name: string, fn: () => Promise<void>): void => vitestIt(name, fn, TEST_TIMEOUT_MS);

export type QueueBackendFactory = () => QueueBackendUnderTest | Promise<QueueBackendUnderTest>;

let queueCounter = 0;

/** Text a bulk or bound encoding has to escape: tabs, newlines, backslashes, quotes, non-ASCII. */
const ODD_TEXT = 'tab\there\nnew line \\ back\\slash "quoted" \\N é \u{1F600}';

/** Registers the contract tests in a `describe` block named after the backend. */
export function describeQueueBackendContract(name: string, factory: QueueBackendFactory): void {
  describe(`QueueBackend contract: ${name}`, () => {
    let subject: QueueBackendUnderTest;
    let h: ContractHarness;
    let queue: string;

    beforeEach(async () => {
      subject = await factory();
      h = new ContractHarness(subject.backend, {
        ...(subject.timing === undefined ? {} : { timing: subject.timing }),
        ...(subject.toleranceMs === undefined ? {} : { toleranceMs: subject.toleranceMs }),
      });
      queue = `contract-${process.pid}-${Date.now().toString(36)}-${++queueCounter}`;
    });

    afterEach(async () => {
      await h.stopAll();
      await subject.close?.();
    });

    /**
     * Asserts when things happened, in ms since `h.t0` (or since `start`). Virtual timing: exactly
     * `expected`. Broker timing: each time is no earlier than expected and at most `toleranceMs`
     * later than expected after the time before it (so one late step does not fail the next).
     * `from: 'previous'` also checks each gap is no shorter than expected: a retry's delay counts
     * from the delivery before it. Use `'start'` when events are scheduled from a fixed start (a
     * rate-limited replay).
     */
    function expectTimes(
      actual: readonly number[],
      expected: readonly number[],
      from: 'previous' | 'start' = 'previous',
    ): void {
      if (h.timing === 'virtual') {
        expect(actual).toEqual(expected);
        return;
      }
      expect(actual).toHaveLength(expected.length);
      const wrong: string[] = [];
      for (let i = 0; i < expected.length; i++) {
        const a = actual[i]!;
        const e = expected[i]!;
        const gap = a - (i === 0 ? 0 : actual[i - 1]!);
        const expectedGap = e - (i === 0 ? 0 : expected[i - 1]!);
        const early = from === 'previous' ? gap < expectedGap - BROKER_EARLY_SLACK_MS : false;
        if (early || a < e - BROKER_EARLY_SLACK_MS || gap > expectedGap + h.toleranceMs) {
          wrong.push(`#${i}: at ${a} ms (gap ${gap}), expected ${e} ms (gap ${expectedGap})`);
        }
      }
      expect(wrong, `times ${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`).toEqual([]);
    }

    /**
     * Nothing happened before `ms` (since `h.t0`). Virtual timing: nothing at all yet. Broker
     * timing: a real wait overshoots by however long the process was busy, so an event seen
     * since then is fine if it came no earlier than `ms`.
     */
    function expectNoneBefore(times: readonly number[], ms: number): void {
      if (h.timing === 'virtual') expect(times).toEqual([]);
      else expect(times.filter(t => t < ms - BROKER_EARLY_SLACK_MS)).toEqual([]);
    }

    /** One time (ms since `h.t0`): exact on virtual timing, within the tolerance on broker timing. */
    function expectTime(actual: number, expected: number): void {
      expectTimes([actual], [expected]);
    }

    /** Virtual timing: `t`; broker timing: any number (checked with `expectTime` instead). */
    const timeMatcher = (t: number): unknown => (h.timing === 'virtual' ? t : expect.any(Number));

    const noJitter = (baseMs: number): Backoff =>
      exponentialBackoff({ baseMs, maxMs: 60_000, jitter: 'none' });

    /** A handler that records each delivery (with its time) and answers from a script. */
    function recorder(
      answer: (message: Message, n: number) => Outcome | void | Promise<Outcome | void>,
    ) {
      const seen: { id: string; attempt: number; at: number; payload: unknown }[] = [];
      const handler = (message: Message) => {
        seen.push({
          id: message.id,
          attempt: message.attempt,
          at: h.elapsed(),
          payload: message.payload,
        });
        return answer(message, seen.length);
      };
      return { seen, handler };
    }

    async function deadOf(id: string): Promise<DeadLetter> {
      return h.dlq.show(id);
    }

    /** Makes `n` dead letters in `q` whose error code is `code` (one attempt each). */
    async function makeDead(
      q: string,
      n: number,
      code: string,
      payload = (i: number): unknown => ({ i }),
    ) {
      const ids: string[] = [];
      for (let i = 0; i < n; i++) {
        ids.push(await h.producer.send({ queue: q, type: 'test.dead', payload: payload(i) }));
      }
      let handled = 0;
      const c = h.consume({
        queue: q,
        maxAttempts: 1,
        handler: m => {
          handled++;
          return fail({ code, message: `poison ${JSON.stringify(m.payload)}` });
        },
      });
      await h.run(50, () => handled === n);
      await c.stop();
      return ids;
    }

    describe('delivery and ack', () => {
      it('delivers each message once with its fields intact and removes it on ack', async () => {
        const id = await h.producer.send({
          queue,
          type: 'order.placed',
          payload: { orderId: 7, items: ['a', 'b'] },
          headers: { 'x-trace': 'abc' },
          idempotencyKey: 'order-7',
        });
        const got: Message[] = [];
        h.consume({ queue, maxAttempts: 3, handler: m => void got.push(m) });
        await h.run(10, () => got.length === 1);
        expect(got).toHaveLength(1);
        const m = got[0]!;
        expect(m).toMatchObject({
          id,
          queue,
          type: 'order.placed',
          payload: { orderId: 7, items: ['a', 'b'] },
          headers: { 'x-trace': 'abc' },
          idempotencyKey: 'order-7',
          attempt: 1,
          firstSeenAt: timeMatcher(h.t0),
        });
        expectTime(m.firstSeenAt - h.t0, 0);
        await h.run(1_000);
        expect(got).toHaveLength(1);
        expect(await h.backend.stats(queue, h.clock.wallNow())).toEqual({
          ready: 0,
          scheduled: 0,
          leased: 0,
          dead: 0,
        });
      });

      it('sendBatch stores messages in order and delivers them oldest first', async () => {
        const ids = await h.producer.sendBatch(
          [0, 1, 2, 3, 4].map(i => ({ queue, type: 't', payload: i })),
        );
        const { seen, handler } = recorder(() => undefined);
        h.consume({ queue, maxAttempts: 1, handler });
        await h.run(10, () => seen.length === 5);
        expect(seen.map(s => s.id)).toEqual(ids);
      });

      it('skips a record whose id is still queued (a re-publish), all in one call', async () => {
        const id = await h.producer.send({ queue, type: 't', payload: 'first' });
        await h.producer.sendBatch([
          { id, queue, type: 't', payload: 'again' },
          { queue, type: 't', payload: 'other' },
        ]);
        const { seen, handler } = recorder(() => undefined);
        h.consume({ queue, maxAttempts: 1, handler });
        await h.run(10, () => seen.length >= 2);
        expect(seen.map(s => s.payload)).toEqual(['first', 'other']);
      });

      it('a large sendBatch keeps every field and the order, and skips a re-published id', async () => {
        // Large enough for a backend's bulk path (PostgreSQL loads 200 or more by COPY).
        const odd = ODD_TEXT;
        const payloads: unknown[] = [
          { i: 0, nested: { list: [1, 2.5, null, true], text: odd } },
          odd,
          '',
          42,
          null,
          false,
          [odd, { deep: [[]] }],
        ];
        const first = await h.producer.send({ queue, type: 't', payload: 'already queued' });
        const batch = Array.from({ length: 300 }, (_, i) => ({
          queue,
          // 'NULL': what an array literal must quote to keep it from being SQL NULL.
          type: i === 4 ? 'NULL' : i % 2 === 0 ? 'even' : `odd ${odd}`,
          payload: payloads[i % payloads.length],
          headers: { 'x-n': String(i), 'x-odd': odd },
          ...(i % 3 === 0 ? { idempotencyKey: i === 3 ? 'NULL' : `key ${i} ${odd}` } : {}),
        }));
        const ids = await h.producer.sendBatch([
          ...batch.slice(0, 150),
          { id: first, queue, type: 't', payload: 'again' },
          ...batch.slice(150),
        ]);
        expect(ids).toHaveLength(301);
        const got: Message[] = [];
        h.consume({ queue, maxAttempts: 1, handler: m => void got.push(m) });
        await h.run(10, () => got.length >= 301);
        await h.run(100);
        expect(got.map(m => m.id)).toEqual([first, ...ids.filter(id => id !== first)]);
        expect(got[0]!.payload).toBe('already queued');
        got.slice(1).forEach((m, i) => {
          const sent = batch[i]!;
          expect(m).toMatchObject({
            queue,
            type: sent.type,
            payload: sent.payload,
            headers: sent.headers,
            attempt: 1,
          });
          expect(m.idempotencyKey).toBe(sent.idempotencyKey);
        });
      });

      it('send() keeps every kind of payload, and skips a re-sent id that is still queued', async () => {
        // One message per call: a backend's single-message path (PostgreSQL binds the values of
        // one row instead of unpacking a JSON document) must store what the batch path stores.
        const odd = ODD_TEXT;
        const payloads: unknown[] = [odd, '', 42, 2.5, null, false, [odd, { deep: [[]] }], {}];
        const ids: string[] = [];
        for (const [i, payload] of payloads.entries()) {
          ids.push(
            await h.producer.send({
              queue,
              type: `t ${odd}`,
              payload,
              headers: { 'x-odd': odd },
              ...(i % 2 === 0 ? { idempotencyKey: `key ${i} ${odd}` } : {}),
            }),
          );
        }
        expect(await h.producer.send({ id: ids[0]!, queue, type: 't', payload: 'again' })).toBe(
          ids[0],
        );
        const got: Message[] = [];
        h.consume({ queue, maxAttempts: 1, handler: m => void got.push(m) });
        await h.run(10, () => got.length >= payloads.length);
        await h.run(100);
        expect(got.map(m => m.id)).toEqual(ids);
        got.forEach((m, i) => {
          expect(m).toMatchObject({ type: `t ${odd}`, headers: { 'x-odd': odd }, attempt: 1 });
          expect(m.payload).toEqual(payloads[i]);
          expect(m.idempotencyKey).toBe(i % 2 === 0 ? `key ${i} ${odd}` : undefined);
        });
      });

      it('honours a send delay', async () => {
        await h.producer.send({ queue, type: 't', payload: null, delayMs: 500 });
        const { seen, handler } = recorder(() => undefined);
        h.consume({ queue, maxAttempts: 1, handler });
        await h.run(499);
        expectNoneBefore(
          seen.map(s => s.at),
          500,
        );
        await h.run(1, () => seen.length === 1);
        expectTimes(
          seen.map(s => s.at),
          [500],
        );
      });
    });

    describe('retry and backoff', () => {
      it('retries a retryable error on the backoff schedule, then dead-letters after maxAttempts', async () => {
        const id = await h.producer.send({ queue, type: 't', payload: 'x' });
        const { seen, handler } = recorder(() => {
          throw new BulwarkError('UPSTREAM_DOWN', 'upstream is down', { retryable: true });
        });
        h.consume({ queue, maxAttempts: 4, backoff: noJitter(100), handler });
        await h.run(5_000, () => seen.length === 4);
        expect(seen.map(s => s.attempt)).toEqual([1, 2, 3, 4]);
        expectTimes(
          seen.map(s => s.at),
          [0, 100, 300, 700],
        );
        const dead = await deadOf(id);
        expect(dead.reason).toBe('max-attempts');
        expect(dead.attempts.map(a => [a.attempt, a.code])).toEqual([
          [1, 'UPSTREAM_DOWN'],
          [2, 'UPSTREAM_DOWN'],
          [3, 'UPSTREAM_DOWN'],
          [4, 'UPSTREAM_DOWN'],
        ]);
        expectTimes(
          dead.attempts.map(a => a.endedAt - h.t0),
          [0, 100, 300, 700],
        );
        expect(dead.lastError).toEqual({ code: 'UPSTREAM_DOWN', message: 'upstream is down' });
      });

      it('treats an error without a retryable flag as retryable', async () => {
        await h.producer.send({ queue, type: 't', payload: 'x' });
        const { seen, handler } = recorder(() => {
          throw new TypeError('boom');
        });
        h.consume({ queue, maxAttempts: 2, backoff: constantBackoff({ delayMs: 50 }), handler });
        await h.run(1_000, () => seen.length === 2);
        expect(seen.map(s => s.attempt)).toEqual([1, 2]);
        expectTimes(
          seen.map(s => s.at),
          [0, 50],
        );
      });

      it('uses retry({ delayMs }) over the backoff and retryAfterMs as a floor', async () => {
        await h.producer.send({ queue, type: 't', payload: 'x' });
        const { seen, handler } = recorder((_m, n) => {
          if (n === 1) return retry({ delayMs: 250, reason: 'not yet' });
          if (n === 2) {
            throw new BulwarkError('RATE_LIMITED', 'slow down', {
              retryable: true,
              retryAfterMs: 900,
            });
          }
          return undefined;
        });
        h.consume({ queue, maxAttempts: 5, backoff: constantBackoff({ delayMs: 10 }), handler });
        await h.run(5_000, () => seen.length === 3);
        expect(seen.map(s => s.attempt)).toEqual([1, 2, 3]);
        expectTimes(
          seen.map(s => s.at),
          [0, 250, 1_150],
        );
      });

      it('dead-letters a retry() on the last attempt', async () => {
        const id = await h.producer.send({ queue, type: 't', payload: 'x' });
        let handled = 0;
        h.consume({
          queue,
          maxAttempts: 1,
          handler: () => {
            handled++;
            return retry({ reason: 'again', code: 'AGAIN' });
          },
        });
        await h.run(1_000, () => handled === 1);
        const dead = await deadOf(id);
        expect(dead.reason).toBe('max-attempts');
        expect(dead.lastError).toEqual({ code: 'AGAIN', message: 'again' });
      });
    });

    describe('fail and non-retryable errors', () => {
      it('fail(reason) goes straight to the dead letter queue', async () => {
        const id = await h.producer.send({ queue, type: 't', payload: { to: 'bad@' } });
        const { seen, handler } = recorder(() => fail('550 mailbox unavailable'));
        h.consume({ queue, maxAttempts: 5, handler });
        await h.run(5_000, () => seen.length === 1);
        expect(seen).toHaveLength(1);
        const dead = await deadOf(id);
        expect(dead).toMatchObject({
          id,
          sourceQueue: queue,
          reason: 'failed',
          lastError: { code: 'FAILED', message: '550 mailbox unavailable' },
          deadAt: timeMatcher(h.t0),
        });
        expectTime(dead.deadAt - h.t0, 0);
        expect(dead.message).toMatchObject({ id, payload: { to: 'bad@' }, attempt: 1 });
      });

      it('a non-retryable error goes straight to the dead letter queue with its code', async () => {
        const id = await h.producer.send({ queue, type: 't', payload: 1 });
        let handled = 0;
        h.consume({
          queue,
          maxAttempts: 5,
          handler: () => {
            handled++;
            throw new BulwarkError('BAD_ADDRESS', 'no such mailbox', { retryable: false });
          },
        });
        await h.run(5_000, () => handled === 1);
        expect((await deadOf(id)).lastError).toEqual({
          code: 'BAD_ADDRESS',
          message: 'no such mailbox',
        });
      });

      it('a handler that returns something else fails with INVALID_OUTCOME', async () => {
        const id = await h.producer.send({ queue, type: 't', payload: 1 });
        let handled = 0;
        h.consume({ queue, maxAttempts: 5, handler: (() => ++handled && 42) as never });
        await h.run(100, () => handled === 1);
        expect((await deadOf(id)).lastError.code).toBe('INVALID_OUTCOME');
      });
    });

    describe('defer', () => {
      it('redelivers after the delay without spending an attempt', async () => {
        const id = await h.producer.send({ queue, type: 't', payload: 1 });
        const { seen, handler } = recorder((_m, n) => {
          if (n <= 3) return defer({ delayMs: 200 });
          if (n === 4) throw new Error('transient');
          return n === 5 ? defer({ delayMs: 10 }) : undefined;
        });
        h.consume({ queue, maxAttempts: 2, backoff: constantBackoff({ delayMs: 100 }), handler });
        await h.run(5_000, () => seen.length === 6);
        expect(seen.map(s => s.attempt)).toEqual([1, 1, 1, 1, 2, 2]);
        expectTimes(
          seen.map(s => s.at),
          [0, 200, 400, 600, 700, 710],
        );
        await expect(h.dlq.show(id)).rejects.toMatchObject({ code: 'DEAD_LETTER_NOT_FOUND' });
      });
    });

    describe('handler timeout', () => {
      it('aborts the handler signal and counts the attempt as a retryable TIMEOUT', async () => {
        const id = await h.producer.send({ queue, type: 't', payload: 1 });
        const reasons: unknown[] = [];
        h.consume({
          queue,
          maxAttempts: 2,
          handlerTimeoutMs: 1_000,
          backoff: constantBackoff({ delayMs: 100 }),
          handler: (_m, { signal }) =>
            new Promise<void>(() => {
              signal.addEventListener('abort', () => reasons.push(signal.reason));
            }),
        });
        await h.run(5_000, () => reasons.length === 2);
        expect(reasons).toHaveLength(2);
        expect(reasons[0]).toMatchObject({ code: 'TIMEOUT' });
        const dead = await deadOf(id);
        expect(dead.attempts.map(a => [a.attempt, a.code])).toEqual([
          [1, 'TIMEOUT'],
          [2, 'TIMEOUT'],
        ]);
        expectTimes(
          dead.attempts.flatMap(a => [a.startedAt - h.t0, a.endedAt - h.t0]),
          [0, 1_000, 1_100, 2_100],
        );
      });
    });

    describe('leases', () => {
      it('recovers the message of a consumer that stopped heartbeating, as a spent attempt', async () => {
        const id = await h.producer.send({ queue, type: 't', payload: 1 });
        // A consumer that leased the message and then died (no heartbeat, no settlement).
        const crashed = await h.backend.fetch({
          queue,
          limit: 10,
          leaseMs: 1_000,
          now: h.clock.wallNow(),
        });
        expect(crashed.deliveries.map(d => d.message.attempt)).toEqual([1]);
        const { seen, handler } = recorder(() => undefined);
        h.consume({
          queue,
          maxAttempts: 3,
          leaseMs: 1_000,
          backoff: constantBackoff({ delayMs: 300 }),
          handler,
        });
        await h.run(999);
        expectNoneBefore(
          seen.map(s => s.at),
          1_300,
        );
        await h.run(2_000, () => seen.length === 1);
        // The lease ran out at 1000, found by the poll at 1000 (every 100 ms), then 300 ms backoff.
        expect(seen.map(s => [s.id, s.attempt])).toEqual([[id, 2]]);
        expectTimes(
          seen.map(s => s.at),
          [1_300],
        );
        // The dead consumer's late ack is refused (fencing token).
        const stale = crashed.deliveries[0]!.lease;
        expect(await h.backend.settle(stale, { kind: 'ack' }, h.clock.wallNow())).toBe(false);
        expect(await h.backend.extendLeases([stale], 1_000, h.clock.wallNow())).toEqual([]);
      });

      it('dead-letters with LEASE_EXPIRED when the lease runs out on the last attempt', async () => {
        const id = await h.producer.send({ queue, type: 't', payload: 1 });
        await h.backend.fetch({ queue, limit: 1, leaseMs: 500, now: h.clock.wallNow() });
        const c = h.consume({ queue, maxAttempts: 1, leaseMs: 500, handler: () => undefined });
        let recovered = false;
        c.onEvent(e => (recovered ||= e.type === 'lease.recovered'));
        await h.run(1_000, () => recovered);
        const dead = await deadOf(id);
        expect(dead.reason).toBe('max-attempts');
        expect(dead.attempts).toEqual([
          expect.objectContaining({
            attempt: 1,
            code: 'LEASE_EXPIRED',
            startedAt: timeMatcher(h.t0),
            endedAt: timeMatcher(h.t0 + 500),
          }),
        ]);
        expectTimes(
          dead.attempts.flatMap(a => [a.startedAt - h.t0, a.endedAt - h.t0]),
          [0, 500],
        );
      });

      /** Recovers the queue's expired leases as retries due at once; resolves how many. */
      const retryExpiredLeases = (now: number): Promise<number> =>
        h.backend.recoverExpiredLeases({
          queue,
          now,
          limit: 10,
          decide: () => ({
            kind: 'retry',
            delayMs: 0,
            error: { code: 'LEASE_EXPIRED', message: 'x' },
          }),
        });

      it('a stale lease token cannot settle after another consumer took the message', async () => {
        await h.producer.send({ queue, type: 't', payload: 1 });
        // Read after the send: with the broker's timing the producer stamped the message with
        // the real clock, and a fetch "before" it was sent would rightly not see it yet.
        const t = h.clock.wallNow();
        const first = await h.backend.fetch({ queue, limit: 1, leaseMs: 100, now: t });
        const decided = await retryExpiredLeases(t + 100);
        expect(decided).toBe(1);
        const second = await h.backend.fetch({ queue, limit: 1, leaseMs: 100, now: t + 100 });
        expect(second.deliveries[0]?.message.attempt).toBe(2);
        const old = first.deliveries[0]!.lease;
        const current = second.deliveries[0]!.lease;
        // A heartbeat of the stale holder keeps nothing; the current holder's keeps its lease.
        expect(await h.backend.extendLeases([old], 100, t + 100)).toEqual([]);
        expect(await h.backend.extendLeases([old, current], 100, t + 100)).toEqual([current.id]);
        expect(await h.backend.settle(old, { kind: 'ack' }, t + 101)).toBe(false);
        expect(await h.backend.settle(current, { kind: 'ack' }, t + 101)).toBe(true);
        expect(await h.backend.settle(current, { kind: 'ack' }, t + 102)).toBe(false);
      });

      it('ackMany (where a backend has it) acks the current leases of a batch, never a stale one', async () => {
        const ackMany = h.backend.ackMany?.bind(h.backend);
        if (ackMany === undefined) return; // optional: the consumer then settles one by one
        const ids = await h.producer.sendBatch(
          [1, 2, 3].map(i => ({ queue, type: 't', payload: i })),
        );
        const t = h.clock.wallNow();
        const first = await h.backend.fetch({ queue, limit: 3, leaseMs: 100, now: t });
        expect(first.deliveries).toHaveLength(3);
        const decided = await retryExpiredLeases(t + 100);
        expect(decided).toBe(3);
        const second = await h.backend.fetch({ queue, limit: 3, leaseMs: 100, now: t + 100 });
        const current = new Map(second.deliveries.map(d => [d.message.id, d.lease]));
        const stale = first.deliveries.find(d => d.message.id === ids[0])!.lease;
        const acked = await ackMany([stale, current.get(ids[1]!)!, current.get(ids[2]!)!], t + 101);
        expect([...acked].sort()).toEqual([ids[1], ids[2]].sort());
        // The stale lease's message is still leased to its current holder, who can ack it.
        expect((await h.backend.stats(queue, t + 101)).leased).toBe(1);
        expect(await ackMany([current.get(ids[0]!)!], t + 102)).toEqual([ids[0]]);
        expect(await ackMany([], t + 102)).toEqual([]);
      });

      it("heartbeats keep a long-running handler's lease, so no other consumer takes it", async () => {
        await h.producer.send({ queue, type: 't', payload: 1 });
        let finished = false;
        const { seen, handler } = recorder(
          () =>
            new Promise<void>(resolve =>
              h.clock.setTimer(() => {
                finished = true;
                resolve();
              }, 3_000),
            ),
        );
        h.consume({
          queue,
          maxAttempts: 3,
          leaseMs: 1_000,
          heartbeatMs: 300,
          handlerTimeoutMs: 10_000,
          handler,
        });
        // The second consumer starts once the first holds the message: started together, the two
        // fetches race on a server backend (PostgreSQL runs them on two connections) and the
        // second could lease it first, which is not what this test is about.
        await h.run(0, () => seen.length > 0);
        const other = recorder(() => undefined);
        h.consume({ queue, maxAttempts: 3, leaseMs: 1_000, handler: other.handler });
        await h.run(5_000, () => finished);
        expect(finished).toBe(true);
        expect(seen.map(s => s.attempt)).toEqual([1]);
        expect(other.seen).toEqual([]);
        expect((await h.backend.stats(queue, h.clock.wallNow())).leased).toBe(0);
      });
    });

    describe('concurrency and prefetch', () => {
      it('runs at most `concurrency` handlers and leases at most `prefetch` messages', async () => {
        await h.producer.sendBatch(
          Array.from({ length: 10 }, (_, i) => ({ queue, type: 't', payload: i })),
        );
        const release: (() => void)[] = [];
        let running = 0;
        let maxRunning = 0;
        const done: unknown[] = [];
        const c = h.consume({
          queue,
          maxAttempts: 1,
          concurrency: 2,
          prefetch: 3,
          handler: m =>
            new Promise<void>(resolve => {
              running++;
              maxRunning = Math.max(maxRunning, running);
              release.push(() => {
                running--;
                done.push(m.payload);
                resolve();
              });
            }),
        });
        await h.run(10, () => c.running === 2 && c.held === 3);
        expect(c.running).toBe(2);
        expect(c.held).toBe(3);
        expect((await h.backend.stats(queue, h.clock.wallNow())).leased).toBe(3);
        while (done.length < 10) {
          const next = release.shift();
          expect(next).toBeDefined();
          next!();
          await h.run(1, () => release.length > 0 || done.length === 10);
          expect(c.running).toBeLessThanOrEqual(2);
          expect(c.held).toBeLessThanOrEqual(3);
        }
        expect(maxRunning).toBe(2);
        expect(done).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      });

      it('stop() hands buffered messages back without spending an attempt', async () => {
        await h.producer.sendBatch(
          Array.from({ length: 3 }, (_, i) => ({ queue, type: 't', payload: i })),
        );
        let release: (() => void) | undefined;
        const c = h.consume({
          queue,
          maxAttempts: 5,
          concurrency: 1,
          prefetch: 3,
          handler: () => new Promise<void>(resolve => (release = resolve)),
        });
        await h.run(10, () => c.held === 3);
        expect(c.held).toBe(3);
        const stopped = c.stop();
        await h.idle();
        release!();
        await stopped;
        const { seen, handler } = recorder(() => undefined);
        h.consume({ queue, maxAttempts: 5, handler });
        await h.run(10, () => seen.length === 2);
        expect(seen.map(s => [s.payload, s.attempt])).toEqual([
          [1, 1],
          [2, 1],
        ]);
      });
    });

    describe('dead letters: list, search, show', () => {
      it('keeps the original message, headers, source queue and every attempt', async () => {
        const id = await h.producer.send({
          queue,
          type: 'email.send',
          payload: { to: 'a@example.com' },
          headers: { 'x-tenant': 't1' },
          idempotencyKey: 'mail-1',
        });
        let handled = 0;
        h.consume({
          queue,
          maxAttempts: 3,
          backoff: constantBackoff({ delayMs: 1_000 }),
          handler: m => {
            handled++;
            throw new BulwarkError(`E${m.attempt}`, `failure ${m.attempt}`, { retryable: true });
          },
        });
        await h.run(10_000, () => handled === 3);
        const dead = await deadOf(id);
        expect(dead.message).toEqual({
          id,
          queue,
          type: 'email.send',
          payload: { to: 'a@example.com' },
          headers: { 'x-tenant': 't1' },
          idempotencyKey: 'mail-1',
          attempt: 3,
          firstSeenAt: timeMatcher(h.t0),
        });
        expectTime(dead.message.firstSeenAt - h.t0, 0);
        expect(dead.sourceQueue).toBe(queue);
        expect(dead.attempts).toEqual([
          {
            attempt: 1,
            code: 'E1',
            message: 'failure 1',
            startedAt: timeMatcher(h.t0),
            endedAt: timeMatcher(h.t0),
          },
          {
            attempt: 2,
            code: 'E2',
            message: 'failure 2',
            startedAt: timeMatcher(h.t0 + 1_000),
            endedAt: timeMatcher(h.t0 + 1_000),
          },
          {
            attempt: 3,
            code: 'E3',
            message: 'failure 3',
            startedAt: timeMatcher(h.t0 + 2_000),
            endedAt: timeMatcher(h.t0 + 2_000),
          },
        ]);
        expectTimes(
          dead.attempts.flatMap(a => [a.startedAt - h.t0, a.endedAt - h.t0]),
          [0, 0, 1_000, 1_000, 2_000, 2_000],
        );
        expectTime(dead.deadAt - h.t0, 2_000);
        expect((await h.backend.stats(queue, h.clock.wallNow())).dead).toBe(1);
      });

      it('filters by queue, type, error code, time range, text and ids, and pages', async () => {
        const other = `${queue}-other`;
        const a = await makeDead(queue, 3, 'BAD_INPUT', i => ({ customer: `alice-${i}` }));
        await h.run(1_000);
        const b = await makeDead(queue, 2, 'NO_STOCK', i => ({ customer: `bob-${i}` }));
        const c = await makeDead(other, 1, 'BAD_INPUT');
        const ids = async (filter: object) =>
          (await h.dlq.list({ queue, ...filter }, { limit: 1_000 })).items.map(d => d.id).sort();
        expect(await ids({})).toEqual([...a, ...b].sort());
        expect(await ids({ errorCode: 'NO_STOCK' })).toEqual([...b].sort());
        expect(await ids({ text: 'ALICE-1' })).toEqual([a[1]]);
        expect(await ids({ text: 'poison' })).toHaveLength(5);
        expect(await ids({ text: 'test.DEAD' })).toHaveLength(5);
        expect(await ids({ from: h.t0 + 500 })).toEqual([...b].sort());
        expect(await ids({ to: h.t0 + 500 })).toEqual([...a].sort());
        expect(await ids({ ids: [a[0], c[0]] })).toEqual([a[0]]);
        expect(await ids({ type: 'nope' })).toEqual([]);
        expect((await h.dlq.list({ queue: other })).items.map(d => d.id)).toEqual(c);
        // Paging in (deadAt, id) order visits each once.
        const paged: string[] = [];
        let page = await h.dlq.list({ queue }, { limit: 2 });
        paged.push(...page.items.map(d => d.id));
        while (page.next !== undefined) {
          page = await h.dlq.list({ queue }, { limit: 2, after: page.next });
          paged.push(...page.items.map(d => d.id));
        }
        expect(paged.sort()).toEqual([...a, ...b].sort());
        expect(new Set(paged).size).toBe(5);
      });

      it('show() of an unknown id throws DEAD_LETTER_NOT_FOUND', async () => {
        await expect(h.dlq.show('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({
          code: 'DEAD_LETTER_NOT_FOUND',
        });
      });
    });

    describe('replay', () => {
      it('previews in a dry run without moving anything, and audits it', async () => {
        const ids = await makeDead(queue, 3, 'BAD_INPUT');
        const preview = await h.dlq.replay({
          filter: { queue },
          dryRun: true,
          actor: 'ops@example',
        });
        expect(preview).toMatchObject({
          dryRun: true,
          matched: 3,
          byQueue: { [queue]: 3 },
          messageIds: [],
        });
        expect([...preview.ids].sort()).toEqual([...ids].sort());
        expect((await h.dlq.list({ queue })).items).toHaveLength(3);
        const audit = (await h.dlq.audit()).filter(e => e.filter.queue === queue);
        expect(audit).toEqual([
          expect.objectContaining({
            action: 'replay',
            dryRun: true,
            count: 3,
            actor: 'ops@example',
          }),
        ]);
      });

      it('replays only what the filter selects, keeping the idempotency key and history headers', async () => {
        const [keyed] = await makeDead(queue, 1, 'BAD_INPUT');
        const bare = await makeDead(queue, 2, 'NO_STOCK');
        const firstSeen = new Map<string, number>();
        for (const id of bare) firstSeen.set(id, (await deadOf(id)).message.firstSeenAt);
        const result = await h.dlq.replay({ filter: { queue, errorCode: 'NO_STOCK' } });
        expect(result.ids.length).toBe(2);
        expect([...result.ids].sort()).toEqual([...bare].sort());
        const remaining = (await h.dlq.list({ queue })).items.map(d => d.id);
        expect(remaining).toEqual([keyed]);
        const got: Message[] = [];
        h.consume({ queue, maxAttempts: 1, handler: m => void got.push(m) });
        await h.run(10, () => got.length === 2);
        expect(got.map(m => m.id).sort()).toEqual([...result.messageIds].sort());
        for (const m of got) {
          const from = m.headers[REPLAYED_FROM_HEADER]!;
          expect(bare).toContain(from);
          expect(m.idempotencyKey).toBe(from); // no key before: the original id becomes the key
          expect(m.attempt).toBe(1);
          expect(m.firstSeenAt).toBe(firstSeen.get(from));
        }
        expect(got).toHaveLength(2);
      });

      it('keeps an existing idempotency key and can replace the payload of one message', async () => {
        const id = await h.producer.send({
          queue,
          type: 'email.send',
          payload: { to: 'bad@' },
          idempotencyKey: 'k-1',
        });
        let handled = 0;
        const failing = h.consume({
          queue,
          maxAttempts: 1,
          handler: () => {
            handled++;
            return fail('bad address');
          },
        });
        await h.run(10, () => handled === 1);
        await failing.stop();
        await expect(
          h.dlq.replay({ filter: { queue: 'no-such-queue' }, payload: {} }),
        ).rejects.toMatchObject({
          code: 'INVALID_OPTIONS',
        });
        const result = await h.dlq.replay({
          filter: { ids: [id] },
          payload: { to: 'good@example.com' },
          actor: 'ana',
        });
        expect(result.ids).toEqual([id]);
        const got: Message[] = [];
        h.consume({ queue, maxAttempts: 1, handler: m => void got.push(m) });
        await h.run(200, () => got.length === 1);
        expect(got).toHaveLength(1);
        expect(got[0]).toMatchObject({
          payload: { to: 'good@example.com' },
          idempotencyKey: 'k-1',
          type: 'email.send',
        });
        const audit = (await h.dlq.audit({ action: 'replay' })).find(e => e.ids.includes(id));
        expect(audit).toMatchObject({
          dryRun: false,
          count: 1,
          actor: 'ana',
          note: 'payload edited',
        });
      });

      it('rate-limits a replay on the clock', async () => {
        const ids = await makeDead(queue, 3, 'BAD_INPUT');
        const times: number[] = [];
        const replayed = new Set<string>();
        h.consume({
          queue,
          maxAttempts: 1,
          handler: m => {
            times.push(h.elapsed());
            replayed.add(m.headers[REPLAYED_FROM_HEADER]!);
          },
        });
        const start = h.elapsed();
        const result = h.track(h.dlq.replay({ filter: { queue }, ratePerSecond: 5 }));
        await h.run(1_000, () => times.length === 3);
        expect((await result).ids).toHaveLength(3);
        expectTimes(
          times.map(t => t - start),
          [0, 200, 400],
          'start',
        );
        expect([...replayed].sort()).toEqual([...ids].sort());
      });

      it('edit() computes each payload; limit caps how many are replayed', async () => {
        await makeDead(queue, 3, 'BAD_INPUT', i => ({ n: i }));
        const result = await h.dlq.replay({
          filter: { queue },
          limit: 2,
          edit: letter => ({ ...(letter.message.payload as object), fixed: true }),
        });
        expect(result.ids).toHaveLength(2);
        expect(result.matched).toBe(3);
        const got: unknown[] = [];
        h.consume({ queue, maxAttempts: 1, handler: m => void got.push(m.payload) });
        await h.run(10, () => got.length === 2);
        expect(got).toHaveLength(2);
        for (const p of got) expect(p).toMatchObject({ fixed: true });
        expect((await h.dlq.list({ queue })).items).toHaveLength(1);
      });

      it('a replayed message that fails again dead-letters again with a fresh history', async () => {
        const [id] = await makeDead(queue, 1, 'BAD_INPUT');
        const { messageIds } = await h.dlq.replay({ filter: { ids: [id!] } });
        let handled = 0;
        h.consume({
          queue,
          maxAttempts: 1,
          handler: () => {
            handled++;
            return fail('still bad');
          },
        });
        await h.run(10, () => handled === 1);
        const again = await deadOf(messageIds[0]!);
        expect(again.attempts).toHaveLength(1);
        expect(again.message.headers[REPLAYED_FROM_HEADER]).toBe(id);
        expect(again.message.headers['x-bulwark-replay-count']).toBe('1');
      });
    });

    describe('purge', () => {
      it('requires a filter, previews, purges what matches and audits it', async () => {
        await makeDead(queue, 2, 'BAD_INPUT');
        const keep = await makeDead(queue, 1, 'NO_STOCK');
        await expect(h.dlq.purge({ filter: {} })).rejects.toMatchObject({
          code: 'INVALID_OPTIONS',
        });
        const preview = await h.dlq.purge({
          filter: { queue, errorCode: 'BAD_INPUT' },
          dryRun: true,
        });
        expect(preview).toMatchObject({ dryRun: true, count: 2 });
        expect((await h.dlq.list({ queue })).items).toHaveLength(3);
        const purged = await h.dlq.purge({
          filter: { queue, errorCode: 'BAD_INPUT' },
          actor: 'ops',
        });
        expect(purged.count).toBe(2);
        expect((await h.dlq.list({ queue })).items.map(d => d.id)).toEqual(keep);
        const audit = (await h.dlq.audit({ action: 'purge' })).filter(
          e => e.filter.queue === queue,
        );
        expect(audit.map(e => [e.dryRun, e.count, e.actor ?? null])).toEqual([
          [false, 2, 'ops'],
          [true, 2, null],
        ]);
      });
    });
  });
}
