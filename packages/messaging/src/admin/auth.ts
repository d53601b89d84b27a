/**
 * Bearer token check. Both sides are hashed with SHA-256 first so `timingSafeEqual` always
 * compares two 32-byte buffers: the comparison takes the same time whatever the given token's
 * length or content, and the configured token's length does not leak either.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export type AuthVerdict = 'ok' | 'missing' | 'invalid';

export function bearerChecker(token: string): (authorization: string | undefined) => AuthVerdict {
  const expected = digest(token);
  return authorization => {
    if (authorization === undefined) return 'missing';
    const match = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match === null) return 'missing';
    // Compare even when the scheme matched but the token is obviously wrong: same work every time.
    return timingSafeEqual(digest(match[1] ?? ''), expected) ? 'ok' : 'invalid';
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
