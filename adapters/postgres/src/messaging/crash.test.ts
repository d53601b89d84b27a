// The "nothing lost" crash run on PGlite. PGlite is one process: it does not lock its data
// folder, and a second process opening it while the first writes loses committed rows. So the
// worker process owns the folder while it runs, the test process opens it only between workers,
// and progress travels over the IPC channel (see runCrashScenario).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtCopyOf, describeCrashScenario } from '@bulwark/messaging/contract';
import { openCrashSubject } from './crash-worker.js';

describeCrashScenario(
  'PGlite',
  async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'bulwark-crash-'));
    return {
      open: openCrashSubject,
      subjectModule: builtCopyOf(fileURLToPath(new URL('./crash-worker.ts', import.meta.url))),
      params: { dataDir },
      total: 10_000,
      // PGlite runs every statement in one WASM thread: the file took 53 s at load ~8 on this
      // 2-core machine and up to 148 s at load ~20, so the bounds are wider than on PostgreSQL.
      timeoutMs: 240_000,
      cleanup: () => rm(dataDir, { recursive: true, force: true }),
    };
  },
  600_000,
);
