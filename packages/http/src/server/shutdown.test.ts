import Fastify from 'fastify';
import { request as undiciRequest, Agent } from 'undici';
import { describe, expect, it } from 'vitest';
import { bulwark } from './plugin.js';

describe('graceful shutdown', () => {
  it('fails readiness, refuses new requests and drains every in-flight request before closing', async () => {
    const N = 50;
    let arrived = 0;
    let open!: () => void;
    const gate = new Promise<void>(resolve => (open = resolve));
    let poolClosed = false;
    const app = Fastify();
    await app.register(bulwark, {
      shutdown: { handleSignals: false, drainTimeoutMs: 10_000 },
      shedding: { maxEventLoopDelayMs: false },
    });
    app.addHook('onClose', async () => {
      poolClosed = true;
    });
    app.get('/slow', async () => {
      arrived++;
      await gate;
      return { ok: true };
    });
    const origin = await app.listen({ port: 0, host: '127.0.0.1' });
    const agent = new Agent({ connections: N + 5 });
    try {
      const inFlight = Array.from({ length: N }, () =>
        undiciRequest(`${origin}/slow`, { dispatcher: agent }).then(async res => ({
          status: res.statusCode,
          body: await res.body.json(),
        })),
      );
      while (arrived < N) await new Promise(resolve => setImmediate(resolve));
      expect(app.bulwark.inFlight).toBe(N);

      const done = app.bulwark.shutdown('test');
      expect(app.bulwark.shutdown('again')).toBe(done);
      expect(app.bulwark.shuttingDown).toBe(true);

      const ready = await undiciRequest(`${origin}/readyz`, { dispatcher: agent });
      expect(ready.statusCode).toBe(503);
      await ready.body.dump();
      const live = await undiciRequest(`${origin}/livez`, { dispatcher: agent });
      expect(live.statusCode).toBe(200);
      await live.body.dump();

      const refused = await undiciRequest(`${origin}/slow`, { dispatcher: agent });
      expect(refused.statusCode).toBe(503);
      expect(refused.headers.connection).toBe('close');
      expect(refused.headers['content-type']).toContain('application/problem+json');
      expect(await refused.body.json()).toMatchObject({ code: 'SHUTTING_DOWN', retryable: true });
      expect(poolClosed).toBe(false);

      open();
      const results = await Promise.all(inFlight);
      expect(results.filter(r => r.status === 200)).toHaveLength(N);
      await done;
      expect(poolClosed).toBe(true);
      expect(app.server.listening).toBe(false);
    } finally {
      open();
      await agent.close();
      await app.close();
    }
  });

  it('responses in flight when shutdown begins carry Connection: close', async () => {
    const app = Fastify();
    await app.register(bulwark, {
      shutdown: { handleSignals: false, drainTimeoutMs: 10_000 },
      shedding: { maxEventLoopDelayMs: false },
    });
    let open!: () => void;
    const gate = new Promise<void>(resolve => (open = resolve));
    let entered!: () => void;
    const inHandler = new Promise<void>(resolve => (entered = resolve));
    app.get('/slow', async () => {
      entered();
      await gate;
      return { ok: true };
    });
    const origin = await app.listen({ port: 0, host: '127.0.0.1' });
    const agent = new Agent();
    try {
      const inFlight = undiciRequest(`${origin}/slow`, { dispatcher: agent });
      await inHandler;
      const done = app.bulwark.shutdown('test');
      open();
      const res = await inFlight;
      expect(res.statusCode).toBe(200);
      expect(res.headers.connection).toBe('close');
      await res.body.dump();
      await done;
    } finally {
      open();
      await agent.close();
      await app.close();
    }
  });

  it('closes after drainTimeoutMs even when a request never finishes', async () => {
    const app = Fastify();
    await app.register(bulwark, {
      shutdown: { handleSignals: false, drainTimeoutMs: 50 },
      shedding: { maxEventLoopDelayMs: false },
    });
    let entered!: () => void;
    const inHandler = new Promise<void>(resolve => (entered = resolve));
    app.get('/stuck', async request => {
      entered();
      // Ends when the server's close tears the request down.
      await new Promise(resolve => request.deadline.signal.addEventListener('abort', resolve));
      return 'late';
    });
    const origin = await app.listen({ port: 0, host: '127.0.0.1' });
    const stuck = fetch(`${origin}/stuck`).catch(() => 'dropped');
    await inHandler;
    await app.bulwark.shutdown();
    expect(app.server.listening).toBe(false);
    expect(await stuck).toBe('dropped');
  });

  it('installs signal listeners on listen and removes them on close', async () => {
    const before = process.listenerCount('SIGTERM');
    const app = Fastify();
    await app.register(bulwark, { shedding: { maxEventLoopDelayMs: false } });
    const closed = new Promise<void>(resolve =>
      app.addHook('onClose', (_instance, done) => {
        resolve();
        done();
      }),
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    process.emit('SIGTERM', 'SIGTERM');
    await closed;
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
