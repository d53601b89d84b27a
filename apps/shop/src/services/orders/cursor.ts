/**
 * Opaque, signed pagination cursors. A cursor names the last order of a page (its `placed_at`
 * and id, the keyset) and the user it belongs to; an HMAC-SHA256 over that makes it tamper-proof,
 * so a client can neither forge a position nor reuse one user's cursor for another.
 * Format: base64url(JSON) "." base64url(HMAC).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The fixed secret used when none is configured: fine for the demo, not for production. */
export const DEV_CURSOR_SECRET = 'bulwark-shop-dev-cursor-secret';

export interface CursorPosition {
  userId: number;
  /** `placed_at` of the last order on the page, epoch milliseconds. */
  placedAtMs: number;
  orderId: number;
}

export interface CursorCodec {
  encode(position: CursorPosition): string;
  /** The position, or undefined when the cursor is malformed or its signature does not match. */
  decode(cursor: string): CursorPosition | undefined;
}

const VERSION = 1;

export function cursorCodec(secret: string): CursorCodec {
  const sign = (payload: string) =>
    createHmac('sha256', secret).update(`orders-cursor.${payload}`).digest();
  return {
    encode(position) {
      const payload = Buffer.from(
        JSON.stringify([VERSION, position.userId, position.placedAtMs, position.orderId]),
      ).toString('base64url');
      return `${payload}.${sign(payload).toString('base64url')}`;
    },
    decode(cursor) {
      if (cursor.length > 512) return undefined;
      const dot = cursor.indexOf('.');
      if (dot <= 0) return undefined;
      const payload = cursor.slice(0, dot);
      const given = Buffer.from(cursor.slice(dot + 1), 'base64url');
      const expected = sign(payload);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      } catch {
        return undefined;
      }
      if (!Array.isArray(parsed) || parsed.length !== 4 || parsed[0] !== VERSION) return undefined;
      const [, userId, placedAtMs, orderId] = parsed as unknown[];
      if (
        !Number.isSafeInteger(userId) ||
        !Number.isSafeInteger(placedAtMs) ||
        !Number.isSafeInteger(orderId)
      ) {
        return undefined;
      }
      return {
        userId: userId as number,
        placedAtMs: placedAtMs as number,
        orderId: orderId as number,
      };
    },
  };
}
