/**
 * The HTTP gateway: routes requests by path prefix (and optionally Host) to actors through the
 * lattice RPC client, so versions, weights and failover apply. One function maps error codes
 * to statuses; bodies over the limit are refused with 413 before anything is sent.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from 'nats';
import { TrellisError, toTrellisError } from '../../lattice/errors/index.ts';
import { readBody, toActorRequest, writeActorResponse, writeError } from '../../lattice/http/index.ts';
import type { Logger } from '../../lattice/log/index.ts';
import { startMetricsReporter } from '../../lattice/metrics/index.ts';
import { createRpcClient, type InvokeOptions, type RpcClient } from '../../lattice/rpc/index.ts';
import { subjects as buildSubjects } from '../../lattice/subjects/index.ts';
import { parseTraceparent, type Tracing } from '../../lattice/telemetry/index.ts';
import { createGatewayMetrics } from './metrics.ts';
import { matchRoute, openHttpRoutes, type HttpRoute } from '../../lattice/http-routes/index.ts';
import { compileGatewayOptions, type GatewaySettings } from './options.ts';
import { stickyKeyOf } from './sticky.ts';

export { openHttpRoutes, matchRoute, type HttpRoute, type HttpRouteStore } from '../../lattice/http-routes/index.ts';
export { compileGatewayOptions, type CompiledGatewayOptions, type GatewaySettings } from './options.ts';
export { createGatewayMetrics, type GatewayMetrics } from './metrics.ts';

/** Gateway options; every setting but nc and lattice has a default (see options.ts). */
export interface GatewayOptions extends GatewaySettings {
  nc: NatsConnection;
  /** Share an RPC client (e.g. a host's, with local-first invocation); else one is created. */
  rpc?: RpcClient;
  logger: Logger;
  /**
   * Trace each request as a server span (continuing the client's traceparent); the RPC client
   * the gateway creates traces its invocations too. Absent: no span work per request.
   */
  tracing?: Tracing;
}

/** A running gateway. */
export interface Gateway extends AsyncDisposable {
  readonly url: string;
  close(): Promise<void>;
}

/** A client's traceparent when it is a valid one (else the RPC client starts a new trace). */
function clientTraceparent(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && parseTraceparent(value) ? value.trim().toLowerCase() : undefined;
}

// Room for the invocation envelope and headers inside NATS max_payload.
const ENVELOPE_BYTES = 8 * 1024;

/** Start the gateway; resolves once it listens and has loaded the routes. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { nc, logger } = options;
  const compiled = compileGatewayOptions(options);
  const subjects = buildSubjects(compiled.lattice);
  const serverMax = nc.info?.max_payload ?? 1024 * 1024;
  const maxBodyBytes = Math.min(compiled.maxBodyBytes, serverMax - ENVELOPE_BYTES);
  const { deadlineMs } = compiled;
  const ownRpc = !options.rpc;
  // A gateway with its own RPC client reports the calls that failed before reaching any host;
  // a shared client (a host's) counts into its host's windows already.
  const traffic = ownRpc ? startMetricsReporter(nc, subjects, `gateway-${randomUUID().slice(0, 8)}`) : undefined;
  const { tracing } = options;
  const rpc = options.rpc ?? (await createRpcClient(nc, { lattice: options.lattice, caller: 'gateway', traffic: traffic!.window, tracing }));
  let routes: HttpRoute[] = [];
  const store = await openHttpRoutes(nc, subjects);
  // Resolves once the current routes have been delivered, then keeps them current.
  const stopFollowing = await store.follow((next) => (routes = next));

  const { registry, requests, duration, natsReconnects } = createGatewayMetrics(options.lattice);
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'reconnect') natsReconnects.inc();
  })().catch(() => {});
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
    // A caller's request id is kept when it is sane, and travels with the call for logs. It is
    // never the invocation id: the RPC client generates that for every invocation, because
    // capability writes are de-duplicated by it and a client's ids are not unique.
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
    const span = tracing?.span(`${req.method ?? 'GET'} ${route?.prefix ?? 'unrouted'}`, {
      kind: 'server',
      parent: req.headers.traceparent as string | undefined,
      attributes: { 'http.request.method': req.method ?? 'GET', 'url.path': path, 'http.route': route?.prefix ?? '', 'trellis.actor': route?.actor ?? '', 'trellis.request_id': requestId },
    });
    try {
      if (!route) throw new TrellisError('TRELLIS_NO_ROUTE', `no route for ${path}`);
      const request = toActorRequest(req, await readBody(req, maxBodyBytes), route.prefix);
      // Pinning (testers) and sticky keys (canaries): one header read and one map lookup per call.
      const pinned = req.headers['x-trellis-version'];
      const sticky = rpc.stickyOf(route.actor);
      const invokeOptions: InvokeOptions = { deadlineMs, traceparent: span ? span.traceparent : clientTraceparent(req.headers.traceparent), requestId };
      if (typeof pinned === 'string' && pinned !== '') invokeOptions.version = pinned;
      if (sticky) invokeOptions.stickyKey = stickyKeyOf(req.headers, sticky);
      const result = await rpc.invoke(route.actor, request, invokeOptions);
      version = result.version;
      writeActorResponse(res, result.response, ['x-trellis-actor', route.actor, 'x-trellis-version', result.version, 'x-trellis-host', result.hostId, 'x-request-id', requestId]);
      status = result.response.status;
    } catch (err) {
      const error = toTrellisError(err);
      if (error.code === 'TRELLIS_INTERNAL') logger.error({ err, path }, 'gateway request failed');
      // A refused body may still be arriving: close the connection instead of reading it all.
      if (error.code === 'TRELLIS_PAYLOAD_TOO_LARGE') res.setHeader('connection', 'close');
      status = writeError(res, error, ['x-request-id', requestId]);
      if (error.code === 'TRELLIS_PAYLOAD_TOO_LARGE') req.resume();
      span?.fail(error);
    }
    if (span) {
      span.attributes({ 'http.response.status_code': status, 'trellis.version': version });
      span.end();
    }
    metricsFor(route?.prefix ?? 'none', route?.actor ?? 'none', version || 'none', status).observe((performance.now() - started) / 1000);
  }

  const { listenHost: host, listenPort: port } = compiled;
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
    await traffic?.close();
  };
  return { url: `http://${shownHost}:${address.port}`, close, [Symbol.asyncDispose]: close };
}
