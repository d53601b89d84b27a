/**
 * A small JSON admin API over named fault proxies, so a chaos script or another process (curl,
 * a CI step) can change faults without code. Listens on 127.0.0.1 only.
 *
 *   GET    /proxies               → { proxies: [ { name, mode, url, target, listening, faults, stats } ] }
 *   GET    /proxies/:name         → one of those
 *   PUT    /proxies/:name/faults  ← JSON array of faults (validated) → the proxy
 *   DELETE /proxies/:name/faults  → the proxy, with no faults
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { InvalidOptionsError } from '@bulwark/core';
import { FaultValidationError, type ProxyFault } from './faults.js';
import type { FaultProxy } from './proxy.js';

export interface FaultProxyAdminOptions {
  /** The proxies to control, by name (the `:name` in the URL; letters, digits, `.`, `_`, `-`). */
  proxies: Record<string, FaultProxy>;
  /** Default `{ port: 0 }` (ephemeral). The host is always 127.0.0.1. */
  listen?: { port?: number };
  /** When set, every request needs `Authorization: Bearer <token>`, else 401. */
  token?: string;
}

export interface FaultProxyAdmin {
  readonly url: string;
  readonly port: number;
  /** Stops the admin API and drops its connections. The proxies keep running. */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
const MAX_BODY_BYTES = 64 * 1024;
const NAME = /^[A-Za-z0-9._-]+$/;
const PROBLEM = 'urn:bulwark:fault-proxy-admin:';
/** DNS rebinding guard: a browser page can reach 127.0.0.1 only under a foreign Host name. */
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': `${type}; charset=utf-8`,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

function sendProblem(res: ServerResponse, problem: HttpProblem): void {
  for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
  send(
    res,
    problem.status,
    {
      type: `${PROBLEM}${problem.slug}`,
      title: problem.title,
      status: problem.status,
      detail: problem.detail,
      ...problem.extra,
    },
    'application/problem+json',
  );
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(
          new HttpProblem(
            413,
            'body-too-large',
            'Body too large',
            `a fault list is at most ${MAX_BODY_BYTES} bytes`,
          ),
        );
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function view(name: string, proxy: FaultProxy): Record<string, unknown> {
  return {
    name,
    mode: proxy.mode,
    url: proxy.url,
    target: proxy.target,
    listening: proxy.listening,
    faults: proxy.faults(),
    stats: proxy.stats(),
  };
}

function checkOptions(options: FaultProxyAdminOptions): void {
  const where = 'startFaultProxyAdmin';
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError(`${where}: pass an options object with proxies: { name: proxy }`);
  }
  const { proxies, listen, token } = options as Partial<FaultProxyAdminOptions>;
  if (typeof proxies !== 'object' || proxies === null) {
    throw new InvalidOptionsError(
      `${where}: proxies must be an object of name to FaultProxy (from startFaultProxy)`,
    );
  }
  for (const [name, proxy] of Object.entries(proxies)) {
    if (!NAME.test(name)) {
      throw new InvalidOptionsError(
        `${where}: proxy name ${JSON.stringify(name)} must use only letters, digits, '.', '_' and '-'`,
      );
    }
    if (typeof (proxy as Partial<FaultProxy> | undefined)?.setFaults !== 'function') {
      throw new InvalidOptionsError(
        `${where}: proxies.${name} must be a FaultProxy (from startFaultProxy)`,
      );
    }
  }
  const port = listen?.port;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new InvalidOptionsError(
      `${where}: listen.port must be an integer in [0, 65535] (0 picks a free port), got ${String(port)}`,
    );
  }
  if (token !== undefined && (typeof token !== 'string' || token.length === 0)) {
    throw new InvalidOptionsError(
      `${where}: token must be a non-empty string, or left out for no authentication`,
    );
  }
}

/** Starts the admin API and resolves once it listens on 127.0.0.1. */
export async function startFaultProxyAdmin(
  options: FaultProxyAdminOptions,
): Promise<FaultProxyAdmin> {
  checkOptions(options);
  const proxies = new Map(Object.entries(options.proxies));
  const tokenDigest = options.token === undefined ? undefined : digest(options.token);

  function authorise(req: IncomingMessage): void {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    if (!LOCAL_HOSTS.has(host)) {
      throw new HttpProblem(
        403,
        'forbidden-host',
        'Forbidden host',
        `the admin API answers only to Host 127.0.0.1 or localhost, got ${JSON.stringify(req.headers.host ?? '')}`,
      );
    }
    if (tokenDigest === undefined) return;
    const match = /^Bearer[ ]+(.+)$/i.exec(req.headers.authorization ?? '');
    const given = match?.[1];
    if (given === undefined || !timingSafeEqual(digest(given.trim()), tokenDigest)) {
      throw new HttpProblem(
        401,
        'unauthorized',
        'Unauthorized',
        'send the admin token as "Authorization: Bearer <token>"',
        {},
        { 'www-authenticate': 'Bearer realm="fault-proxy"' },
      );
    }
  }

  function lookup(name: string): FaultProxy {
    const proxy = proxies.get(name);
    if (proxy === undefined) {
      throw new HttpProblem(
        404,
        'unknown-proxy',
        'Unknown proxy',
        `no proxy named ${JSON.stringify(name)}; known: ${[...proxies.keys()].join(', ') || 'none'}`,
      );
    }
    return proxy;
  }

  function notAllowed(allow: string): HttpProblem {
    return new HttpProblem(
      405,
      'method-not-allowed',
      'Method not allowed',
      `use ${allow}`,
      {},
      { allow },
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    authorise(req);
    const path = new URL(req.url ?? '/', 'http://admin').pathname;
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';

    if (parts.length === 1 && parts[0] === 'proxies') {
      if (method !== 'GET') throw notAllowed('GET');
      send(res, 200, { proxies: [...proxies].map(([name, proxy]) => view(name, proxy)) });
      return;
    }
    if (parts.length === 2 && parts[0] === 'proxies') {
      if (method !== 'GET') throw notAllowed('GET');
      const name = parts[1] ?? '';
      send(res, 200, view(name, lookup(name)));
      return;
    }
    if (parts.length === 3 && parts[0] === 'proxies' && parts[2] === 'faults') {
      const name = parts[1] ?? '';
      const proxy = lookup(name);
      if (method === 'GET') {
        send(res, 200, proxy.faults());
        return;
      }
      if (method === 'DELETE') {
        await proxy.clearFaults();
        send(res, 200, view(name, proxy));
        return;
      }
      if (method !== 'PUT') throw notAllowed('GET, PUT, DELETE');
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
      if (type !== 'application/json' && !type.endsWith('+json')) {
        throw new HttpProblem(
          415,
          'unsupported-media-type',
          'Unsupported media type',
          `send the faults as JSON with "Content-Type: application/json", got ${JSON.stringify(type)}`,
        );
      }
      const text = await readBody(req);
      let faults: unknown;
      try {
        faults = JSON.parse(text);
      } catch (error) {
        throw new HttpProblem(
          400,
          'invalid-json',
          'Invalid JSON',
          `the body is not valid JSON: ${(error as Error).message}`,
        );
      }
      try {
        // Validates synchronously (throws), then waits for the listener to follow ('down').
        await proxy.setFaults(faults as readonly ProxyFault[]);
      } catch (error) {
        if (error instanceof FaultValidationError) {
          throw new HttpProblem(400, 'invalid-faults', 'Invalid faults', error.message, {
            field: error.field,
            pointer: error.pointer,
          });
        }
        throw error;
      }
      send(res, 200, view(name, proxy));
      return;
    }
    throw new HttpProblem(
      404,
      'not-found',
      'Not found',
      'routes: GET /proxies, GET /proxies/:name, PUT|DELETE /proxies/:name/faults',
    );
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof HttpProblem) {
        // An unread body must not be taken as the next request on this connection.
        if (!req.complete) res.setHeader('connection', 'close');
        sendProblem(res, error);
        return;
      }
      sendProblem(
        res,
        new HttpProblem(
          500,
          'internal',
          'Internal error',
          error instanceof Error ? error.message : String(error),
        ),
      );
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: HOST, port: options.listen?.port ?? 0, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = address !== null && typeof address === 'object' ? address.port : 0;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${HOST}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>(resolve => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
