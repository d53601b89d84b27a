import { Readable } from 'node:stream';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { TestClock } from '@bulwark/testing';
import { describe, expect, it } from 'vitest';
import { EXCERPT_BYTES, decoderFor, parseJson, readBody, type BodyLimits } from './decode.js';

const info = { dependency: 'users', method: 'GET', path: '/x', attempt: 1 };

function limits(over: Partial<BodyLimits> = {}): BodyLimits {
  const clock = over.clock ?? new TestClock();
  return {
    maxBytes: 1024,
    bodyTimeoutMs: 1000,
    startedAt: clock.now(),
    clock,
    info,
    mayRetry: true,
    ...over,
  };
}

function chunks(...parts: Buffer[]): Readable {
  return Readable.from(parts, { objectMode: false });
}

describe('readBody', () => {
  it('reads identity bodies', async () => {
    const body = await readBody(chunks(Buffer.from('ab'), Buffer.from('cd')), {}, limits());
    expect(body.toString()).toBe('abcd');
  });

  it.each([
    ['gzip', gzipSync],
    ['x-gzip', gzipSync],
    ['deflate', deflateSync],
    ['br', brotliCompressSync],
  ] as const)('decodes %s', async (encoding, encode) => {
    const text = 'hello '.repeat(100);
    const body = await readBody(
      chunks(encode(Buffer.from(text))),
      { 'content-encoding': encoding },
      limits(),
    );
    expect(body.toString()).toBe(text);
  });

  it('rejects a declared content-length over the limit without reading', async () => {
    const stream = chunks(Buffer.alloc(10));
    await expect(readBody(stream, { 'content-length': '2048' }, limits())).rejects.toMatchObject({
      code: 'BODY_TOO_LARGE',
      retryable: false,
    });
    expect(stream.destroyed).toBe(true);
  });

  it('stops a streamed body as soon as it passes the limit', async () => {
    let pulled = 0;
    const stream = new Readable({
      read() {
        pulled++;
        this.push(Buffer.alloc(512));
      },
    });
    await expect(readBody(stream, {}, limits())).rejects.toMatchObject({ code: 'BODY_TOO_LARGE' });
    expect(stream.destroyed).toBe(true);
    expect(pulled).toBeLessThan(10);
  });

  it('limits the decoded size (zip bomb)', async () => {
    const bomb = gzipSync(Buffer.alloc(1024 * 1024));
    expect(bomb.length).toBeLessThan(1024 * 2);
    await expect(
      readBody(chunks(bomb), { 'content-encoding': 'gzip' }, limits({ maxBytes: 4096 })),
    ).rejects.toMatchObject({ code: 'BODY_TOO_LARGE', message: /after decoding/ });
    const brBomb = brotliCompressSync(Buffer.alloc(1024 * 1024));
    await expect(
      readBody(chunks(brBomb), { 'content-encoding': 'br' }, limits({ maxBytes: 4096 })),
    ).rejects.toMatchObject({ code: 'BODY_TOO_LARGE' });
  });

  it('rejects unknown encodings and corrupt data', async () => {
    await expect(
      readBody(chunks(Buffer.from('x')), { 'content-encoding': 'zstd' }, limits()),
    ).rejects.toMatchObject({ code: 'BAD_CONTENT_ENCODING', message: /"zstd"/ });
    await expect(
      readBody(chunks(Buffer.from('not gzip at all')), { 'content-encoding': 'gzip' }, limits()),
    ).rejects.toMatchObject({ code: 'BAD_CONTENT_ENCODING', retryable: false });
  });

  it('fails a body that takes longer than bodyTimeoutMs in total', async () => {
    const clock = new TestClock();
    const l = limits({ clock, bodyTimeoutMs: 100 });
    const stream = new Readable({ read() {} });
    const result = readBody(stream, {}, l);
    stream.push(Buffer.from('a'));
    await clock.advance(60);
    stream.push(Buffer.from('b'));
    await clock.advance(60);
    stream.push(Buffer.from('c'));
    await expect(result).rejects.toMatchObject({ code: 'BODY_TIMEOUT', retryable: true });
    expect(stream.destroyed).toBe(true);
  });

  it('passes transport errors through unchanged', async () => {
    const boom = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    const stream = new Readable({
      read() {
        this.destroy(boom);
      },
    });
    await expect(readBody(stream, {}, limits())).rejects.toBe(boom);
  });

  it('in excerpt mode keeps the start of the body and never fails on size', async () => {
    const big = Buffer.alloc(5000, 'x');
    const body = await readBody(chunks(big), { 'content-length': '5000' }, limits(), true);
    expect(body.length).toBe(EXCERPT_BYTES);
  });
});

describe('parseJson', () => {
  it('parses JSON, strips a BOM, and reads an empty body as undefined', () => {
    expect(parseJson(Buffer.from('{"a":1}'), info, 200)).toEqual({ a: 1 });
    expect(parseJson(Buffer.from('\ufeff[1]'), info, 200)).toEqual([1]);
    expect(parseJson(Buffer.alloc(0), info, 204)).toBeUndefined();
  });
  it('throws BAD_JSON with a short excerpt', () => {
    const text = `<html>${'x'.repeat(200)}</html>`;
    try {
      parseJson(Buffer.from(text), info, 200);
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: 'BAD_JSON', retryable: false, status: 200 });
      const e = error as { message: string; bodyExcerpt: string };
      expect(e.message).toMatch(/^users: GET \/x answered 200 with a body that is not JSON/);
      expect(e.bodyExcerpt.length).toBeLessThanOrEqual(81);
    }
  });
});

describe('decoderFor', () => {
  it('maps identity to null and unknown to undefined', () => {
    expect(decoderFor(undefined)).toBeNull();
    expect(decoderFor('identity')).toBeNull();
    expect(decoderFor('compress')).toBeUndefined();
  });
});
