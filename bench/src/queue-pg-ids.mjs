/**
 * Message ids and the queue table's primary key: 1,000-message `sendBatch` calls through
 * `@bulwark/postgres` with the producer's own ids (UUID v7, time-ordered) against the same
 * batches carrying random UUID v4 ids (`crypto.randomUUID()`, what the producer made before).
 * Each side has its own schema on the same engine, is first filled with `PREFILL` batches so the
 * index has some depth, then the two take turns: `ROUNDS` rounds of `PER_ROUND` batches each,
 * the order flipped every round. Prints the median ms per batch of each side.
 *
 *   node bench/src/queue-pg-ids.mjs            (PGlite in memory)
 *   DATABASE_URL=postgres://... node bench/src/queue-pg-ids.mjs --postgres
 *
 * A standalone comparison (not one of run.mjs's scenarios): there is no peer here, only the id
 * scheme, and both sides run in one process on one engine.
 */
import { randomUUID } from 'node:crypto';
import process from 'node:process';
import { createProducer } from '@bulwark/messaging';
import { openDatabase, openPglite, postgresQueueBackend } from '@bulwark/postgres';

const PREFILL = 20;
const ROUNDS = 8;
const PER_ROUND = 10;
const BATCH = 1_000;

const onPostgres = process.argv.includes('--postgres');
if (onPostgres && process.env.DATABASE_URL === undefined) {
  process.stderr.write(
    '--postgres needs DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)\n',
  );
  process.exit(2);
}
const db = onPostgres ? await openDatabase({ url: process.env.DATABASE_URL }) : await openPglite();
const stamp = Date.now().toString(36);
const sides = {};
for (const name of ['v4', 'v7']) {
  const schema = `bench_ids_${name}_${stamp}`;
  const backend = await postgresQueueBackend({ db, schema });
  sides[name] = { schema, backend, producer: createProducer({ backend }) };
}
const batch = name =>
  Array.from({ length: BATCH }, (_, n) => ({
    queue: 'ids',
    type: 'bench',
    payload: { n, kind: 'bench' },
    ...(name === 'v4' ? { id: randomUUID() } : {}),
  }));

try {
  for (const name of ['v4', 'v7']) {
    for (let i = 0; i < PREFILL; i++) await sides[name].producer.sendBatch(batch(name));
  }
  const ms = { v4: [], v7: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? ['v7', 'v4'] : ['v4', 'v7']) {
      const batches = Array.from({ length: PER_ROUND }, () => batch(name));
      const started = process.hrtime.bigint();
      for (const b of batches) await sides[name].producer.sendBatch(b);
      ms[name].push(Number(process.hrtime.bigint() - started) / 1e6 / PER_ROUND);
    }
  }
  const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const line = name =>
    `${name}: median ${median(ms[name]).toFixed(1)} ms per ${BATCH} (rounds ${ms[name].map(v => v.toFixed(1)).join(', ')})`;
  process.stdout.write(
    `${onPostgres ? 'PostgreSQL' : 'PGlite'}, ${PREFILL * BATCH} messages first, ${ROUNDS} rounds of ${PER_ROUND} batches\n${line('v4')}\n${line('v7')}\n`,
  );
} finally {
  for (const { backend, schema } of Object.values(sides)) {
    await backend.close();
    if (onPostgres) await db.exec(`drop schema if exists ${schema} cascade`);
  }
  await db.close();
}
