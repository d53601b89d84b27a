/**
 * The `order.placed` handler: one confirmation email per order, whatever the delivery count.
 *
 * Effect once, in three steps, none holding a transaction across the provider call (on PGlite a
 * transaction is exclusive, and a slow provider would stall every service sharing the database):
 * 1. a message whose key is already in `notifications.emails` was handled: ack, send nothing;
 * 2. send with the message's idempotency key (a provider that saw the key sends nothing new);
 * 3. record the send through the inbox (key and row in one transaction).
 * A crash between 2 and 3 redelivers; step 2 then relies on the provider's key. Replies map to
 * outcomes: 4xx retry with the consumer's backoff, 5xx and a bad address fail straight to the
 * dead letter queue with the reply as the reason.
 */
import type { Clock } from '@bulwark/core';
import { ack, fail, retry, type Handler } from '@bulwark/messaging';
import type { Inbox, SqlDatabase } from '@bulwark/postgres';
import { ORDER_PLACED, type OrderPlaced } from '../orders/events.js';
import { recordSent, wasSent } from './data.js';
import type { MailReply, OutgoingMail } from './mail-provider.js';
import type { Recipient, Recipients } from './recipients.js';

/** The part of a mail provider the handler needs (the fake, or a real one behind an adapter). */
export interface MailSender {
  send(mail: OutgoingMail, options: { signal?: AbortSignal }): Promise<MailReply>;
}

export interface ConfirmationHandlerOptions {
  db: SqlDatabase;
  mail: MailSender;
  recipients: Recipients;
  inbox: Inbox;
  clock: Clock;
}

export function orderConfirmationHandler(options: ConfirmationHandlerOptions): Handler {
  const { db, mail, recipients, inbox, clock } = options;
  return async (message, { signal }) => {
    if (message.type !== ORDER_PLACED) {
      return fail({ code: 'UNKNOWN_TYPE', message: `cannot handle "${message.type}"` });
    }
    const event = parseOrderPlaced(message.payload);
    if (typeof event === 'string') return fail({ code: 'INVALID_EVENT', message: event });
    const key = message.idempotencyKey ?? message.id;
    if (await wasSent(db, key)) return ack();

    const user = await recipients.lookup(event.userId, { signal });
    if (user === undefined) {
      return fail({ code: 'USER_NOT_FOUND', message: `user ${event.userId} does not exist` });
    }
    const reply = await mail.send(
      { ...confirmationEmail(event, user), to: user.email, idempotencyKey: key },
      { signal },
    );
    if (reply.code !== 250) {
      const code = `SMTP_${reply.code}`;
      const reason = `${reply.code} ${reply.text} (to ${user.email})`;
      return reply.temporary ? retry({ code, reason }) : fail({ code, message: reason });
    }
    await inbox.handle(message, tx =>
      recordSent(tx, {
        idempotencyKey: key,
        messageId: message.id,
        orderId: event.orderId,
        userId: event.userId,
        recipient: user.email,
        providerMessageId: reply.messageId,
        sentAt: clock.wallNow(),
      }),
    );
    return ack();
  };
}

export function confirmationEmail(
  event: OrderPlaced,
  user: Recipient,
): { subject: string; text: string } {
  const money = (cents: number) => `$${(cents / 100).toFixed(2)}`;
  const lines = event.lines.map(
    l => `  ${l.quantity} x product ${l.productId} at ${money(l.unitPriceCents)}`,
  );
  return {
    subject: `Your order #${event.orderId} is confirmed`,
    text: [
      `Hello ${user.name},`,
      '',
      `Thank you for your order #${event.orderId} of ${event.placedAt}:`,
      ...lines,
      `Total: ${money(event.totalCents)}`,
    ].join('\n'),
  };
}

/** The event, or why it is not one (a message no retry can fix). */
export function parseOrderPlaced(payload: unknown): OrderPlaced | string {
  if (typeof payload !== 'object' || payload === null) return 'payload is not an object';
  const p = payload as Partial<Record<keyof OrderPlaced, unknown>>;
  const isId = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (!isId(p.orderId)) return 'orderId is not a positive integer';
  if (!isId(p.userId)) return 'userId is not a positive integer';
  if (typeof p.placedAt !== 'string') return 'placedAt is not a string';
  if (!Number.isInteger(p.totalCents)) return 'totalCents is not an integer';
  if (!Array.isArray(p.lines)) return 'lines is not an array';
  return payload as OrderPlaced;
}
