/**
 * A preload that writes one V8 heap snapshot of its process while the benchmark runs, to see what
 * a server keeps alive under load (objects by constructor, with heap-snapshot-count.mjs). For the
 * processes the benchmarks start, through `BENCH_TARGET_NODE_ARGS`:
 *
 *   cd bench && HEAP_SNAPSHOT_AT_MS=6000 HEAP_SNAPSHOT_DIR=/tmp/snap \
 *     BENCH_TARGET_NODE_ARGS="--import $PWD/src/heap-snapshot-at.mjs" \
 *     node src/gateway.mjs --variant gateway
 *   node src/heap-snapshot-count.mjs /tmp/snap/<the largest file> FastTimer
 *
 * Every started process (server and fake upstreams) writes `<dir>/<pid>.heapsnapshot` after
 * HEAP_SNAPSHOT_AT_MS (default 6,000: mid-run in the gateway scenario). Writing the snapshot stops
 * the process for about a second and runs a full GC first, so the snapshot holds what is live,
 * and the run's own figures are not worth reading.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { writeHeapSnapshot } from 'node:v8';

const atMs = Number(process.env.HEAP_SNAPSHOT_AT_MS ?? 6_000);
const dir = process.env.HEAP_SNAPSHOT_DIR ?? '/tmp/bench-heap-snapshots';
if (!(atMs >= 0)) throw new Error(`HEAP_SNAPSHOT_AT_MS must be a number of ms >= 0, got ${atMs}`);
mkdirSync(dir, { recursive: true });
setTimeout(() => {
  writeHeapSnapshot(join(dir, `${process.pid}.heapsnapshot`));
}, atMs).unref();
