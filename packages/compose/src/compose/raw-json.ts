/**
 * A part value that is already JSON text. A part whose value comes from a cache can keep the
 * text it stored and have {@link envelopeJson} write it into the response as it is: nothing to
 * parse on a hit and nothing to serialize again, and the cache holds one string per entry
 * instead of an object graph (the garbage collector promotes it as one block with no pointers to
 * trace, not object by object).
 */
export class RawJson<T = unknown> {
  /** JSON text, as `JSON.stringify` writes it. Not validated: build it with {@link rawJson}. */
  readonly json: string;

  constructor(json: string) {
    if (typeof json !== 'string') {
      throw new TypeError(`rawJson: json must be a string of JSON text, got ${typeof json}`);
    }
    this.json = json;
  }

  /**
   * The parsed value, for a serializer that does not know RawJson (plain `JSON.stringify` of an
   * envelope): the same output, at the price of a parse.
   */
  toJSON(): T {
    return JSON.parse(this.json) as T;
  }
}

/** Wraps JSON text (what `JSON.stringify(value)` returned) as a part value. */
export function rawJson<T = unknown>(json: string): RawJson<T> {
  return new RawJson<T>(json);
}
