/**
 * A fault-injecting proxy to put between two services, in the spirit of Toxiproxy: `tcp` mode pipes
 * raw sockets (any protocol), `http` mode parses requests so it can also answer with an error
 * status. Faults change at run time, from code or from the admin API (admin.ts).
 */
import {
  Agent,
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import { readFileSync } from 'node:fs';
import { createServer as createTcpServer, connect, type Server, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { InvalidOptionsError, systemRandom, type Random } from '@bulwark/core';
import {
  FAULT_KINDS,
  planFaults,
  validateProxyFaults,
  type ProxyFault,
  type ProxyFaultKind,
  type FaultPlan,
  type FaultProxyMode,
} from './faults.js';
import { DelayFirst, Throttle } from './streams.js';

export interface FaultProxyOptions {
  /** Where traffic goes when no fault stops it. */
  target: { host: string; port: number };
  /** Default `{ host: '127.0.0.1', port: 0 }` (an ephemeral port; read it back from `port`). */
  listen?: { host?: string; port?: number };
  /** `tcp` (default) pipes bytes, for any protocol; `http` parses requests, per-request faults. */
  mode?: FaultProxyMode;
  /** Rolls the dice for `probability` and `jitterMs`. Default `systemRandom`; use `seededRandom(seed)` in tests. */
  random?: Random;
  /** Faults active from the start. Default none. */
  faults?: readonly ProxyFault[];
}

export interface FaultProxyStats {
  /** Connections accepted since start. */
  connections: number;
  /** Client connections open now. */
  activeConnections: number;
  /** Requests received (http mode; always 0 in tcp mode). */
  requests: number;
  /** How often each fault kind applied (`down`: how often the listener was taken down). */
  faults: Record<ProxyFaultKind, number>;
}

export interface FaultProxy {
  readonly mode: FaultProxyMode;
  readonly host: string;
  readonly port: number;
  /** `http://host:port` in http mode, `tcp://host:port` in tcp mode. */
  readonly url: string;
  readonly target: { readonly host: string; readonly port: number };
  /**
   * Replaces the active faults. Throws a `FaultValidationError` at once on bad input. Connections
   * held by `hang` or `blackhole` are dropped, since the faults changed. The promise settles when
   * the listener matches the new faults (closed for `down`, listening again otherwise).
   */
  setFaults(faults: readonly ProxyFault[]): Promise<void>;
  /** Same as `setFaults([])`. */
  clearFaults(): Promise<void>;
  /** The active faults, normalised. */
  faults(): readonly ProxyFault[];
  stats(): FaultProxyStats;
  /** Whether the listener accepts connections (false while `down`, and after close). */
  readonly listening: boolean;
  /** Stops listening and destroys every socket and timer, including held ones. Idempotent. */
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function forwardHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map(token => token.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function reset(socket: Socket): void {
  if (!socket.destroyed) socket.resetAndDestroy();
}

function noop(): void {}

/** What one connection (tcp) or one request (http) owns, so it can all be torn down at once. */
class Session {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly owned = new Set<{ destroy(): unknown }>();
  private ended = false;

  constructor(
    private readonly onEnd: (session: Session) => void,
    /** Held by `hang` or `blackhole`: released (destroyed) when the faults change. */
    public held = false,
  ) {}

  get done(): boolean {
    return this.ended;
  }

  after(ms: number, fn: () => void): void {
    if (this.ended) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.ended) fn();
    }, ms);
    this.timers.add(timer);
  }

  own<T extends { destroy(): unknown }>(resource: T): T {
    if (this.ended) resource.destroy();
    else this.owned.add(resource);
    return resource;
  }

  disown(resource: { destroy(): unknown }): void {
    this.owned.delete(resource);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const resource of this.owned) resource.destroy();
    this.owned.clear();
    this.onEnd(this);
  }
}

/** Pipes src → shapers → dst; the session owns the shapers so their timers die with it. */
function chain(
  src: Readable,
  dst: Writable,
  session: Session,
  shapers: (Readable & Writable)[],
): void {
  let from = src;
  for (const shaper of shapers) {
    session.own(shaper);
    from = from.pipe(shaper);
  }
  from.pipe(dst);
}

function shapers(delayMs: number, bytesPerSecond: number | undefined): (Readable & Writable)[] {
  const list: (Readable & Writable)[] = [];
  if (delayMs > 0) list.push(new DelayFirst(delayMs));
  if (bytesPerSecond !== undefined) list.push(new Throttle(bytesPerSecond));
  return list;
}

function checkOptions(options: FaultProxyOptions): void {
  const where = 'startFaultProxy';
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError(`${where}: pass an options object with a target { host, port }`);
  }
  const { target, listen, mode, random } = options as Partial<FaultProxyOptions>;
  if (typeof target !== 'object' || target === null) {
    throw new InvalidOptionsError(
      `${where}: target must be { host, port } of the service to proxy to, got ${String(target)}`,
    );
  }
  if (typeof target.host !== 'string' || target.host === '') {
    throw new InvalidOptionsError(`${where}: target.host must be a non-empty string`);
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw new InvalidOptionsError(
      `${where}: target.port must be an integer in [1, 65535], got ${String(target.port)}`,
    );
  }
  if (listen !== undefined) {
    if (listen.host !== undefined && (typeof listen.host !== 'string' || listen.host === '')) {
      throw new InvalidOptionsError(`${where}: listen.host must be a non-empty string`);
    }
    if (
      listen.port !== undefined &&
      (!Number.isInteger(listen.port) || listen.port < 0 || listen.port > 65535)
    ) {
      throw new InvalidOptionsError(
        `${where}: listen.port must be an integer in [0, 65535] (0 picks a free port), got ${String(listen.port)}`,
      );
    }
  }
  if (mode !== undefined && mode !== 'tcp' && mode !== 'http') {
    throw new InvalidOptionsError(`${where}: mode must be 'tcp' or 'http', got ${String(mode)}`);
  }
  if (random !== undefined && typeof random?.next !== 'function') {
    throw new InvalidOptionsError(
      `${where}: random must be a Random ({ next(): number }), e.g. seededRandom(1)`,
    );
  }
}

/**
 * Listens on a free port below the kernel's ephemeral range, which `listen(0)` never hands out.
 * While the proxy is 'down' its port is free; from the ephemeral range, any server that asks for
 * port 0 (another test, in another worker) could be given it, and the "refused" connections would
 * reach that server instead: a flaky test seen here as three first-byte timeouts in a row.
 * Falls back to an ephemeral port where the range is unknown (not Linux) or nothing is free.
 */
/** The lowest port `listen(0)` may hand out, or 0 where the range cannot be read. */
function ephemeralPortFloor(): number {
  try {
    const text = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    const low = Number(text.trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : 0;
  } catch {
    return 0;
  }
}

async function listenOnStablePort(server: Server, host: string): Promise<void> {
  const low = ephemeralPortFloor();
  const from = Math.max(1024, low - 16_384);
  if (low - from >= 1024) {
    for (let attempt = 0; attempt < 32; attempt++) {
      // Not the proxy's seeded Random: the port choice must not shift its fault sequence.
      const port = from + Math.floor(systemRandom.next() * (low - from));
      try {
        await listenOn(server, port, host);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      }
    }
  }
  await listenOn(server, 0, host);
}

function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, exclusive: true });
  });
}

class FaultProxyImpl implements FaultProxy {
  readonly mode: FaultProxyMode;
  readonly target: { readonly host: string; readonly port: number };
  readonly host: string;
  port: number;
  private active: readonly ProxyFault[] = [];
  private readonly random: Random;
  private readonly server: Server;
  private readonly agent: Agent | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<Session>();
  private readonly counts: FaultProxyStats = {
    connections: 0,
    activeConnections: 0,
    requests: 0,
    faults: Object.fromEntries(FAULT_KINDS.map(kind => [kind, 0])) as Record<
      ProxyFaultKind,
      number
    >,
  };
  private wantDown = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private transition: Promise<void> = Promise.resolve();
  private readonly countFault = (kind: ProxyFaultKind): void => {
    this.counts.faults[kind] += 1;
  };

  constructor(options: FaultProxyOptions) {
    this.mode = options.mode ?? 'tcp';
    this.target = Object.freeze({ host: options.target.host, port: options.target.port });
    this.host = options.listen?.host ?? '127.0.0.1';
    this.port = options.listen?.port ?? 0;
    this.random = options.random ?? systemRandom;
    if (this.mode === 'http') {
      // The proxy adds no timeouts of its own: a hung or throttled exchange lasts as long as the
      // fault says.
      const server = createHttpServer({ requestTimeout: 0 }, (req, res) =>
        this.onRequest(req, res),
      );
      server.on('clientError', (_error, socket) => {
        socket.destroy();
      });
      this.server = server;
      this.agent = new Agent({ keepAlive: true });
    } else {
      this.server = createTcpServer({ allowHalfOpen: true });
      this.agent = undefined;
    }
    // Registered after the http server's own listener, and before any tcp handling, so every
    // socket is counted and tracked first.
    this.server.on('connection', (socket: Socket) => {
      this.track(socket);
      if (this.mode === 'tcp' && !socket.destroyed) this.onTcpConnection(socket);
    });
    // Errors after listen are reported by the listen/close promises; never crash the process.
    this.server.on('error', noop);
  }

  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${this.mode === 'http' ? 'http' : 'tcp'}://${host}:${this.port}`;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  async start(initial: readonly ProxyFault[] | undefined): Promise<void> {
    const faults = initial === undefined ? [] : validateProxyFaults(initial, this.mode);
    if (this.port === 0) await listenOnStablePort(this.server, this.host);
    else await listenOn(this.server, this.port, this.host);
    const address = this.server.address();
    if (address !== null && typeof address === 'object') this.port = address.port;
    if (faults.length > 0) await this.setFaults(faults);
  }

  faults(): readonly ProxyFault[] {
    return this.active;
  }

  stats(): FaultProxyStats {
    return {
      connections: this.counts.connections,
      activeConnections: this.sockets.size,
      requests: this.counts.requests,
      faults: { ...this.counts.faults },
    };
  }

  setFaults(faults: readonly ProxyFault[]): Promise<void> {
    if (this.closed) {
      throw new InvalidOptionsError('fault proxy: setFaults after close(); start a new proxy');
    }
    const next = validateProxyFaults(faults, this.mode);
    this.active = next;
    for (const session of this.sessions) if (session.held) session.end();
    const down = next.some(fault => fault.kind === 'down');
    if (down && !this.wantDown) this.countFault('down');
    this.wantDown = down;
    const settled = this.transition.then(() => this.reconcile());
    this.transition = settled.catch(noop);
    return settled;
  }

  clearFaults(): Promise<void> {
    return this.setFaults([]);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.dropAll();
    this.agent?.destroy();
    await this.transition;
    await this.stopListening();
  }

  private async reconcile(): Promise<void> {
    if (this.closed) return;
    if (this.wantDown && this.server.listening) {
      await this.stopListening();
    } else if (!this.wantDown && !this.server.listening) {
      try {
        await listenOn(this.server, this.port, this.host);
      } catch (error) {
        throw new InvalidOptionsError(
          `fault proxy: could not listen again on ${this.host}:${this.port} after 'down' (${(error as Error).message}); something else took the port`,
        );
      }
    }
  }

  private stopListening(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise(resolve => {
      this.server.close(() => resolve());
      // close() waits for open connections; 'down' and close() drop them.
      this.dropAll();
    });
  }

  private dropAll(): void {
    for (const session of this.sessions) session.end();
    for (const socket of this.sockets) socket.destroy();
  }

  private track(socket: Socket): void {
    this.counts.connections += 1;
    this.sockets.add(socket);
    socket.on('error', noop);
    socket.once('close', () => this.sockets.delete(socket));
    if (this.closed || this.wantDown) socket.destroy();
  }

  private session(): Session {
    const session = new Session(s => this.sessions.delete(s));
    this.sessions.add(session);
    return session;
  }

  private plan(): FaultPlan {
    return planFaults(this.active, this.random, this.countFault);
  }

  // ---- tcp mode ---------------------------------------------------------------------------

  private onTcpConnection(client: Socket): void {
    const session = this.session();
    session.own(client);
    client.once('close', () => session.end());
    const plan = this.plan();
    const go = () => this.tcpOutcome(client, session, plan);
    if (plan.latencyUpMs > 0 && plan.outcome !== 'blackhole') session.after(plan.latencyUpMs, go);
    else go();
  }

  private tcpOutcome(client: Socket, session: Session, plan: FaultPlan): void {
    switch (plan.outcome) {
      case 'reset-upstream':
        reset(client);
        return;
      case 'blackhole':
        session.held = true;
        client.resume();
        return;
      default:
        break;
    }
    const upstream = session.own(
      connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true }),
    );
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    chain(client, upstream, session, shapers(0, plan.throttleUp));
    if (plan.outcome === 'hang') {
      session.held = true;
      upstream.on('error', noop);
      upstream.resume();
      return;
    }
    if (plan.outcome === 'reset-downstream') {
      upstream.on('error', noop);
      upstream.once('data', () => reset(client));
      upstream.once('end', () => reset(client));
      return;
    }
    // The target failed: pass the failure on as a reset, as a dropped connection would.
    upstream.on('error', () => reset(client));
    chain(upstream, client, session, shapers(plan.latencyDownMs, plan.throttleDown));
  }

  // ---- http mode --------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.counts.requests += 1;
    const session = this.session();
    res.once('close', () => session.end());
    const plan = this.plan();
    const go = () => this.httpOutcome(req, res, session, plan);
    if (plan.latencyUpMs > 0 && plan.outcome !== 'blackhole') session.after(plan.latencyUpMs, go);
    else go();
  }

  private httpOutcome(
    req: IncomingMessage,
    res: ServerResponse,
    session: Session,
    plan: FaultPlan,
  ): void {
    switch (plan.outcome) {
      case 'reset-upstream':
        reset(req.socket);
        return;
      case 'blackhole':
        session.held = true;
        session.own(req.socket);
        req.resume();
        return;
      case 'http-error': {
        req.resume();
        const fault = plan.httpError;
        if (fault === undefined) return;
        const send = () => {
          const headers: OutgoingHttpHeaders = { ...fault.headers };
          let body = fault.body;
          if (body === undefined) {
            body = JSON.stringify({
              type: 'urn:bulwark:fault-proxy:injected',
              title: 'Injected fault',
              status: fault.status,
              detail: `fault proxy answered ${fault.status} without contacting the target`,
            });
            headers['content-type'] = 'application/problem+json';
          } else if (!Object.keys(headers).some(name => name.toLowerCase() === 'content-type')) {
            headers['content-type'] = 'text/plain; charset=utf-8';
          }
          headers['content-length'] = Buffer.byteLength(body);
          res.writeHead(fault.status, headers);
          res.end(body);
        };
        if (plan.latencyDownMs > 0) session.after(plan.latencyDownMs, send);
        else send();
        return;
      }
      default:
        break;
    }

    const upstream = httpRequest({
      host: this.target.host,
      port: this.target.port,
      method: req.method,
      path: req.url,
      headers: forwardHeaders(req.headers),
      ...(this.agent === undefined ? {} : { agent: this.agent }),
    });
    session.own(upstream);
    chain(req, upstream, session, shapers(0, plan.throttleUp));

    if (plan.outcome === 'hang') {
      session.held = true;
      session.own(req.socket);
      upstream.on('error', noop);
      upstream.on('response', response => response.resume());
      return;
    }
    if (plan.outcome === 'reset-downstream') {
      upstream.on('error', () => reset(req.socket));
      upstream.on('response', response => {
        response.resume();
        reset(req.socket);
      });
      return;
    }

    upstream.on('error', error => {
      if (session.done) return;
      if (res.headersSent) {
        reset(req.socket);
        return;
      }
      const body = JSON.stringify({
        type: 'urn:bulwark:fault-proxy:bad-gateway',
        title: 'Target unreachable',
        status: 502,
        detail: `fault proxy could not reach ${this.target.host}:${this.target.port}: ${error.message}`,
      });
      res.writeHead(502, {
        'content-type': 'application/problem+json',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
    upstream.on('response', response => {
      // The exchange with the target is complete once its body ends; nothing left to tear down.
      response.once('end', () => session.disown(upstream));
      response.on('error', noop);
      // The target dropped the connection mid-body: the client sees a reset, not a clean end.
      response.once('close', () => {
        if (!response.complete) reset(req.socket);
      });
      const send = () => {
        res.writeHead(
          response.statusCode ?? 502,
          response.statusMessage,
          forwardHeaders(response.headers),
        );
        chain(response, res, session, shapers(0, plan.throttleDown));
      };
      if (plan.latencyDownMs > 0) session.after(plan.latencyDownMs, send);
      else send();
    });
  }
}

/**
 * Starts a fault proxy in front of `target` and resolves once it listens. Listens on 127.0.0.1 and
 * an ephemeral port unless told otherwise.
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  checkOptions(options);
  const proxy = new FaultProxyImpl(options);
  try {
    await proxy.start(options.faults);
  } catch (error) {
    await proxy.close();
    throw error;
  }
  return proxy;
}
