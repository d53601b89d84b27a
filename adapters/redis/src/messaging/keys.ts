/**
 * Key names. Every key of one queue starts with the hash tag `{<prefix>:<queue>}`, so a queue's
 * keys sit on one Cluster slot and a Lua script may touch them all atomically. Keys shared by
 * all queues (the queue registry, the audit log) carry the tag `{<prefix>}`.
 *
 * A queue name may contain `{` or `}`; they would end the hash tag early (and two queues could
 * then share keys), so they are percent-encoded in key names (and `%` with them, to stay
 * reversible). Message ids appear after the tag and need no escaping.
 */

/** The consumer group every queue's stream uses. */
export const GROUP = 'bulwark';

export interface QueueKeys {
  /** `{prefix:queue}`: message and dead letter keys are `<tag>:m:<id>` and `<tag>:dl:<id>`. */
  readonly tag: string;
  /** Stream of deliveries; its consumer group's pending list holds the leased entries. */
  readonly stream: string;
  /** Sorted set of messages waiting to be delivered, scored by `availableAt` (epoch ms). */
  readonly due: string;
  /** Sorted set of leased message ids, scored by lease expiry (epoch ms). */
  readonly leases: string;
  /** Sorted set of dead letter ids, scored by `deadAt` (epoch ms). */
  readonly dead: string;
  /** Counter that orders messages with the same `availableAt` (first stored, first out). */
  readonly seq: string;
}

export function escapeQueue(queue: string): string {
  return queue.replace(/[%{}]/g, c => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function queueKeys(prefix: string, queue: string): QueueKeys {
  const tag = `{${prefix}:${escapeQueue(queue)}}`;
  return {
    tag,
    stream: `${tag}:stream`,
    due: `${tag}:due`,
    leases: `${tag}:leases`,
    dead: `${tag}:dead`,
    seq: `${tag}:seq`,
  };
}

export interface SharedKeys {
  /** Set of queue names ever enqueued to: dead letter searches across queues walk it. */
  readonly queues: string;
  /** Stream of audit entries (replays and purges), oldest first. */
  readonly audit: string;
  /** Pub/sub channel for enqueue wake-ups; messages are `<backend instance>\n<queue>`. */
  readonly wakeChannel: string;
}

export function sharedKeys(prefix: string): SharedKeys {
  return {
    queues: `{${prefix}}:queues`,
    audit: `{${prefix}}:audit`,
    wakeChannel: `{${prefix}}:wake`,
  };
}

/**
 * A lease token carries its queue (`<random>.<n>:<queue>`): `settle` and `extendLeases` get only
 * `{ id, token }`, and the queue tells them which keys to use without a global index. A forged
 * or stale token still has to match the token stored with the message.
 */
export function queueOfToken(token: string): string | undefined {
  const at = token.indexOf(':');
  return at < 0 ? undefined : token.slice(at + 1);
}
