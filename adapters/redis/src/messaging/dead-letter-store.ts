/**
 * Reading dead letters. They live beside their source queue (`<tag>:dead` scored by deadAt, and
 * one hash each), so dead-lettering is atomic with the settlement on one Cluster slot. Searches
 * across queues walk the queue registry and merge; the rules are `matchesDeadLetterFilter` from
 * @bulwark/messaging, the same as the in-memory backend's. Range filters (`from`, `to`, the
 * paging cursor) are answered by the sorted set; the others by loading and testing each letter.
 */
import type { DeadLetter, DeadLetterCursor, DeadLetterFilter } from '@bulwark/messaging';
import { compareDeadLetters, matchesDeadLetterFilter } from '@bulwark/messaging';
import type { Redis } from 'ioredis';
import { DEAD_FIELDS, toDeadLetter } from './codec.js';
import { queueKeys, sharedKeys } from './keys.js';

/** Dead letters loaded per round trip while scanning. */
const CHUNK = 200;

export class DeadLetterStore {
  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
  ) {}

  /** The queues a filter can match: its own queue, or every queue ever used. */
  async queues(filter: DeadLetterFilter): Promise<string[]> {
    if (filter.queue !== undefined) return [filter.queue];
    const all = await this.client.smembers(sharedKeys(this.prefix).queues);
    return all.sort();
  }

  async load(queue: string, ids: readonly string[]): Promise<(DeadLetter | undefined)[]> {
    const { tag } = queueKeys(this.prefix, queue);
    const rows = await Promise.all(
      ids.map(id => this.client.hmget(`${tag}:dl:${id}`, ...DEAD_FIELDS)),
    );
    return rows.map((fields, i) => toDeadLetter(ids[i]!, queue, fields));
  }

  /** Which queue holds dead letter `id`, trying `hint` first. */
  async queueOf(id: string, hint: string | undefined): Promise<string | undefined> {
    if (hint !== undefined && (await this.has(hint, id))) return hint;
    const queues = await this.queues({});
    const found = await Promise.all(queues.map(q => this.has(q, id)));
    return queues[found.indexOf(true)];
  }

  /** Up to `limit` matching dead letters of one queue after `after`, in (deadAt, id) order. */
  async scan(
    queue: string,
    filter: DeadLetterFilter,
    after: DeadLetterCursor | undefined,
    limit: number,
  ): Promise<DeadLetter[]> {
    const keep = (letter: DeadLetter | undefined): letter is DeadLetter =>
      letter !== undefined &&
      matchesDeadLetterFilter(letter, filter) &&
      (after === undefined || compareDeadLetters(letter, after) > 0);
    if (filter.ids !== undefined) {
      const letters = await this.load(queue, [...new Set(filter.ids)]);
      return letters.filter(keep).sort(compareDeadLetters).slice(0, limit);
    }
    const { dead } = queueKeys(this.prefix, queue);
    const lower = Math.max(filter.from ?? -Infinity, after?.deadAt ?? -Infinity);
    const min = lower === -Infinity ? '-inf' : String(lower);
    const max = filter.to === undefined ? '+inf' : `(${filter.to}`;
    const out: DeadLetter[] = [];
    for (let offset = 0; out.length < limit; offset += CHUNK) {
      const flat = await this.client.zrangebyscore(dead, min, max, 'LIMIT', offset, CHUNK);
      for (const letter of await this.load(queue, flat)) {
        if (keep(letter)) out.push(letter);
        if (out.length >= limit) break;
      }
      if (flat.length < CHUNK) break;
    }
    return out;
  }

  /** How many dead letters of one queue match; counted by the sorted set when it can be. */
  async count(queue: string, filter: DeadLetterFilter): Promise<number> {
    const rangeOnly =
      filter.type === undefined &&
      filter.errorCode === undefined &&
      filter.ids === undefined &&
      (filter.text === undefined || filter.text === '');
    if (!rangeOnly) return (await this.scan(queue, filter, undefined, Infinity)).length;
    const { dead } = queueKeys(this.prefix, queue);
    const min = filter.from === undefined ? '-inf' : String(filter.from);
    const max = filter.to === undefined ? '+inf' : `(${filter.to}`;
    return this.client.zcount(dead, min, max);
  }

  private async has(queue: string, id: string): Promise<boolean> {
    return (await this.client.zscore(queueKeys(this.prefix, queue).dead, id)) !== null;
  }
}
