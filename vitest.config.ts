import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Workspace packages resolve to their TypeScript sources (the "source" export condition), so
  // tests never run a stale build.
  resolve: { conditions: ['source', 'module', 'node', 'default'] },
  ssr: {
    resolve: {
      conditions: ['source', 'module', 'node', 'default'],
      externalConditions: ['source'],
    },
  },
  test: {
    include: [
      'packages/**/src/**/*.test.ts',
      'adapters/**/src/**/*.test.ts',
      'apps/**/src/**/*.test.ts',
      'chaos/src/**/*.test.ts',
      'bench/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    // Tests drive a TestClock; nothing here should need long timeouts.
    testTimeout: 20_000,
  },
});
