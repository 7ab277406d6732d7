/**
 * The HTTP gateway: routes requests by path prefix (and optionally Host) to actors through the
 * lattice RPC client, so versions, weights and failover apply. One function maps error codes
 * to statuses; bodies over the limit are refused with 413 before anything is sent.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from 'nats';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { TrellisError, httpStatus, toTrellisError } from '../../lattice/errors/index.ts';
import type { Logger } from '../../lattice/log/index.ts';
import { createRpcClient, type RpcClient } from '../../lattice/rpc/index.ts';
import { subjects as buildSubjects } from '../../lattice/subjects/index.ts';
import type { ActorRequest, Header } from '../../lattice/wire/index.ts';
import { matchRoute, openHttpRoutes, type HttpRoute } from './routes.ts';

export { openHttpRoutes, matchRoute, type HttpRoute, type HttpRouteStore } from './routes.ts';

/** Gateway options; every field but nc and lattice has a default. */
export interface GatewayOptions {
  nc: NatsConnection;
  lattice: string;
  /** host:port to listen on. Default 127.0.0.1:8080; port 0 picks a free one. */
  listen?: string;
  /** Largest request body. Default: 1 MiB, capped below the server's max_payload. */
  maxBodyBytes?: number;
  /** Deadline of each invocation. Default 10000 ms. */
  deadlineMs?: number;
  /** Share an RPC client (e.g. a host's, with local-first invocation); else one is created. */
  rpc?: RpcClient;
  logger: Logger;
}

/** A running gateway. */
export interface Gateway extends AsyncDisposable {
  readonly url: string;
  close(): Promise<void>;
}

// Room for the invocation envelope and headers inside NATS max_payload.
const ENVELOPE_BYTES = 8 * 1024;

/** The one mapping from errors to HTTP: status from the registry, body `{error:{code,message}}`. */
function errorResponse(res: http.ServerResponse, error: TrellisError, requestId: string): number {
  const status = httpStatus(error.code);
  const body = JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': requestId });
  res.end(body);
  return status;
}

/** Read the body up to `limit` bytes, or fail with TRELLIS_PAYLOAD_TOO_LARGE. */
async function readBody(req: http.IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new TrellisError('TRELLIS_PAYLOAD_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new TrellisError('TRELLIS_PAYLOAD_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[?([^\]]*)\]?:)?(\d+)$/.exec(listen.startsWith(':') ? `0.0.0.0${listen}` : listen);
  if (!m) throw new TrellisError('TRELLIS_BAD_OPTION', `--listen "${listen}" is not host:port`);
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}

/** Start the gateway; resolves once it listens and has loaded the routes. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { nc, logger } = options;
  const subjects = buildSubjects(options.lattice);
  const serverMax = nc.info?.max_payload ?? 1024 * 1024;
  const maxBodyBytes = Math.min(options.maxBodyBytes ?? 1024 * 1024, serverMax - ENVELOPE_BYTES);
  const deadlineMs = options.deadlineMs ?? 10_000;
  const ownRpc = !options.rpc;
  const rpc = options.rpc ?? (await createRpcClient(nc, { lattice: options.lattice, caller: 'gateway' }));
  let routes: HttpRoute[] = [];
  const store = await openHttpRoutes(nc, subjects);
  routes = await store.list();
  const stopFollowing = await store.follow((next) => (routes = next));

  const registry = new Registry();
  registry.setDefaultLabels({ lattice: options.lattice });
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'trellis_gateway_requests_total', help: 'HTTP requests by route, actor, version and status', labelNames: ['route', 'actor', 'version', 'status'] as const, registers: [registry] });
  const duration = new Histogram({
    name: 'trellis_gateway_request_duration_seconds',
    help: 'HTTP request latency through the gateway',
    labelNames: ['route', 'actor', 'version'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  let ready = true;
  // Label children resolved once per route/actor/version/status: prom-client validates and
  // hashes label objects on every call otherwise.
  const children = new Map<string, { observe(seconds: number): void }>();
  const metricsFor = (route: string, actor: string, version: string, status: number) => {
    const key = `${route}\u0000${actor}\u0000${version}\u0000${status}`;
    let child = children.get(key);
    if (!child) {
      const counter = requests.labels(route, actor, version, String(status));
      const histogram = duration.labels(route, actor, version);
      child = { observe: (seconds) => (counter.inc(), histogram.observe(seconds)) };
      // Bounded: an attacker choosing paths cannot grow it, routes and versions are few.
      if (children.size < 10_000) children.set(key, child);
    }
    return child;
  };

  const server = http.createServer((req, res) => {
    void handle(req, res);
  });
  server.keepAliveTimeout = 65_000;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    // A caller's request id is kept (and becomes the invocation id) when it is sane.
    const incomingId = req.headers['x-request-id'];
    const requestId = typeof incomingId === 'string' && incomingId.length > 0 && incomingId.length <= 128 ? incomingId : crypto.randomUUID();
    if (path === '/health' || path === '/ready' || path === '/metrics') {
      if (path === '/metrics') {
        res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
      } else {
        const ok = path === '/health' || (ready && !nc.isClosed());
        res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'unavailable' }));
      }
      return;
    }
    const route = matchRoute(routes, path, req.headers.host);
    let status: number;
    let version = '';
    try {
      if (!route) throw new TrellisError('TRELLIS_NO_ROUTE', `no route for ${path}`);
      const body = await readBody(req, maxBodyBytes);
      const headers: Header[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i]!.toLowerCase(), req.rawHeaders[i + 1]!]);
      const below = route.prefix === '/' ? path : path.slice(route.prefix.length) || '/';
      const request: ActorRequest = { method: req.method ?? 'GET', path: below, query: q < 0 ? '' : url.slice(q + 1), headers, body };
      const result = await rpc.invoke(route.actor, request, { deadlineMs, traceparent: req.headers.traceparent as string | undefined, invocationId: requestId });
      version = result.version;
      const out: string[] = [];
      for (const [k, v] of result.response.headers) {
        const lower = k.toLowerCase();
        // Framing is the gateway's: the body is complete, so it sends its own length.
        if (lower !== 'content-length' && lower !== 'transfer-encoding' && lower !== 'connection') out.push(k, v);
      }
      out.push('content-length', String(result.response.body.length), 'x-trellis-actor', route.actor, 'x-trellis-version', result.version, 'x-trellis-host', result.hostId, 'x-request-id', requestId);
      res.writeHead(result.response.status, out);
      res.end(result.response.body);
      status = result.response.status;
    } catch (err) {
      const error = toTrellisError(err);
      if (error.code === 'TRELLIS_INTERNAL') logger.error({ err, path }, 'gateway request failed');
      // A refused body may still be arriving: close the connection instead of reading it all.
      if (error.code === 'TRELLIS_PAYLOAD_TOO_LARGE') res.setHeader('connection', 'close');
      status = errorResponse(res, error, requestId);
      if (error.code === 'TRELLIS_PAYLOAD_TOO_LARGE') req.resume();
    }
    metricsFor(route?.prefix ?? 'none', route?.actor ?? 'none', version || 'none', status).observe((performance.now() - started) / 1000);
  }

  const { host, port } = parseListen(options.listen ?? '127.0.0.1:8080');
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new TrellisError('TRELLIS_BAD_OPTION', `gateway cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address in use (pick another --listen)' : err.message}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  logger.info({ listen: `${host}:${address.port}`, maxBodyBytes, deadlineMs }, 'gateway listening');

  const close = async () => {
    ready = false;
    stopFollowing();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    if (ownRpc) await rpc.close();
  };
  return { url: `http://${shownHost}:${address.port}`, close, [Symbol.asyncDispose]: close };
}
