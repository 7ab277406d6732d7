/**
 * The dashboard server: one HTTP server that serves the page (plain HTML, CSS and JS from
 * lattice/dashboard/page) and streams the lattice to it with server-sent events, fed from NATS.
 * A change in the lattice reaches every open page within about 100 ms (changes are coalesced),
 * and the traffic charts get one point a second. It only reads the lattice, and needs nothing but
 * a NATS connection.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from 'nats';
import { connectParticipant } from '../control/index.ts';
import { parseListen } from '../http/index.ts';
import type { Logger } from '../log/index.ts';
import { latticeOption, serversOption, type NatsConnect } from '../options/index.ts';
import { packagePath } from '../package-root/index.ts';
import { subjects as buildSubjects } from '../subjects/index.ts';
import { feedDashboard } from './feeds.ts';
import { DashboardModel } from './model.ts';
import { Traffic } from './traffic.ts';

/** Where `trellis dashboard` listens unless told. */
export const DEFAULT_DASHBOARD_LISTEN = '127.0.0.1:8090';

export interface DashboardOptions {
  /** An open connection to use (not closed by the dashboard); else one is made to `nats`. */
  nc?: NatsConnection;
  /** NATS URLs (default $TRELLIS_NATS_URL or nats://127.0.0.1:4222). */
  nats?: string | string[];
  /** Compiled connection settings (credential, TLS; lattice/options); wins over `nats`. */
  connect?: NatsConnect;
  lattice?: string;
  /** host:port, `:port` (all interfaces) or a port; port 0 takes any free one. Default 127.0.0.1:8090. */
  listen?: string;
  logger?: Logger;
}

export interface Dashboard extends AsyncDisposable {
  /** The page's URL, e.g. http://127.0.0.1:8090/. */
  readonly url: string;
  readonly lattice: string;
  close(): Promise<void>;
}

/** What one slow page may have waiting in the server before it is cut off. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** The page's files: name → content type. */
const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

/** Headers of every answer: the page loads nothing from anywhere else. */
const SECURITY = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** Start the dashboard; resolves once it listens and has asked every host for its inventory. */
export async function startDashboard(options: DashboardOptions = {}): Promise<Dashboard> {
  const lattice = latticeOption(options.lattice);
  const { host, port } = parseListen(options.listen ?? DEFAULT_DASHBOARD_LISTEN);
  const subjects = buildSubjects(lattice);
  const assets = new Map<string, Buffer>();
  for (const name of Object.keys(ASSETS)) assets.set(name, await readFile(packagePath('lattice', 'dashboard', 'page', name)));

  const nc = options.nc ?? (await connectParticipant(options.connect ?? serversOption(options.nats), 'trellis-dashboard'));
  const model = new DashboardModel(lattice);
  const traffic = new Traffic();
  const clients = new Set<ServerResponse>();

  const send = (res: ServerResponse, event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const broadcast = (event: string, data: unknown) => {
    if (clients.size === 0) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of clients) {
      // A page that stopped reading (a sleeping laptop) must not hold the server's memory: it
      // is cut off, and its browser reconnects to a fresh snapshot when it wakes.
      if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
      else res.write(frame);
    }
  };
  // A timer's failure (a bug, or a document this code misreads) is logged, never the end of the server.
  const safely = (what: string, fn: () => void) => () => {
    try {
      fn();
    } catch (err) {
      options.logger?.warn({ err }, `dashboard: ${what} failed`);
    }
  };
  // Changes come in bursts (an app placed on ten hosts): one view per burst, 50 ms after its start.
  let pending: NodeJS.Timeout | undefined;
  const changed = () => {
    pending ??= setTimeout(
      safely('view', () => {
        pending = undefined;
        broadcast('view', model.view(Date.now(), traffic));
      }),
      50,
    );
  };

  let healthKey = '';
  const tick = setInterval(safely('tick', () => {
    const now = Date.now();
    model.sweep(now);
    broadcast('traffic', traffic.tick(now));
    const key = model.healthKey(now);
    // Health moves with time alone (a missed beat); canaries show their live window.
    if (key !== healthKey || model.hasCanaries()) changed();
    healthKey = key;
  }), 1000);

  const snapshot = () => ({ view: model.view(Date.now(), traffic), series: traffic.history() });

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...SECURITY, allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/events') {
      // x-accel-buffering: a proxy in front (nginx) must pass events on as they come.
      res.writeHead(200, { ...SECURITY, 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      // A lost connection is retried by the browser after a second; the snapshot makes it whole again.
      res.write('retry: 1000\n\n');
      send(res, 'snapshot', snapshot());
      clients.add(res);
      res.on('close', () => clients.delete(res));
      return;
    }
    if (path === '/api/state') {
      res.writeHead(200, { ...SECURITY, 'content-type': 'application/json', 'cache-control': 'no-cache' }).end(JSON.stringify(snapshot()));
      return;
    }
    const name = path === '/' ? 'index.html' : path.slice(1);
    const body = assets.get(name);
    if (!body) {
      res.writeHead(404, { ...SECURITY, 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { ...SECURITY, 'content-type': ASSETS[name]!, 'cache-control': 'no-cache', 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body);
  });
  // SSE streams keep a heartbeat comment going, so proxies and the browser see a live connection.
  const keepAlive = setInterval(() => {
    for (const res of clients) res.write(': keep-alive\n\n');
  }, 15_000);
  tick.unref();
  keepAlive.unref();

  const stopTimers = () => {
    clearInterval(tick);
    clearInterval(keepAlive);
    if (pending) clearTimeout(pending);
  };
  let feeds: Awaited<ReturnType<typeof feedDashboard>> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => (server.off('error', reject), resolve()));
    });
    feeds = await feedDashboard(nc, subjects, model, traffic, { changed });
  } catch (err) {
    stopTimers();
    server.close();
    if (!options.nc) await nc.close();
    throw err;
  }
  const address = server.address() as AddressInfo;
  // Listening on every interface: the URL to print is the loopback one.
  const shownHost = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '[::1]' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}/`;
  options.logger?.info({ url, lattice }, 'dashboard ready');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      stopTimers();
      feeds?.close();
      for (const res of clients) res.end();
      clients.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Browsers hold keep-alive connections open; nothing in flight here is worth waiting for.
      server.closeAllConnections();
      await closed;
      if (!options.nc && !nc.isClosed()) await nc.close();
    })());
  return { url, lattice, close, [Symbol.asyncDispose]: close };
}
