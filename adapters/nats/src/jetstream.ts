/**
 * The few JetStream operations the backend is built from, over `@nats-io/jetstream` 3.x:
 * documents kept one per subject (a stream with `max_msgs_per_subject: 1`, compare-and-set by
 * the subject's last sequence — what NATS KV does, without needing the KV package), scans by
 * subject filter with direct gets, a `no_wait` pull that returns at once, and acks sent to a
 * delivery's reply subject as requests so the server confirms them before we go on.
 */
import { createInbox, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { MessagingError } from '@bulwark/messaging';

/** JetStream API error codes we branch on. */
export const WRONG_LAST_SEQUENCE = 10071;
export const CONSUMER_NOT_FOUND = 10014;
export const STREAM_NOT_FOUND = 10059;
export const NO_MESSAGE_FOUND = 10037;
/** A delete of a sequence that is gone (overwritten, deleted, or past the end): "no message found". */
export const DELETE_NOT_FOUND = 10057;
/**
 * A delete of the stream's last sequence when that one is already deleted (nats-server 2.9):
 * "sequence N not found" — gone as well. Seen when two settlements race for one document.
 */
export const SEQUENCE_NOT_FOUND = 10043;

export function apiCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined;
}

/** Driver errors become `MessagingError` BACKEND_ERROR (retryable) at the boundary. */
export function backendError(operation: string, error: unknown): MessagingError {
  if (error instanceof MessagingError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new MessagingError('BACKEND_ERROR', `nats: ${operation} failed: ${detail}`, {
    cause: error,
    retryable: true,
  });
}

export interface Doc<T> {
  readonly value: T;
  readonly seq: number;
  readonly subject: string;
}

const decoder = new TextDecoder();

export function parseJson<T>(data: Uint8Array): T {
  return JSON.parse(decoder.decode(data)) as T;
}

export class Documents {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly stream: string,
  ) {}

  /** The last document on `subject`, or undefined. */
  async get<T>(subject: string): Promise<Doc<T> | undefined> {
    const stored = await this.jsm.direct.getMessage(this.stream, { last_by_subj: subject });
    if (stored === null) return undefined;
    return { value: parseJson<T>(stored.data), seq: stored.seq, subject: stored.subject };
  }

  /** The first document at or after `seq` whose subject matches `filter` (wildcards allowed). */
  async next<T>(filter: string, seq: number): Promise<Doc<T> | undefined> {
    const stored = await this.jsm.direct.getMessage(this.stream, { seq, next_by_subj: filter });
    if (stored === null) return undefined;
    return { value: parseJson<T>(stored.data), seq: stored.seq, subject: stored.subject };
  }

  async bySeq<T>(seq: number): Promise<Doc<T> | undefined> {
    const stored = await this.jsm.direct.getMessage(this.stream, { seq });
    if (stored === null) return undefined;
    return { value: parseJson<T>(stored.data), seq: stored.seq, subject: stored.subject };
  }

  /** Every document matching `filter`, oldest first. One round trip each: O(n). */
  async *scan<T>(filter: string): AsyncGenerator<Doc<T>> {
    let seq = 0;
    for (;;) {
      const doc = await this.next<T>(filter, seq);
      if (doc === undefined) return;
      yield doc;
      seq = doc.seq + 1;
    }
  }

  /**
   * Writes `value` if the subject's last sequence is still `expectedSeq` (0: the subject must be
   * empty). Returns the new sequence, or undefined when someone else wrote first.
   */
  async put(subject: string, value: unknown, expectedSeq: number): Promise<number | undefined> {
    try {
      const ack = await this.js.publish(subject, JSON.stringify(value), {
        expect: { lastSubjectSequence: expectedSeq },
      });
      return ack.seq;
    } catch (error) {
      if (apiCode(error) === WRONG_LAST_SEQUENCE) return undefined;
      throw error;
    }
  }

  /** Deletes exactly the document at `seq`; false when it is gone or was overwritten since. */
  async delete(seq: number): Promise<boolean> {
    try {
      return await this.jsm.streams.deleteMessage(this.stream, seq, false);
    } catch (error) {
      const code = apiCode(error);
      if (code === DELETE_NOT_FOUND || code === NO_MESSAGE_FOUND || code === SEQUENCE_NOT_FOUND) {
        return false;
      }
      throw error;
    }
  }

  /** Removes whatever is on `subject`. */
  async purge(subject: string): Promise<void> {
    await this.jsm.streams.purge(this.stream, { filter: subject });
  }
}

/**
 * How long a pull may stay silent before we ask why, ms. With `no_wait` the server answers at
 * once (messages, then 404/408) except when the consumer has reached `max_ack_pending`:
 * nats-server 2.9 then sends nothing at all (and its `expires` is not reliable there either).
 * Silence alone is ambiguous — a loaded server is silent too, and a pull given up too early
 * strands the messages it then delivers until their ack wait runs out — so after this long
 * with nothing received we ask the server whether the consumer is saturated.
 */
export const PULL_SILENCE_MS = 500;

/**
 * Pulls up to `batch` messages that are deliverable now and returns without waiting for more
 * (`no_wait`): the port's fetch never blocks on an empty queue. The client's `fetch()` waits at
 * least 1 s for a full batch, hence the raw pull request.
 *
 * `saturated` answers whether the consumer has reached `max_ack_pending` (the one case where
 * the server never answers); it is asked only when the first message is slow to come. The
 * pull gives up after `timeoutMs` in any case.
 */
export async function pullNow(
  nc: NatsConnection,
  stream: string,
  consumer: string,
  batch: number,
  timeoutMs: number,
  saturated: () => Promise<boolean>,
): Promise<Msg[]> {
  const inbox = createInbox();
  const sub = nc.subscribe(inbox);
  const startedAt = performance.now();
  const silenceMs = Math.min(PULL_SILENCE_MS, timeoutMs);
  const out: Msg[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onSilence = (): void => {
    const waitedMs = performance.now() - startedAt;
    // Between messages of one answer, or out of time: what came is all there is for now.
    if (out.length > 0 || waitedMs >= timeoutMs) {
      sub.unsubscribe();
      return;
    }
    saturated().then(
      full => {
        if (full || sub.isClosed()) {
          sub.unsubscribe();
        } else if (out.length === 0) {
          timer = setTimeout(onSilence, Math.min(silenceMs, Math.max(1, timeoutMs - waitedMs)));
        }
      },
      () => sub.unsubscribe(),
    );
  };
  timer = setTimeout(onSilence, silenceMs);
  nc.publish(
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
    JSON.stringify({ batch, no_wait: true }),
    { reply: inbox },
  );
  try {
    for await (const m of sub) {
      clearTimeout(timer);
      const code = m.headers?.code ?? 0;
      // 404 no messages, 408 request done, 409 consumer gone or a limit reached: the pull is
      // over. Reaching a limit only means "nothing more for now".
      if (code !== 0) {
        const description = m.headers?.description ?? '';
        if (code === 409 && out.length === 0 && !/exceeded/i.test(description)) {
          throw new MessagingError(
            'BACKEND_ERROR',
            `nats: pull from ${stream}/${consumer} refused: ${description || '409'}`,
            { retryable: true },
          );
        }
        break;
      }
      out.push(m);
      if (out.length >= batch) break;
      timer = setTimeout(onSilence, silenceMs);
    }
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
  }
  return out;
}

/** The consumer's delivery count from a JetStream ack subject (1 on the first delivery). */
export function deliveryCountOf(reply: string): number {
  const tokens = reply.split('.');
  const count = Number(tokens[tokens.length === 9 ? 4 : 6]);
  if (!Number.isSafeInteger(count)) {
    throw new MessagingError('BACKEND_ERROR', `nats: unexpected ack subject ${reply}`);
  }
  return count;
}

/** Delivery details from a JetStream ack subject (`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>...`). */
export function streamSeqOf(reply: string): number {
  const tokens = reply.split('.');
  // v1: $JS.ACK.stream.consumer.delivered.sseq.dseq.ts.pending (9 tokens);
  // v2 adds domain and account hash after ACK (12 tokens).
  const index = tokens.length === 9 ? 5 : 7;
  const seq = Number(tokens[index]);
  if (!Number.isSafeInteger(seq)) {
    throw new MessagingError('BACKEND_ERROR', `nats: unexpected ack subject ${reply}`);
  }
  return seq;
}

/** Sends an ack-family command to a delivery and waits for the server to confirm it. */
export async function ackRequest(
  nc: NatsConnection,
  reply: string,
  command: '+ACK' | '+WPI' | '+TERM' | '-NAK',
  delayMs: number | undefined,
  timeoutMs: number,
): Promise<void> {
  const body =
    command === '-NAK' && delayMs !== undefined && delayMs > 0
      ? `-NAK ${JSON.stringify({ delay: Math.round(delayMs * 1e6) })}`
      : command;
  await nc.request(reply, body, { timeout: timeoutMs });
}
