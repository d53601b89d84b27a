/**
 * Counts the objects of a V8 heap snapshot by constructor name (see heap-snapshot-at.mjs):
 *
 *   node src/heap-snapshot-count.mjs <file.heapsnapshot> [name ...]
 *
 * With names, prints those constructors only (`FastTimer`, `Timeout`, ...); without, the 30 with
 * the most bytes. One line each: count, bytes (shallow), name.
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';

const [file, ...names] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node src/heap-snapshot-count.mjs <file.heapsnapshot> [name ...]\n');
  process.exit(2);
}
const snapshot = JSON.parse(readFileSync(file, 'utf8'));
const fields = snapshot.snapshot.meta.node_fields;
const types = snapshot.snapshot.meta.node_types[0];
const width = fields.length;
const typeAt = fields.indexOf('type');
const nameAt = fields.indexOf('name');
const sizeAt = fields.indexOf('self_size');
const byName = new Map();
const nodes = snapshot.nodes;
for (let i = 0; i < nodes.length; i += width) {
  if (types[nodes[i + typeAt]] !== 'object') continue;
  const name = snapshot.strings[nodes[i + nameAt]];
  const entry = byName.get(name) ?? { count: 0, bytes: 0 };
  entry.count += 1;
  entry.bytes += nodes[i + sizeAt];
  byName.set(name, entry);
}
const rows =
  names.length > 0
    ? names.map(name => [name, byName.get(name) ?? { count: 0, bytes: 0 }])
    : [...byName].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 30);
process.stdout.write(
  rows
    .map(
      ([name, { count, bytes }]) =>
        `${String(count).padStart(8)} ${String(bytes).padStart(10)}  ${name}\n`,
    )
    .join(''),
);
