import { describe, expect, it } from 'vitest';
import { runUntilKilled } from './killed-child.js';

describe('runUntilKilled', () => {
  it('resolves with what the child printed before it SIGKILLed itself', async () => {
    const out = await runUntilKilled(
      `process.stdout.write('leased m1\\n', () => process.kill(process.pid, 'SIGKILL'));`,
    );
    expect(out).toBe('leased m1\n');
  });

  it('rejects with the output of a child that ended any other way', async () => {
    await expect(
      runUntilKilled(`console.log('no lease'); console.error('boom'); process.exit(3);`),
    ).rejects.toThrow(/exit code 3: no lease\nboom/);
  });
});
