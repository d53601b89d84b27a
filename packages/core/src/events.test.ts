import { describe, expect, it, vi } from 'vitest';
import { Emitter } from './events.js';

describe('Emitter', () => {
  it('delivers to listeners until they dispose', () => {
    const emitter = new Emitter<number>();
    const seen: number[] = [];
    const subscription = emitter.subscribe(n => seen.push(n));
    expect(emitter.size).toBe(1);
    emitter.emit(1);
    subscription.dispose();
    subscription.dispose();
    emitter.emit(2);
    expect(seen).toEqual([1]);
    expect(emitter.size).toBe(0);
  });

  it('a throwing listener neither breaks the emitter nor stays silent', async () => {
    const emitter = new Emitter<string>();
    const after = vi.fn();
    emitter.subscribe(() => {
      throw new Error('bad listener');
    });
    emitter.subscribe(after);
    const uncaught = new Promise<unknown>(resolve => process.once('uncaughtException', resolve));
    emitter.emit('x');
    expect(after).toHaveBeenCalledWith('x');
    await expect(uncaught).resolves.toMatchObject({ message: 'bad listener' });
  });
});
