/**
 * Everything a command touches outside itself, so tests run commands as functions (no
 * subprocess) and read what they printed.
 */
import { readFile } from 'node:fs/promises';
import type { Clock } from '@bulwark/core';
import { openBackendByUrl, type OpenBackendOptions, type OpenedBackend } from './open-backend.js';

export interface CliIo {
  /** Results: tables, or JSON with `--json`. */
  readonly stdout: (text: string) => void;
  /** Errors and notes for people. */
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readFile: (path: string) => Promise<string>;
  /** Opens the backend a `--url` names. Tests pass one that returns an in-memory backend. */
  readonly openBackend: (url: string, options: OpenBackendOptions) => Promise<OpenedBackend>;
  /** Paces rate-limited replays and stamps audit entries. Default: the system clock. */
  readonly clock?: Clock;
  /** Stops a long replay between messages (Ctrl-C). */
  readonly signal?: AbortSignal;
}

export function nodeIo(signal?: AbortSignal): CliIo {
  return {
    stdout: text => process.stdout.write(text),
    stderr: text => process.stderr.write(text),
    env: process.env,
    readFile: path => readFile(path, 'utf8'),
    openBackend: openBackendByUrl,
    ...(signal === undefined ? {} : { signal }),
  };
}
