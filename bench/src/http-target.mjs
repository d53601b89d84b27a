/**
 * The server process of the HTTP benchmarks, started by `http-lib.mjs` `startTarget(kind)` with an
 * IPC channel: it listens on 127.0.0.1:0, sends `{ port }`, answers `'cpu'` with its
 * `process.cpuUsage()` (so the driver can charge the server's CPU time per request), and exits on
 * `'exit'` or when the parent goes away.
 *
 *   node src/http-target.mjs node | fastify-bare | fastify-bulwark | fastify-bulwark-minimal
 *
 * Every kind answers GET / with the same small JSON document (BODY).
 */
import { createServer } from 'node:http';
import process from 'node:process';
import { BODY } from './http-lib.mjs';

const kind = process.argv[2];

async function start() {
  if (kind === 'node') {
    const payload = JSON.stringify(BODY);
    const length = String(Buffer.byteLength(payload));
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': length });
      res.end(payload);
    });
    server.keepAliveTimeout = 60_000;
    await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
    return server.address().port;
  }
  if (kind?.startsWith('fastify-')) {
    const { default: Fastify } = await import('fastify');
    const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
    if (kind === 'fastify-bulwark') {
      const { bulwark } = await import('@bulwark/http/fastify');
      // Defaults: deadlines, request ids, problem+json, health routes, signal handling and the
      // event-loop-delay shedder (200 ms) are all on.
      await app.register(bulwark);
    } else if (kind === 'fastify-bulwark-minimal') {
      const { bulwark } = await import('@bulwark/http/fastify');
      // Deadlines and problem+json only: what the defaults add on top shows in the difference.
      await app.register(bulwark, {
        requestIdHeader: false,
        shedding: { maxEventLoopDelayMs: false },
        health: { paths: { live: false, ready: false, health: false } },
      });
    } else if (kind !== 'fastify-bare') {
      throw new Error(`unknown target kind ${kind}`);
    }
    app.get('/', async () => BODY);
    await app.listen({ host: '127.0.0.1', port: 0 });
    return app.server.address().port;
  }
  throw new Error(
    `unknown target kind ${String(kind)}; known: node, fastify-bare, fastify-bulwark, fastify-bulwark-minimal`,
  );
}

if (typeof process.send !== 'function') {
  process.stderr.write('http-target.mjs is started by http-lib.mjs startTarget() (needs IPC)\n');
  process.exit(2);
}
process.on('disconnect', () => process.exit(0));
process.on('message', message => {
  if (message === 'cpu') process.send({ cpu: process.cpuUsage() });
  else if (message === 'exit') process.exit(0);
});
start().then(
  port => process.send({ port }),
  error => {
    process.stderr.write(`${error.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
