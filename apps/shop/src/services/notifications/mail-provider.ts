/**
 * A fake mail provider with an SMTP-shaped answer: in process, so tests and demos need no mail
 * server, and told to fail on purpose, so the notifications consumer's retry and dead-letter paths
 * can be shown. It answers like a provider's send API does: a reply code (250 accepted, 4xx try
 * later, 5xx never), never an exception, except when the caller's signal aborts a slow send.
 *
 * Like the providers that take an idempotency key (Resend, Stripe-style APIs), a key it has
 * accepted before is answered with the first message id and nothing is sent again. That covers the
 * one window the consumer's inbox cannot: a crash after the provider accepted and before the
 * consumer recorded it.
 */
import {
  InvalidOptionsError,
  systemClock,
  systemRandom,
  type Clock,
  type Random,
} from '@bulwark/core';

/** Temporary (4xx, retry later) and permanent (5xx, give up) SMTP replies the fake can give. */
export const FAULT_CODES = [421, 450, 451, 550, 553, 554] as const;
export type FaultCode = (typeof FAULT_CODES)[number];

const REPLY_TEXT: Readonly<Record<FaultCode | 250, string>> = {
  250: '2.0.0 OK: queued',
  421: '4.7.0 Service not available, try again later',
  450: '4.2.1 Mailbox busy, try again later',
  451: '4.3.0 Local error in processing, try again later',
  550: '5.1.1 Mailbox unavailable',
  553: '5.1.3 Bad destination mailbox address syntax',
  554: '5.7.1 Transaction failed: message rejected',
};

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  /** The same key is sent at most once; a repeat answers 250 with the first message id. */
  idempotencyKey: string;
}

export type MailReply =
  | {
      readonly code: 250;
      readonly text: string;
      readonly messageId: string;
      /** True when the key was accepted before and nothing was sent now. */
      readonly duplicate: boolean;
    }
  | { readonly code: FaultCode; readonly text: string; readonly temporary: boolean };

export interface SentMail extends OutgoingMail {
  messageId: string;
  /** When it was accepted, epoch ms. */
  sentAt: number;
}

/**
 * A fault: when a send matches (`address`, if given) it is answered with `code` (after `delayMs`,
 * if given), with probability `rate`, at most `times` times. Rules are tried in the order added;
 * the first that fires decides.
 */
export interface FaultRule {
  /** The reply to give. Omit for a delay-only rule (then the send succeeds after `delayMs`). */
  code?: FaultCode;
  /** Only sends to this address (case-insensitive). Default: every address. */
  address?: string;
  /** Probability in [0, 1] that a matching send is hit. Default 1. */
  rate?: number;
  /** Fires at most this many times, then stays inert. Default: no limit. */
  times?: number;
  /** Answer only after this many ms (on the provider's clock; the caller's signal cancels). */
  delayMs?: number;
  /** Replaces the reply's text. */
  message?: string;
}

export interface ActiveFault extends FaultRule {
  readonly id: number;
  /** How many times it fired so far. */
  fired: number;
}

export interface MailProviderOptions {
  /** For `sentAt` and delays. Default: the system clock. */
  clock?: Clock;
  /** Decides rate-limited faults. Default: `Math.random`. */
  random?: Random;
  /** Faults active from the start. */
  faults?: readonly FaultRule[];
}

/** Whether `address` looks like a mailbox at all (what a provider's syntax check rejects). */
const ADDRESS = /^[^\s@<>()",;:]+@[^\s@<>()",;:]+\.[a-z]{2,}$/i;

export class FakeMailProvider {
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly accepted = new Map<string, SentMail>();
  private readonly log: SentMail[] = [];
  private rules: ActiveFault[] = [];
  private nextRuleId = 1;
  private nextMessageId = 1;
  /** Every call and its reply code, for tests and the demo: what the consumer actually tried. */
  readonly attempts: { to: string; idempotencyKey: string; code: number }[] = [];
  private waiting = 0;

  constructor(options: MailProviderOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    for (const rule of options.faults ?? []) this.addFault(rule);
  }

  /** Sends, or answers why not. Rejects only when `signal` aborts during a delay. */
  async send(mail: OutgoingMail, options: { signal?: AbortSignal } = {}): Promise<MailReply> {
    const { signal } = options;
    signal?.throwIfAborted();
    const known = this.accepted.get(mail.idempotencyKey);
    if (known !== undefined) {
      this.attempts.push({ to: mail.to, idempotencyKey: mail.idempotencyKey, code: 250 });
      return { code: 250, text: REPLY_TEXT[250], messageId: known.messageId, duplicate: true };
    }
    const rule = this.pickFault(mail.to);
    if (rule?.delayMs !== undefined && rule.delayMs > 0) await this.delay(rule.delayMs, signal);
    let reply: MailReply;
    if (rule?.code !== undefined) {
      reply = {
        code: rule.code,
        text: rule.message ?? REPLY_TEXT[rule.code],
        temporary: rule.code < 500,
      };
    } else if (!ADDRESS.test(mail.to)) {
      reply = { code: 553, text: REPLY_TEXT[553], temporary: false };
    } else {
      const sent: SentMail = {
        ...mail,
        messageId: `fake-${this.nextMessageId++}`,
        sentAt: this.clock.wallNow(),
      };
      this.accepted.set(mail.idempotencyKey, sent);
      this.log.push(sent);
      reply = { code: 250, text: REPLY_TEXT[250], messageId: sent.messageId, duplicate: false };
    }
    this.attempts.push({ to: mail.to, idempotencyKey: mail.idempotencyKey, code: reply.code });
    return reply;
  }

  /** What was accepted, oldest first. */
  get sent(): readonly SentMail[] {
    return this.log;
  }

  /** Sends waiting on a fault's delay right now. */
  get pending(): number {
    return this.waiting;
  }

  /** Validates and activates a fault; returns it with its id. */
  addFault(rule: FaultRule): ActiveFault {
    checkFault(rule);
    const active: ActiveFault = { ...rule, id: this.nextRuleId++, fired: 0 };
    this.rules.push(active);
    return active;
  }

  get faults(): readonly ActiveFault[] {
    return this.rules;
  }

  /** Removes one fault (by id) or, without an id, all of them. Returns how many went. */
  clearFaults(id?: number): number {
    const before = this.rules.length;
    this.rules = id === undefined ? [] : this.rules.filter(r => r.id !== id);
    return before - this.rules.length;
  }

  private pickFault(to: string): ActiveFault | undefined {
    const address = to.toLowerCase();
    for (const rule of this.rules) {
      if (rule.address !== undefined && rule.address.toLowerCase() !== address) continue;
      if (rule.times !== undefined && rule.fired >= rule.times) continue;
      // Draw only for partial rates, so a seeded sequence is not consumed by certain rules.
      if (rule.rate !== undefined && rule.rate < 1 && !(this.random.next() < rule.rate)) continue;
      rule.fired++;
      return rule;
    }
    return undefined;
  }

  private delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
    this.waiting++;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        timer.clear();
        reject(signal?.reason);
      };
      const timer = this.clock.setTimer(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }).finally(() => {
      this.waiting--;
    });
  }
}

/** Throws `InvalidOptionsError` naming the fix when a rule cannot work. */
export function checkFault(rule: unknown): asserts rule is FaultRule {
  const where = 'mail fault';
  if (typeof rule !== 'object' || rule === null) {
    throw new InvalidOptionsError(
      `${where}: expected an object such as { "code": 421, "times": 1 }`,
    );
  }
  const r = rule as Record<string, unknown>;
  const known = ['code', 'address', 'rate', 'times', 'delayMs', 'message'];
  for (const key of Object.keys(r)) {
    if (!known.includes(key)) {
      throw new InvalidOptionsError(`${where}: unknown field "${key}"; known: ${known.join(', ')}`);
    }
  }
  if (r.code !== undefined && !FAULT_CODES.includes(r.code as FaultCode)) {
    throw new InvalidOptionsError(
      `${where}: code must be one of ${FAULT_CODES.join(', ')} (4xx temporary, 5xx permanent), got ${JSON.stringify(r.code)}`,
    );
  }
  if (r.code === undefined && r.delayMs === undefined) {
    throw new InvalidOptionsError(`${where}: give a code, a delayMs, or both`);
  }
  if (r.address !== undefined && (typeof r.address !== 'string' || r.address === '')) {
    throw new InvalidOptionsError(`${where}: address must be a non-empty string`);
  }
  if (r.rate !== undefined && !(typeof r.rate === 'number' && r.rate >= 0 && r.rate <= 1)) {
    throw new InvalidOptionsError(`${where}: rate must be a number in [0, 1], e.g. 0.3`);
  }
  if (r.times !== undefined && !(Number.isInteger(r.times) && (r.times as number) >= 1)) {
    throw new InvalidOptionsError(`${where}: times must be an integer >= 1; omit it for no limit`);
  }
  if (
    r.delayMs !== undefined &&
    !(typeof r.delayMs === 'number' && r.delayMs >= 0 && r.delayMs <= 600_000)
  ) {
    throw new InvalidOptionsError(`${where}: delayMs must be a number of ms in [0, 600000]`);
  }
  if (r.message !== undefined && typeof r.message !== 'string') {
    throw new InvalidOptionsError(`${where}: message must be a string`);
  }
}
