/**
 * Kill-the-process tests: runs `script` (an ES module, as `node --input-type=module -e`) in a
 * child process that is meant to end itself with SIGKILL — typically right after it took a lease
 * and said so on stdout — and resolves with everything it printed once it died that way. Any
 * other end (an exit code, another signal) rejects with its stdout and stderr, so a child that
 * failed before it got to the kill explains itself. Node only.
 */
import { spawn } from 'node:child_process';

export interface KilledChildOptions {
  /** Working directory of the child (where its bare imports resolve). Default: this process's. */
  cwd?: string;
}

export function runUntilKilled(script: string, options: KilledChildOptions = {}): Promise<string> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL') resolve(out);
      else {
        reject(
          new Error(
            `the child was to kill itself (SIGKILL) but ended with ${signal ?? `exit code ${String(code)}`}: ${out}${err}`,
          ),
        );
      }
    });
  });
}
