/** The backend's SQL, built once per schema. Every time is a float8 parameter (epoch ms). */

export interface QueueSql {
  /** Skips a message whose id is already there (a relay publishing again, a replay). */
  enqueue: string;
  /** The same waking listeners, PostgreSQL only (PGlite has one process: local wake-ups). */
  enqueueNotify: string;
  /**
   * The same without `ON CONFLICT`: a duplicate id fails the whole statement (23505). An insert
   * that may conflict is a speculative insertion — a confirm WAL record and a second look at the
   * primary key per row — and costs ~15 % more (1,000 rows on PGlite, 40 interleaved batches
   * each, two ad-hoc runs: 34.4 / 34.5 ms vs 28.2 / 30.0 ms). Ids are random unless the sender
   * chose one, so the backend tries this first and falls back to `enqueue` on a conflict.
   */
  enqueueFresh: string;
  /** The same waking listeners, PostgreSQL only. */
  enqueueFreshNotify: string;
  /**
   * One fresh message (a `send`), its eight values as parameters `$1`–`$8` in the column order
   * id, queue, type, payload, headers, idempotency_key, available_at, first_seen_at; the
   * notifying form (PostgreSQL only) takes the channel as `$9` and answers no rows.
   */
  enqueueOne: string;
  enqueueOneNotify: string;
  /** Wakes the listeners of the queues in `$2` (channel `$1`); for a COPY's transaction. */
  notify: string;
  fetch: string;
  nextAvailable: string;
  extend: string;
  ack: string;
  ackMany: string;
  defer: string;
  retry: string;
  dead: string;
  expired: string;
  stats: string;
  deadColumns: string;
  deleteDeadLetter: string;
  insertAudit: string;
}

const RETURNING =
  'id, queue, type, payload, headers, idempotency_key, attempts, first_seen_at, lease_token, leased_at, lease_expires_at';

/**
 * What a fetch reads back: the message, not the lease (queue, token and times are the caller's
 * own parameters), as ONE text value — a JSON array of `[id, type, payload, headers,
 * idempotency_key, attempts, first_seen_at]` in fetch order — parsed by one `JSON.parse`. PGlite
 * decodes its wire protocol in JS, a copy and a decode per field, and that was most of a fetch's
 * time outside the executor: 100 rows of eight columns cost 5.50 / 5.91 ms a fetch, the same as
 * one aggregated value 3.23 / 3.92 ms (ad-hoc, two runs of 300 fetches of 100 each way,
 * interleaved, vacuumed every 2,000). On PostgreSQL it was level (3.09 vs 3.54, 3.51 vs 3.31 ms).
 * float8 values print in their shortest exact form, so they parse back to the same number.
 */
const FETCHED_AS_JSON = `json_agg(json_build_array(f.id, f.type, f.payload, f.headers,
    f.idempotency_key, f.attempts, f.first_seen_at) order by f.seq)::text as batch`;

/**
 * The rows of a batch of leases — those whose (id, token) pair is in `$1`/`$2` — for an ack batch
 * (DELETE ... `using`) or a heartbeat (UPDATE ... `from`). The pairs join differently per engine
 * because of what each planner knows.
 *
 * PostgreSQL: the primary key finds the ids (`id = ANY`), the pair list filters them. Joined to
 * the pairs instead, the planner read every entry of the leased-rows partial index — including
 * the entries of rows acked since autovacuum last ran (its naptime is a minute), 35,100 of them
 * in an ad-hoc run: 5.51 / 4.24 ms per ack of 100 against 2.60 / 1.72 ms this way (two runs,
 * 300 acks each way, interleaved). No `state = 'leased'` there: it steers the planner back to
 * that index (4.96 ms). A token is only ever set by a fetch, with state 'leased', and cleared by
 * every return to 'ready' (defer, retry), so a matching token means the row is leased.
 *
 * PGlite: it has no statistics (no autovacuum, hence no auto-analyse), and without them the
 * planner turns the `id = ANY` form into a sequential scan of the whole table. The join reads the
 * leased-rows index, whose dead entries our own vacuum bounds (see db/vacuum.ts).
 */
function heldLeases(server: boolean, join: 'using' | 'from'): string {
  return server
    ? `where m.id = any($1::text[])
        and (m.id, m.lease_token) in (select * from unnest($1::text[], $2::text[]))`
    : `${join} unnest($1::text[], $2::text[]) as l(id, token)
        where m.id = l.id and m.lease_token = l.token and m.state = 'leased'`;
}

/** One attempt's history entry: the attempt in flight, when it was leased, when it ended, why. */
const HISTORY_ENTRY = (endedAt: string, code: string, message: string): string =>
  `jsonb_build_array(jsonb_build_object('attempt', attempts, 'startedAt', leased_at, 'endedAt', ${endedAt}, 'code', ${code}, 'message', ${message}))`;

/**
 * `server`: PostgreSQL (true) or PGlite. It decides how a batch of leases finds its rows
 * ({@link heldLeases}) and whether a fetch locks the rows it picks (`FOR UPDATE SKIP LOCKED`),
 * i.e. whether other sessions can fetch at the same time. PostgreSQL: yes. PGlite: no — it has one
 * connection, and the handle runs one statement at a time, so nothing can pick a row between
 * the sub-select and the UPDATE. Without the locks a PGlite fetch of 100 writes no lock record
 * per row (WAL: one record per picked row) and takes 15–21 % less time (see the README).
 */
export function queueSql(s: string, server = true): QueueSql {
  const columns = `${s}.messages
      (id, queue, type, payload, headers, idempotency_key, available_at, first_seen_at)`;
  // A batch: one JSON document on PostgreSQL, one array per column on PGlite (params: see
  // batchParams in backend.ts). Ad-hoc, rows inserted per form in shuffled order, median:
  // PGlite, 1,000 rows, 28 batches each, three runs: 12.8 / 13.0 / 13.8 ms by arrays against
  // 13.8 / 14.6 / 15.6 ms by jsonb_to_recordset; PostgreSQL, 36 batches each: 100 rows 1.84 vs
  // 1.63 ms, 10 rows 0.85 vs 0.73 ms (pg encodes array parameters in JS, slower than one string).
  const insertFresh = server
    ? `insert into ${columns}
    select x.id, x.queue, x.type, coalesce(x.payload, 'null'::jsonb), x.headers, x.idempotency_key,
      x.available_at, x.first_seen_at
    from jsonb_to_recordset($1::jsonb) as x(id text, queue text, type text, payload jsonb,
      headers jsonb, idempotency_key text, available_at float8, first_seen_at float8)`
    : `insert into ${columns}
    select * from unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::text[],
      $7::float8[], $8::float8[])`;
  const insert = `${insertFresh}
    on conflict (id) do nothing`;
  // One statement: the NOTIFY is sent at commit, only if the insert commits. The queues to wake
  // ($3) come from the caller, who knows them: a data-modifying WITH runs to completion whether or
  // not anything reads it, and `returning queue` + `distinct` cost ~1.5 ms of server time per
  // 1,000 rows (ad-hoc EXPLAIN ANALYZE, seven interleaved batches of 1,000: 11.2–12.9 vs
  // 9.7–11.6 ms; ~17 % of the insert's execution).
  const notifying = (text: string): string => `with ins as (${text})
      select pg_notify($2::text, q) from unnest($3::text[]) q`;
  // A single message needs no JSON document to unpack, and the wake-up rides in a CTE (a volatile
  // one is never inlined, so it runs once, and only if the insert commits) instead of being the
  // statement's result: no row to describe, send and decode. Sequential sends on PostgreSQL,
  // ad-hoc, 16 rounds of 1,000 per form in shuffled order, median: 200 µs a send this way
  // against 222 µs through jsonb_to_recordset with the pg_notify rows as the result.
  const oneValues = `$1::text, $2::text, $3::text, $4::jsonb, $5::jsonb, $6::text, $7::float8,
      $8::float8`;
  const owned = `id = $1 and lease_token = $2 and state = 'leased'`;
  return {
    enqueue: insert,
    enqueueNotify: notifying(insert),
    enqueueFresh: insertFresh,
    enqueueFreshNotify: notifying(insertFresh),
    enqueueOne: `insert into ${columns} values (${oneValues})`,
    enqueueOneNotify: `with n as (select pg_notify($9::text, $2::text))
      insert into ${columns} select ${oneValues} from n`,
    notify: `select pg_notify($1::text, q) from unnest($2::text[]) q`,
    // The rows are picked by physical address (ctid): the picked rows are locked by this very
    // statement (FOR UPDATE; on PGlite nothing else runs meanwhile), so their address cannot
    // change before the UPDATE reaches them, and a TID scan spares the primary-key look-up per
    // row that a join on id costs.
    fetch: `with f as (update ${s}.messages m
      set state = 'leased', attempts = m.attempts + 1, lease_token = $5::text,
          leased_at = $2::float8, lease_expires_at = $2::float8 + $4::float8
      where m.ctid = any(array(
        select ctid from ${s}.messages
        where queue = $1 and state = 'ready' and available_at <= $2::float8
        order by available_at, seq
        limit $3::int
        ${server ? 'for update skip locked' : ''}
      ))
      returning m.seq, m.id, m.type, m.payload, m.headers, m.idempotency_key, m.attempts,
        m.first_seen_at)
      select ${FETCHED_AS_JSON} from f`,
    nextAvailable: `select min(available_at) as at from ${s}.messages
      where queue = $1 and state = 'ready' and available_at > $2::float8`,
    extend: `update ${s}.messages m set lease_expires_at = $3::float8 + $4::float8
      ${heldLeases(server, 'from')}
      returning m.id`,
    ack: `delete from ${s}.messages where ${owned}`,
    // The acked ids as one JSON text value, for the same reason as a fetch's rows.
    ackMany: `with d as (delete from ${s}.messages m
      ${heldLeases(server, 'using')}
      returning m.id)
      select json_agg(d.id)::text as ids from d`,
    defer: `update ${s}.messages
      set state = 'ready', attempts = attempts - 1, lease_token = null,
          available_at = $3::float8 + $4::float8
      where ${owned}`,
    retry: `update ${s}.messages
      set state = 'ready', lease_token = null, available_at = $3::float8 + $4::float8,
          history = history || ${HISTORY_ENTRY('$5::float8', '$6::text', '$7::text')}
      where ${owned}`,
    dead: `with gone as (
        delete from ${s}.messages where ${owned}
        returning id, queue, type, payload, headers, idempotency_key, attempts, first_seen_at,
          history || ${HISTORY_ENTRY('$4::float8', '$5::text', '$6::text')} as full_history
      )
      insert into ${s}.dead_letters (id, source_queue, type, message, reason, attempts,
        last_error_code, last_error_message, dead_at, search)
      select id, queue, type,
        jsonb_build_object('id', id, 'queue', queue, 'type', type, 'payload', payload,
          'headers', headers, 'idempotencyKey', idempotency_key, 'attempt', attempts,
          'firstSeenAt', first_seen_at),
        $7::text, full_history, $5::text, $6::text, $3::float8,
        lower(type || E'\\n' || payload::text || E'\\n' || coalesce(
          (select string_agg(e->>'message', E'\\n') from jsonb_array_elements(full_history) e), ''))
      from gone`,
    expired: `select ${RETURNING} from ${s}.messages
      where queue = $1 and state = 'leased' and lease_expires_at <= $2::float8
      order by lease_expires_at, seq
      limit $3::int
      for update skip locked`,
    stats: `select
        (select count(*) from ${s}.messages where queue = $1 and state = 'ready' and available_at <= $2::float8)::int as ready,
        (select count(*) from ${s}.messages where queue = $1 and state = 'ready' and available_at > $2::float8)::int as scheduled,
        (select count(*) from ${s}.messages where queue = $1 and state = 'leased')::int as leased,
        (select count(*) from ${s}.dead_letters where source_queue = $1)::int as dead`,
    deadColumns: `id, source_queue, message, reason, attempts, last_error_code, last_error_message, dead_at`,
    deleteDeadLetter: `delete from ${s}.dead_letters where id = $1 returning id`,
    insertAudit: `insert into ${s}.audit (id, at, action, actor, dry_run, filter, count, ids, note)
      values ($1, $2::float8, $3, $4, $5, $6::jsonb, $7::int, $8::jsonb, $9)`,
  };
}
