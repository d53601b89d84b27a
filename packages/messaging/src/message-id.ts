/**
 * Message ids: UUID version 7 (RFC 9562 §5.7) — 48 bits of Unix time in ms, a 12-bit counter and 62
 * random bits — instead of random version 4 UUIDs. Ids made later sort later, so a database's primary-key index
 * takes new ids at its right edge instead of at random leaves all over the tree (and a random leaf
 * touched first after a checkpoint is written to the WAL whole). `bench/src/queue-pg-ids.mjs`
 * compares the two through `@bulwark/postgres`; figures in the messaging README. The random bits
 * keep ids from different processes apart.
 *
 * Within one millisecond, ids keep their order through a 12-bit counter in `rand_a` (RFC 9562
 * §6.2, method 1), so the ids of one `sendBatch` sort in batch order; past 4,096 ids in one
 * millisecond the time part moves on by one; when the clock steps back, ids keep the last id's
 * time (and count on) until the clock passes it again. Either way they stay ordered.
 */

/** How many ids' random bytes are drawn at once (one Web Crypto call per this many ids). */
const IDS_PER_DRAW = 256;
/** Random bytes per id: 62 bits of `rand_b` (+ variant) in 8 bytes. */
const RANDOM_BYTES = 8;

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) =>
  i.toString(16).padStart(2, '0'),
);

let random = new Uint8Array(0);
let offset = 0;
let lastMs = -1;
let counter = 0;

function hex2(byte: number): string {
  return HEX[byte & 0xff] as string;
}

/**
 * A new message id: a UUID v7 string for `nowMs` (default: the system wall clock). Unique across
 * processes (62 random bits per id within a millisecond), and ordered by time within this process.
 */
export function newMessageId(nowMs: number = Date.now()): string {
  // A time the 48-bit field cannot hold (NaN, before 1970) counts as the start of the epoch: the
  // id must still be a well-formed UUID, and ordering then comes from the last id and the counter.
  let ms = nowMs >= 0 ? Math.floor(nowMs) : 0;
  if (!(ms > lastMs)) {
    // The same millisecond as the last id (or earlier: a clock stepped back, a TestClock).
    ms = lastMs;
    counter += 1;
    if (counter > 0xfff) {
      ms += 1;
      counter = 0;
    }
  } else {
    counter = 0;
  }
  lastMs = ms;
  if (offset + RANDOM_BYTES > random.length) {
    random = globalThis.crypto.getRandomValues(new Uint8Array(IDS_PER_DRAW * RANDOM_BYTES));
    offset = 0;
  }
  const r = random;
  const o = offset;
  offset += RANDOM_BYTES;
  // 48-bit time: 12 hex digits (ms fits in 2^48 until the year 10889).
  const time = ms.toString(16).padStart(12, '0');
  return (
    `${time.slice(0, 8)}-${time.slice(8, 12)}-` +
    `7${(counter >> 8).toString(16)}${hex2(counter)}-` +
    `${hex2(((r[o] as number) & 0x3f) | 0x80)}${hex2(r[o + 1] as number)}-` +
    `${hex2(r[o + 2] as number)}${hex2(r[o + 3] as number)}${hex2(r[o + 4] as number)}` +
    `${hex2(r[o + 5] as number)}${hex2(r[o + 6] as number)}${hex2(r[o + 7] as number)}`
  );
}
