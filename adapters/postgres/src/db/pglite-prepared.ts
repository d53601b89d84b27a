/**
 * Named prepared statements on PGlite, sent in one protocol exchange per call.
 *
 * Why: PGlite's `query()` parses and plans an unnamed statement on every call and runs each
 * protocol step (parse, describe, bind, describe, execute, sync) as its own exchange with the
 * WASM engine. A statement prepared once under a name needs one exchange per call (bind,
 * describe, execute, sync) and no planning. A queue fetch of 100 plus the ack of those 100 took
 * 3.35 / 3.20 ms this way against 4.55 / 4.15 ms through `query()` (bench/src/pglite-statements.mjs,
 * two runs; the package README has more).
 *
 * The caller must hold the handle's own lock: `execProtocol` takes none of PGlite's, so nothing
 * else may use the instance meanwhile (PgliteDatabase runs every call under one lock).
 */
import { parse as pgliteParse, protocol, type PGlite } from '@electric-sql/pglite';
import { isStalePlan } from './errors.js';
import type { QueryResult } from './types.js';
import { rowCountOf } from './rows.js';

const serialize = protocol.serialize;

/**
 * How many distinct statement texts one PGlite keeps prepared; texts built per call (dead letter
 * filters, say) beyond this run through `query()`, unprepared, instead of growing the cache.
 */
export const MAX_PGLITE_PREPARED = 200;

interface Prepared {
  readonly name: string;
  /** Parameter type OIDs, as the server inferred them: they pick PGlite's serializers. */
  readonly paramTypes: readonly number[];
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * The prepared statement cannot run as prepared: a table changed under it so that its result
 * columns differ (PostgreSQL refuses the old plan), or a script dropped it (`DEALLOCATE ALL`,
 * `DISCARD ALL`: 26000). Prepared again, it runs.
 */
function needsPreparingAgain(error: unknown): boolean {
  return (error as { code?: unknown }).code === '26000' || isStalePlan(error);
}

export class PglitePreparedStatements {
  private readonly byText = new Map<string, Prepared>();
  private counter = 0;

  constructor(private readonly pg: PGlite) {}

  /** Whether `text` is or can be prepared (the cache has room). */
  accepts(text: string): boolean {
    return this.byText.has(text) || this.byText.size < MAX_PGLITE_PREPARED;
  }

  /** Runs `text` as a named prepared statement, preparing it on first use. Caller holds the lock. */
  async query<R>(text: string, params: readonly unknown[]): Promise<QueryResult<R>> {
    try {
      return await this.run<R>(await this.prepared(text), params);
    } catch (error) {
      // Outside a transaction, so the failed call aborted nothing: prepare again and run once more.
      if (!needsPreparingAgain(error)) throw error;
      this.byText.delete(text);
      return this.run<R>(await this.prepared(text), params);
    }
  }

  private async prepared(text: string): Promise<Prepared> {
    const known = this.byText.get(text);
    if (known !== undefined) return known;
    const name = `bulwark_${++this.counter}`;
    // Throws on a syntax error (nothing is cached then); Sync ends the exchange either way.
    const { messages } = await this.pg.execProtocol(
      concat([
        serialize.parse({ name, text }),
        serialize.describe({ type: 'S', name }),
        serialize.sync(),
      ]),
      { syncToFs: false },
    );
    const description = messages.find(m => m.name === 'parameterDescription') as
      { dataTypeIDs: number[] } | undefined;
    const prepared = { name, paramTypes: description?.dataTypeIDs ?? [] };
    this.byText.set(text, prepared);
    return prepared;
  }

  private async run<R>(prepared: Prepared, params: readonly unknown[]): Promise<QueryResult<R>> {
    // PGlite's own serialization of a parameter: its serializer for the type, else toString().
    const values = params.map((value, i) => {
      if (value === null || value === undefined) return null;
      const serializer = this.pg.serializers[prepared.paramTypes[i] ?? -1];
      // No serializer for the type (rare, e.g. an unknown OID): what PGlite itself sends then.
      return serializer === undefined
        ? (value as { toString(): string }).toString()
        : serializer(value);
    });
    const { messages } = await this.pg.execProtocol(
      concat([
        serialize.bind({ statement: prepared.name, values }),
        serialize.describe({ type: 'P' }),
        serialize.execute({}),
        serialize.sync(),
      ]),
    );
    const [result] = pgliteParse.parseResults(messages, this.pg.parsers);
    const rows = (result?.rows ?? []) as R[];
    return { rows, rowCount: rowCountOf(rows, result?.affectedRows) };
  }
}
