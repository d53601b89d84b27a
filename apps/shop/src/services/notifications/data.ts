/**
 * The notifications schema: one row per confirmation email sent, written in the inbox's
 * transaction, so a row exists exactly when the inbox holds the message's key. The consumer reads
 * it first to skip a redelivered message without calling the mail provider at all.
 */
import { migrate, type SqlDatabase, type SqlExecutor } from '@bulwark/postgres';

export const SCHEMA = 'notifications';

export const migrations = [
  {
    id: '001-emails',
    sql: `create table notifications.emails (
            idempotency_key text primary key,
            message_id text not null,
            order_id int not null,
            user_id int not null,
            recipient text not null,
            provider_message_id text not null,
            sent_at timestamptz not null
          );
          create index emails_by_order on notifications.emails (order_id);`,
  },
];

export async function prepareNotifications(db: SqlDatabase): Promise<void> {
  await migrate(db, { migrations, table: `${SCHEMA}.migrations` });
}

export interface EmailRecord {
  idempotencyKey: string;
  messageId: string;
  orderId: number;
  userId: number;
  recipient: string;
  providerMessageId: string;
  /** Epoch ms. */
  sentAt: number;
}

export async function wasSent(db: SqlExecutor, idempotencyKey: string): Promise<boolean> {
  const { rows } = await db.query('select 1 from notifications.emails where idempotency_key = $1', [
    idempotencyKey,
  ]);
  return rows.length > 0;
}

export async function recordSent(tx: SqlExecutor, email: EmailRecord): Promise<void> {
  await tx.query(
    `insert into notifications.emails
       (idempotency_key, message_id, order_id, user_id, recipient, provider_message_id, sent_at)
     values ($1, $2, $3, $4, $5, $6, to_timestamp($7::float8 / 1000))`,
    [
      email.idempotencyKey,
      email.messageId,
      email.orderId,
      email.userId,
      email.recipient,
      email.providerMessageId,
      email.sentAt,
    ],
  );
}
