/**
 * Entry point of a crash-run worker process (forked by `runCrashScenario` from the built copy,
 * dist/contract/crash/child.js). Reads its config from the environment, opens the adapter's
 * subject module, and consumes until told to stop or killed.
 */
import { pathToFileURL } from 'node:url';
import { InvalidOptionsError } from '@bulwark/core';
import { CRASH_WORKER_ENV, type CrashWorkerConfig, type ParentToWorker } from './protocol.js';
import type { OpenCrashSubject } from './subject.js';
import { runCrashWorker } from './worker.js';

function send(message: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined) {
      reject(
        new InvalidOptionsError('crash worker: no IPC channel; start it with child_process.fork'),
      );
      return;
    }
    process.send(message, undefined, {}, error => (error ? reject(error) : resolve()));
  });
}

async function main(): Promise<void> {
  // An orphan would keep consuming (and holding PGlite's folder) after its parent died.
  process.on('disconnect', () => process.exit(1));
  const raw = process.env[CRASH_WORKER_ENV];
  if (raw === undefined)
    throw new InvalidOptionsError(`crash worker: ${CRASH_WORKER_ENV} is not set`);
  const config = JSON.parse(raw) as CrashWorkerConfig;
  const mod = (await import(pathToFileURL(config.subjectModule).href)) as {
    openCrashSubject?: OpenCrashSubject;
  };
  if (typeof mod.openCrashSubject !== 'function') {
    throw new InvalidOptionsError(
      `crash worker: ${config.subjectModule} does not export openCrashSubject`,
    );
  }
  const subject = await mod.openCrashSubject(config.subject);
  await runCrashWorker(config, subject, {
    send,
    onMessage: listener => process.on('message', m => listener(m as ParentToWorker)),
  });
  process.exit(0);
}

main().catch(async (error: unknown) => {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  console.error(text);
  await send({ type: 'failed', error: text }).catch(() => undefined);
  process.exit(1);
});
