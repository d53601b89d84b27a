#!/usr/bin/env node
// The `bulwark` executable: process wiring only; everything else is in run.ts and testable.
import { nodeIo } from './io.js';
import { run } from './run.js';

const interrupt = new AbortController();
process.once('SIGINT', () => {
  // First Ctrl-C: a running replay stops between messages and reports what it did.
  // A second one gets Node's default handling (exit at once).
  process.stderr.write('bulwark: interrupted; stopping after the current message\n');
  interrupt.abort();
});

process.exitCode = await run(process.argv.slice(2), nodeIo(interrupt.signal));
