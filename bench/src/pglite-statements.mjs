/**
 * PGlite statements: the same queue statements (a fetch of 100 and the ack of those 100, on a
 * 1,000-message queue) through PGlite's own `query()` (an unnamed statement, parsed and planned
 * every call, six protocol exchanges) and through `@bulwark/postgres`'s handle (a named prepared
 * statement, one exchange per call). Both on one in-memory PGlite, each on its own queue; eight
 * rounds of ten fetch+ack cycles, the order flipped every round. Prints the median ms per cycle.
 *
 *   node bench/src/pglite-statements.mjs
 *
 * A standalone comparison (not one of run.mjs's scenarios): no peer, one engine, one process.
 */
import process from 'node:process';
import { PGlite } from '@electric-sql/pglite';
import { createProducer } from '@bulwark/messaging';
import { openPglite, postgresQueueBackend } from '@bulwark/postgres';

const ROUNDS = 8;
const CYCLES = 10;
const BATCH = 100;

// The handle's own PGlite instance, so both sides run on the same engine and tables.
const db = await openPglite();
const pg = Object.values(db).find(value => value instanceof PGlite);
if (pg === undefined) throw new Error('could not find the PGlite instance inside the handle');
const backend = await postgresQueueBackend({ db });
const producer = createProducer({ backend });
const schema = 'bulwark_messaging';
const fetchSql = `with f as (update ${schema}.messages m
    set state = 'leased', attempts = m.attempts + 1, lease_token = $5::text,
        leased_at = $2::float8, lease_expires_at = $2::float8 + $4::float8
    where m.ctid = any(array(
      select ctid from ${schema}.messages
      where queue = $1 and state = 'ready' and available_at <= $2::float8
      order by available_at, seq limit $3::int))
    returning m.seq, m.id)
  select json_agg(f.id order by f.seq)::text as ids from f`;
const ackSql = `with d as (delete from ${schema}.messages m
    using unnest($1::text[], $2::text[]) as l(id, token)
    where m.id = l.id and m.lease_token = l.token and m.state = 'leased'
    returning m.id)
  select count(*)::int as n from d`;

const sides = {
  // PGlite's own query(), outside our lock: nothing else runs meanwhile in this script.
  'pglite query()': (text, params) => pg.query(text, params),
  'handle (prepared)': (text, params) => db.query(text, params),
};
const ms = Object.fromEntries(Object.keys(sides).map(name => [name, []]));
try {
  for (let round = 0; round < ROUNDS; round++) {
    const names = Object.keys(sides);
    for (const name of round % 2 === 0 ? names : names.reverse()) {
      const queue = `q${round}-${name.length}`;
      await producer.sendBatch(
        Array.from({ length: CYCLES * BATCH }, (_, n) => ({
          queue,
          type: 'bench',
          payload: { n },
        })),
      );
      const run = sides[name];
      const started = process.hrtime.bigint();
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const token = `${round}-${name}-${cycle}`;
        const fetched = await run(fetchSql, [queue, Date.now() + 1_000, BATCH, 30_000, token]);
        const ids = JSON.parse(fetched.rows[0].ids);
        const acked = await run(ackSql, [ids, ids.map(() => token)]);
        if (ids.length !== BATCH || acked.rows[0].n !== BATCH) {
          throw new Error(`${name}: fetched ${ids.length}, acked ${acked.rows[0].n}`);
        }
      }
      ms[name].push(Number(process.hrtime.bigint() - started) / 1e6 / CYCLES);
    }
  }
  const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  for (const [name, values] of Object.entries(ms)) {
    process.stdout.write(
      `${name}: median ${median(values).toFixed(2)} ms per fetch+ack of ${BATCH} (rounds ${values.map(v => v.toFixed(2)).join(', ')})\n`,
    );
  }
} finally {
  await backend.close();
  await db.close();
}
