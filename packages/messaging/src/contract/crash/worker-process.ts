/** One crash-run worker process, as the parent sees it: its reports, and how to hold, kill or stop it. */
import { fork, type ChildProcess } from 'node:child_process';
import { BulwarkError } from '@bulwark/core';
import {
  CRASH_WORKER_ENV,
  isWorkerMessage,
  type CrashProgress,
  type CrashWorkerConfig,
  type WorkerToParent,
} from './protocol.js';

/** One worker process and its latest report. */
export class WorkerProcess {
  readonly child: ChildProcess;
  latest: CrashProgress | undefined;
  /** The message whose handler holds after its effect committed (answer to `hold`). */
  held: number | undefined;
  /** Indices whose redelivered effect the inbox refused, as this worker reported them. */
  readonly duplicates: number[] = [];
  private final: CrashProgress | undefined;
  private failure: string | undefined;
  private exited = false;
  private readonly exit: Promise<number | null>;
  private wake: (() => void) | undefined;

  constructor(script: string, config: CrashWorkerConfig) {
    this.child = fork(script, [], {
      // Not the test runner's flags (loaders, conditions): the worker runs plain built JS.
      execArgv: [],
      env: { ...process.env, [CRASH_WORKER_ENV]: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message: unknown) => {
      if (!isWorkerMessage(message)) return;
      this.receive(message);
    });
    // A send to a worker that just died reports here; its exit is handled below.
    this.child.on('error', error => {
      this.failure ??= `worker process error: ${error.message}`;
      this.poke();
    });
    this.exit = new Promise(resolve => {
      this.child.on('exit', code => {
        this.exited = true;
        this.poke();
        resolve(code);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  private receive(message: WorkerToParent): void {
    if (message.type === 'failed') this.failure = message.error;
    else if (message.type === 'held') this.held = message.index;
    else if (message.type === 'duplicate') this.duplicates.push(message.index);
    else {
      const { type, ...progress } = message;
      this.latest = progress;
      if (type === 'stopped') this.final = progress;
    }
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Resolves with the first report for which `until` holds; rejects at `deadline` or on exit. */
  waitFor(
    until: (p: CrashProgress) => boolean,
    deadline: number,
    what: string,
  ): Promise<CrashProgress> {
    return this.waitUntil(
      () => (this.latest !== undefined && until(this.latest) ? this.latest : undefined),
      deadline,
      what,
    );
  }

  /** Asks the worker to hold its next committed effect un-acked; resolves with that index. */
  hold(deadline: number): Promise<number> {
    this.child.send({ type: 'hold' });
    return this.waitUntil(() => this.held, deadline, 'a handler to hold after its effect');
  }

  private async waitUntil<T>(
    probe: () => T | undefined,
    deadline: number,
    what: string,
  ): Promise<T> {
    for (;;) {
      if (this.failure !== undefined)
        throw new BulwarkError('CRASH_WORKER_FAILED', `crash worker failed: ${this.failure}`);
      const value = probe();
      if (value !== undefined) return value;
      if (this.exited)
        throw new BulwarkError(
          'CRASH_WORKER_FAILED',
          `crash worker ${this.pid} exited while waiting for ${what}`,
        );
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new BulwarkError(
          'TIMEOUT',
          `crash run: timed out waiting for ${what}; last report ${JSON.stringify(this.latest)}`,
        );
      }
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>(resolve => {
        this.wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  async kill(): Promise<void> {
    if (!this.exited) this.child.kill('SIGKILL');
    await this.exit;
  }

  /** Asks the worker to stop, waits for its final report and its exit. */
  async stop(deadline: number): Promise<CrashProgress> {
    this.child.send({ type: 'stop' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), Math.max(0, deadline - Date.now()));
    try {
      const code = await this.exit;
      if (this.failure !== undefined)
        throw new BulwarkError('CRASH_WORKER_FAILED', `crash worker failed: ${this.failure}`);
      if (code !== 0 || this.final === undefined) {
        throw new BulwarkError(
          'CRASH_WORKER_FAILED',
          `crash worker ${this.pid} did not stop cleanly (exit code ${code})`,
        );
      }
      return this.final;
    } finally {
      clearTimeout(timer);
    }
  }
}
