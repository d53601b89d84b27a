/**
 * Finding the built copies the worker processes run: Node 20 cannot run TypeScript, so a worker is
 * forked from dist/, and a stale dist would test old code. Both checks name the fix.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BulwarkError, InvalidOptionsError } from '@bulwark/core';

/**
 * The built copy of a workspace source file: `<pkg>/src/a/b.ts` → `<pkg>/dist/a/b.js`. Throws
 * when it is missing or older than the source (and the package's build info), naming the fix.
 */
export function builtCopyOf(sourcePath: string): string {
  const marker = `${sep}src${sep}`;
  const at = sourcePath.lastIndexOf(marker);
  if (at < 0) {
    if (sourcePath.endsWith('.js')) return sourcePath; // already a built file
    throw new InvalidOptionsError(`builtCopyOf: ${sourcePath} is not under a src folder`);
  }
  const root = sourcePath.slice(0, at);
  const built = join(root, 'dist', sourcePath.slice(at + marker.length)).replace(/\.ts$/, '.js');
  if (!existsSync(built)) {
    throw new BulwarkError('STALE_BUILD', `${built} is missing: run \`npx tsc -b\` first`);
  }
  if (existsSync(sourcePath)) {
    // tsc -b may leave an unchanged output untouched but always rewrites its build info.
    const info = join(root, 'tsconfig.build.tsbuildinfo');
    const builtAt = Math.max(
      statSync(built).mtimeMs,
      existsSync(info) ? statSync(info).mtimeMs : 0,
    );
    if (statSync(sourcePath).mtimeMs > builtAt) {
      throw new BulwarkError(
        'STALE_BUILD',
        `${relative(process.cwd(), built)} is older than its source: run \`npx tsc -b\` first`,
      );
    }
  }
  return built;
}

/** The worker entry point, built; checks every crash harness file is built and fresh. */
export function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return join(dirname(here), 'child.js');
  for (const name of readdirSync(dirname(here))) {
    if (name.endsWith('.ts') && !name.endsWith('.test.ts')) builtCopyOf(join(dirname(here), name));
  }
  return builtCopyOf(join(dirname(here), 'child.ts'));
}
