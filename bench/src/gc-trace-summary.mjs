/**
 * Summarises V8's `--trace-gc-nvp` output per process: young-generation collections (scavenges),
 * their mean pause, and how much each kept alive (survived) and moved to the old generation
 * (promoted). What a server keeps alive across a scavenge is what makes scavenges expensive.
 *
 *   cd bench && BENCH_TARGET_STDOUT=1 \
 *     BENCH_TARGET_NODE_ARGS="--trace-gc-nvp --single-threaded-gc" \
 *     node src/gateway.mjs --variant gateway | node src/gc-trace-summary.mjs
 *
 * `--single-threaded-gc` puts all of a collection's work on the main thread, so a pause means
 * the same from run to run whatever helper threads got to run on a busy 2-core machine (it is
 * longer than a parallel pause). One line per process, by pid, in the order of their first
 * collection: in the gateway benchmarks the fake upstreams keep ~30 KB alive per scavenge, the
 * server hundreds.
 */
import { createInterface } from 'node:readline';
import process from 'node:process';

const perPid = new Map();
let skipped = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.includes(' gc=s ')) {
    if (line.startsWith('{')) process.stdout.write(`${line}\n`);
    continue;
  }
  // Two processes share the terminal: a line the other one cut into has no pid prefix.
  const pid = /^\[(\d+):/.exec(line)?.[1];
  if (pid === undefined) {
    skipped++;
    continue;
  }
  const field = name => Number(new RegExp(`(?:^| )${name}=([0-9.]+)`).exec(line)?.[1] ?? NaN);
  const rows = perPid.get(pid) ?? [];
  rows.push({
    pause: field('pause'),
    survived: field('new_space_survived'),
    promoted: field('promoted'),
  });
  perPid.set(pid, rows);
}
if (skipped > 0) process.stdout.write(`${skipped} interleaved trace line(s) skipped\n`);
const mean = (rows, key) => rows.reduce((sum, row) => sum + row[key], 0) / rows.length;
for (const [pid, rows] of perPid) {
  process.stdout.write(
    `pid ${pid}: ${rows.length} scavenges, mean pause ${mean(rows, 'pause').toFixed(2)} ms, ` +
      `survived ${(mean(rows, 'survived') / 1024).toFixed(0)} KB, ` +
      `promoted ${(mean(rows, 'promoted') / 1024).toFixed(0)} KB per scavenge\n`,
  );
}
