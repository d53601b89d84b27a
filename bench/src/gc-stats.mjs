/**
 * A preload that prints, when its process exits, how many garbage collections of each kind the
 * process ran and how long they took (from `perf_hooks`' `gc` entries), on stderr. For the
 * processes the benchmarks start, through `BENCH_TARGET_NODE_ARGS`:
 *
 *   cd bench && BENCH_TARGET_NODE_ARGS="--import $PWD/src/gc-stats.mjs" \
 *     node src/gateway.mjs --variant gateway
 *
 * prints one line per started process (the server under test and the fake upstreams), e.g.
 * `gc gateway-target.mjs gateway: minor n=225 total=1720ms max=19.9ms | major ...`. Pauses are
 * wall time: with V8's parallel helpers they depend on what else the machine runs; add
 * `--single-threaded-gc` for comparable figures, and see gc-trace-summary.mjs for what each
 * collection kept alive.
 */
import { basename } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import process from 'node:process';

const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

const byKind = new Map();
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) {
    const kind = KINDS[entry.detail?.kind] ?? String(entry.detail?.kind);
    const sum = byKind.get(kind) ?? { count: 0, totalMs: 0, maxMs: 0 };
    sum.count += 1;
    sum.totalMs += entry.duration;
    sum.maxMs = Math.max(sum.maxMs, entry.duration);
    byKind.set(kind, sum);
  }
}).observe({ entryTypes: ['gc'] });

process.on('exit', () => {
  const who = [basename(process.argv[1] ?? 'node'), process.argv[2]].filter(Boolean).join(' ');
  const parts = [...byKind].map(
    ([kind, s]) =>
      `${kind} n=${s.count} total=${s.totalMs.toFixed(0)}ms max=${s.maxMs.toFixed(1)}ms`,
  );
  process.stderr.write(`gc ${who}: ${parts.join(' | ')}\n`);
});
