import { seededRandom, TestClock } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { FakeMailProvider } from './mail-provider.js';

const mail = (n: number, to = 'ada@example.com') => ({
  to,
  subject: `s${n}`,
  text: 't',
  idempotencyKey: `k${n}`,
});

describe('FakeMailProvider', () => {
  it('sends, records, and answers a repeated key with the first message id', async () => {
    const clock = new TestClock();
    const provider = new FakeMailProvider({ clock });
    const first = await provider.send(mail(1));
    expect(first).toMatchObject({ code: 250, duplicate: false });
    await clock.advance(10);
    const again = await provider.send(mail(1));
    expect(again).toEqual({ ...first, duplicate: true });
    expect(provider.sent).toHaveLength(1);
    expect(provider.sent[0]).toMatchObject({ to: 'ada@example.com', sentAt: clock.wallNow() - 10 });
    expect(provider.attempts.map(a => a.code)).toEqual([250, 250]);
  });

  it('refuses an address without a domain as 553, permanently', async () => {
    const provider = new FakeMailProvider();
    expect(await provider.send(mail(1, 'ada@'))).toMatchObject({ code: 553, temporary: false });
    expect(await provider.send(mail(2, 'no spaces@example.com'))).toMatchObject({ code: 553 });
    expect(provider.sent).toHaveLength(0);
  });

  it('applies a fault to its address only, at most `times` times', async () => {
    const provider = new FakeMailProvider();
    provider.addFault({ address: 'ADA@example.com', code: 421, times: 2 });
    expect(await provider.send(mail(1, 'bob@example.com'))).toMatchObject({ code: 250 });
    expect(await provider.send(mail(2))).toMatchObject({ code: 421, temporary: true });
    expect(await provider.send(mail(2))).toMatchObject({ code: 421 });
    expect(await provider.send(mail(2))).toMatchObject({ code: 250 });
    expect(provider.faults[0]?.fired).toBe(2);
  });

  it('fails about `rate` of the sends, decided by the injected Random', async () => {
    const provider = new FakeMailProvider({ random: seededRandom(42) });
    provider.addFault({ code: 550, rate: 0.3, message: '5.1.1 gone' });
    let failed = 0;
    for (let i = 0; i < 1_000; i++) {
      const reply = await provider.send(mail(i));
      if (reply.code === 550) {
        expect(reply.text).toBe('5.1.1 gone');
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(250);
    expect(failed).toBeLessThan(350);
    expect(provider.sent).toHaveLength(1_000 - failed);
  });

  it('delays on its clock, and the caller signal cancels a delayed send', async () => {
    const clock = new TestClock();
    const provider = new FakeMailProvider({ clock });
    provider.addFault({ delayMs: 1_000 });
    let done = false;
    const slow = provider.send(mail(1)).then(r => {
      done = true;
      return r;
    });
    await clock.advance(999);
    expect(done).toBe(false);
    expect(provider.pending).toBe(1);
    await clock.advance(1);
    expect(await slow).toMatchObject({ code: 250 });

    const controller = new AbortController();
    const cancelled = provider.send(mail(2), { signal: controller.signal });
    controller.abort(new Error('handler timed out'));
    await expect(cancelled).rejects.toThrow('handler timed out');
    expect(provider.pending).toBe(0);
    expect(provider.sent).toHaveLength(1);
  });

  it('rejects faults that cannot work, naming the fix', () => {
    const provider = new FakeMailProvider();
    expect(() => provider.addFault({ code: 200 as never })).toThrow(/code must be one of 421/);
    expect(() => provider.addFault({})).toThrow(/give a code, a delayMs, or both/);
    expect(() => provider.addFault({ code: 421, rate: 2 })).toThrow(
      /rate must be a number in \[0, 1\]/,
    );
    expect(() => provider.addFault({ code: 421, times: 0 })).toThrow(/times must be an integer/);
    expect(() => provider.addFault({ code: 421, colour: 'red' } as never)).toThrow(
      /unknown field "colour"/,
    );
    expect(provider.faults).toHaveLength(0);
  });

  it('clears one fault by id, or all', () => {
    const provider = new FakeMailProvider();
    const a = provider.addFault({ code: 421 });
    provider.addFault({ code: 550 });
    expect(provider.clearFaults(a.id)).toBe(1);
    expect(provider.faults.map(f => f.code)).toEqual([550]);
    expect(provider.clearFaults()).toBe(1);
  });
});
