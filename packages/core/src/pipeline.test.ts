import { describe, expect, it } from 'vitest';
import { TestClock, observe } from '@bulwark/testing';
import { Deadline } from './deadline.js';
import { isCancelledError, isDeadlineExceededError } from './errors.js';
import { pipeline } from './pipeline.js';
import { timeout } from './timeout.js';
import type { Step } from './policy.js';

/** A policy that records the order in which layers see a call. */
function tracer(name: string, log: string[]) {
  return {
    compose(next: Step): Step {
      return (work, context, sink) => {
        log.push(`enter ${name}`);
        next(work, context, {
          ok: value => {
            log.push(`leave ${name}`);
            sink.ok(value);
          },
          fail: error => sink.fail(error),
        });
      };
    },
  };
}

describe('pipeline', () => {
  it('runs the first policy outermost', async () => {
    const log: string[] = [];
    const result = await pipeline(tracer('a', log), tracer('b', log)).execute(() => {
      log.push('work');
      return 1;
    });
    expect(result).toBe(1);
    expect(log).toEqual(['enter a', 'enter b', 'work', 'leave b', 'leave a']);
  });

  it('an empty pipeline just runs the work', async () => {
    await expect(pipeline().execute(async ctx => ctx.attempt)).resolves.toBe(1);
  });

  it('enforces an execute deadline even with no timeout policy', async () => {
    const clock = new TestClock();
    let signal: AbortSignal | undefined;
    const result = observe(
      pipeline().execute(
        ctx => {
          signal = ctx.signal;
          return new Promise(() => {});
        },
        { deadline: Deadline.after(50, { clock }) },
      ),
    );
    await clock.advance(50);
    expect(isDeadlineExceededError(result.error)).toBe(true);
    expect(signal?.aborted).toBe(true);
  });

  it('rejects at once when the caller signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    let ran = false;
    await expect(
      pipeline(timeout({ timeoutMs: 10 })).execute(() => (ran = true), {
        signal: controller.signal,
      }),
    ).rejects.toSatisfy(isCancelledError);
    expect(ran).toBe(false);
  });

  it('detaches from the caller signal and deadline when the call finishes', async () => {
    const clock = new TestClock();
    const controller = new AbortController();
    const deadline = Deadline.after(1000, { clock });
    const policy = pipeline(timeout({ timeoutMs: 100, clock }));
    for (let i = 0; i < 3; i++) {
      await policy.execute(async () => i, { signal: controller.signal, deadline });
    }
    // A later abort reaches no finished call (no listener left behind on a long-lived deadline).
    controller.abort();
    deadline.cancel();
    // The timeout's ticker stops at its next tick (resolutionMs = 2 ms here) with nothing pending.
    await clock.advance(2);
    expect(clock.referencedTimers).toBe(0);
  });

  it('says whether a call can be cancelled at all (ctx.cancellable)', async () => {
    const clock = new TestClock();
    const seen: boolean[] = [];
    const look = (ctx: { cancellable: boolean }) => seen.push(ctx.cancellable);
    await pipeline().execute(look);
    await pipeline().execute(look, { signal: new AbortController().signal });
    await pipeline().execute(look, { deadline: Deadline.after(100, { clock }) });
    await pipeline(timeout({ timeoutMs: 100, clock })).execute(look);
    expect(seen).toEqual([false, true, true, true]);
  });

  it('still settles the call when a step throws instead of using its sink', async () => {
    const bug = new Error('step bug');
    const broken = {
      compose: (): Step => () => {
        throw bug;
      },
    };
    await expect(pipeline(broken).execute(() => 1)).rejects.toBe(bug);
  });

  it('runs an execute nested synchronously inside the work with its own work and options', async () => {
    const clock = new TestClock();
    const outer = pipeline(timeout({ timeoutMs: 100, clock }));
    const inner = pipeline();
    const deadline = Deadline.after(1_000, { clock });
    const seen: (number | undefined)[] = [];
    const result = await outer.execute(async ctx => {
      // The inner call starts before the outer step has returned.
      const nested = inner.execute(c => c.deadline?.expiresAt, { deadline });
      seen.push(ctx.deadline?.expiresAt);
      return [await nested, await inner.execute(() => 'plain')];
    });
    expect(result).toEqual([1_000, 'plain']);
    expect(seen).toEqual([100]);
  });

  it('a step that throws after settling its sink keeps the outcome it settled', async () => {
    const late = {
      compose: (): Step => (_work, _context, sink) => {
        sink.ok('settled' as never);
        throw new Error('after settling');
      },
    };
    await expect(pipeline(late).execute(() => 1)).resolves.toBe('settled');
  });

  it('rejects things that are not policies, naming the position', () => {
    expect(() => pipeline({} as never)).toThrow(/argument 0 is not a policy/);
    expect(() => pipeline(timeout({ timeoutMs: 5 }), null as never)).toThrow(/argument 1/);
  });
});
