/**
 * Real nats-server processes, for the embedded `trellis up` and the test harness: a single node with
 * JetStream, a 3-node cluster, and a supercluster of clusters joined by gateways. Every listener
 * (client, monitoring, cluster, gateway) is opened by nats-server itself on a port the kernel picks
 * (`-1`), and read back from its ports file (`-ports_file_dir`) and /varz: nothing is bound, released
 * and handed over, so two test files starting servers at once can never race for a port. Each
 * server gets a temp store dir, a short ping interval (dead clients are noticed in seconds), a
 * readiness wait on the monitoring endpoint, and is killed when disposed or when the test process
 * exits, whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { TrellisError } from '../errors/index.ts';

/** One running nats-server. */
export interface NatsServer extends AsyncDisposable {
  readonly name: string;
  readonly cluster?: string;
  /** Client URL, nats://127.0.0.1:<port>. */
  readonly url: string;
  readonly port: number;
  readonly monitorUrl: string;
  /** Route URL other members of its cluster dial (clustered servers only). */
  readonly clusterUrl?: string;
  /** Gateway URL other clusters dial (supercluster members only). */
  readonly gatewayUrl?: string;
  readonly process: ChildProcess;
  /** Kill -9 (simulates a crashed node). */
  kill(): void;
  /** What the server logged lately (its last 64 KiB). */
  log(): string;
  /** Replace the extra config text and reload (SIGHUP); resolves once the server logged the reload. */
  reloadExtraConfig(extraConfig: string): Promise<void>;
  stop(): Promise<void>;
}

/** A group of servers, disposed together. */
export interface NatsGroup extends AsyncDisposable {
  readonly servers: NatsServer[];
  /** Client URLs of every server (comma separated, as hosts accept them). */
  readonly urls: string;
  stop(): Promise<void>;
}

const SETPRIV = '/usr/bin/setpriv';
const WITH_PDEATHSIG = process.platform === 'linux' && existsSync(SETPRIV);

const live = new Set<ChildProcess>();
// Last line of defence: never leave servers behind when the test process ends.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Find the nats-server binary, or throw TRELLIS_NATS_MISSING saying how to install it. */
export function natsServerBinary(): string {
  const candidates = [process.env.NATS_SERVER_BIN, ...(process.env.PATH ?? '').split(':').map((d) => `${d}/nats-server`), '/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];
  for (const candidate of candidates) if (candidate && existsSync(candidate)) return candidate;
  throw new TrellisError(
    'TRELLIS_NATS_MISSING',
    'nats-server is not installed. On Debian/Ubuntu: sudo apt-get install nats-server (or run `npm test`, which installs it); elsewhere see https://docs.nats.io/running-a-nats-service/introduction/installation and put nats-server on PATH or set NATS_SERVER_BIN',
  );
}

interface ServerPlan {
  name: string;
  cluster?: string;
  /** Fixed client port (`trellis up --port`, a restart on the same port); default: picked by nats-server. */
  port?: number;
  /** Route URLs to dial (clustered servers only). */
  routes?: string[];
  /** Whether it listens for gateways, and which clusters' gateways it dials. */
  gateway?: boolean;
  gateways?: { name: string; url: string }[];
  jetstream: boolean;
  storeDir?: string;
  maxPayload?: number;
  /** More config text (e.g. an `authorization` block for `trellis up --secure`). */
  extraConfig?: string;
}

/** The config file of a plan; `-1` asks nats-server to pick a free port and keep it. */
function configText(plan: ServerPlan, storeDir: string): string {
  const lines = [
    `server_name: ${plan.name}`,
    `listen: 127.0.0.1:${plan.port ?? -1}`,
    `http: 127.0.0.1:-1`,
    // Short pings: a client that vanished without closing is dropped within ~3 s.
    `ping_interval: "1s"`,
    `ping_max: 2`,
    `max_payload: ${plan.maxPayload ?? 1024 * 1024}`,
  ];
  if (plan.extraConfig) lines.push(plan.extraConfig);
  if (plan.jetstream) lines.push(`jetstream { store_dir: ${JSON.stringify(storeDir)}, max_memory_store: 256MB, max_file_store: 1GB }`);
  if (plan.cluster) {
    lines.push(`cluster { name: ${plan.cluster}, listen: 127.0.0.1:-1, routes: [${(plan.routes ?? []).map((r) => JSON.stringify(r)).join(', ')}] }`);
  }
  if (plan.gateway) {
    const gws = (plan.gateways ?? []).map((g) => `{ name: ${g.name}, urls: [${JSON.stringify(g.url)}] }`);
    lines.push(`gateway { name: ${plan.cluster}, listen: 127.0.0.1:-1, gateways: [${gws.join(', ')}] }`);
  }
  return lines.join('\n') + '\n';
}

/** What nats-server writes to `<dir>/<executable>_<pid>.ports` once its listeners are up (no gateway entry). */
interface Ports {
  nats: string[];
  monitoring: string[];
  cluster?: string[];
}

/** Wait for the ports file of `child` in `dir`. */
async function readPorts(dir: string, child: ChildProcess, wantCluster: boolean, stderr: () => string, timeoutMs = 15_000): Promise<Ports> {
  const deadline = Date.now() + timeoutMs;
  const suffix = `_${child.pid}.ports`;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nats-server exited with ${child.signalCode ?? `code ${child.exitCode}`}\n${stderr()}`);
    const file = (await readdir(dir)).find((f) => f.endsWith(suffix));
    try {
      const ports = file ? (JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Partial<Ports>) : {};
      if (ports.nats?.[0] && ports.monitoring?.[0] && (!wantCluster || ports.cluster?.[0])) return ports as Ports;
    } catch {
      // Caught half-written: read it again.
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nats-server wrote no ports file in ${timeoutMs} ms\n${stderr()}`);
}

async function waitHealthy(server: NatsServer, stderr: () => string, timeoutMs = 15_000): Promise<void> {
  const start = Date.now();
  let lastError = 'not started';
  while (Date.now() - start < timeoutMs) {
    if (server.process.exitCode !== null) throw new Error(`nats-server exited with code ${server.process.exitCode}\n${stderr()}`);
    try {
      const res = await fetch(`${server.monitorUrl}/healthz`);
      if (res.ok) return;
      lastError = `healthz ${res.status}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nats-server at ${server.monitorUrl} not ready after ${timeoutMs} ms (${lastError})\n${stderr()}`);
}

/** A server whose listeners are open; `healthy()` waits until it serves (a cluster member needs its peers first). */
interface Spawned {
  server: NatsServer;
  healthy(): Promise<void>;
  /** Rewrite the config and have the server reload it (SIGHUP). */
  reload(plan: ServerPlan): Promise<void>;
}

async function spawnServer(plan: ServerPlan): Promise<Spawned> {
  const bin = natsServerBinary();
  const dir = await mkdtemp(path.join(os.tmpdir(), `trellis-nats-${plan.name}-`));
  const storeDir = plan.storeDir ?? path.join(dir, 'jetstream');
  const conf = path.join(dir, 'nats.conf');
  await writeFile(conf, configText(plan, storeDir));
  const args = ['-c', conf, '--ports_file_dir', dir];
  // On Linux the server gets SIGTERM when the process that started it dies, even by SIGKILL
  // (util-linux setpriv sets the parent-death signal, then execs it: same pid), so a killed
  // `trellis up` or test leaves no server behind holding its port and JetStream directory.
  const child = WITH_PDEATHSIG ? spawn(SETPRIV, ['--pdeathsig', 'TERM', '--', bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let stderr = '';
  let reloads = 0;
  child.stderr!.on('data', (d: Buffer) => {
    const text = d.toString();
    reloads += (text.match(/Reloaded server configuration/g) ?? []).length;
    stderr = (stderr + text).slice(-64 * 1024);
  });
  child.once('exit', () => live.delete(child));
  let ports: Ports;
  let gatewayUrl: string | undefined;
  try {
    ports = await readPorts(dir, child, Boolean(plan.cluster), () => stderr);
    if (plan.gateway) {
      // The ports file has no gateway entry; /varz reports the port it listens on.
      const varz = (await (await fetch(`${ports.monitoring[0]}/varz`)).json()) as { gateway?: { port?: number } };
      if (!varz.gateway?.port || varz.gateway.port < 0) throw new Error(`nats-server ${plan.name} reports no gateway port`);
      gatewayUrl = `nats://127.0.0.1:${varz.gateway.port}`;
    }
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const url = ports.nats[0]!;
  let stopped: Promise<void> | undefined;
  const server: NatsServer = {
    name: plan.name,
    cluster: plan.cluster,
    url,
    port: Number(new URL(url).port),
    monitorUrl: ports.monitoring[0]!,
    clusterUrl: ports.cluster?.[0],
    gatewayUrl,
    process: child,
    kill: () => child.kill('SIGKILL'),
    log: () => stderr,
    async reloadExtraConfig(extraConfig) {
      const before = reloads;
      await writeFile(conf, configText({ ...plan, extraConfig }, storeDir));
      child.kill('SIGHUP');
      const until = Date.now() + 10_000;
      while (reloads <= before) {
        if (Date.now() > until) throw new Error(`nats-server did not reload\n${stderr.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
    [Symbol.asyncDispose]() {
      return this.stop();
    },
  };
  return {
    server,
    healthy: () => waitHealthy(server, () => stderr),
    async reload(next) {
      await writeFile(conf, configText(next, storeDir));
      child.kill('SIGHUP');
    },
  };
}

async function launch(plan: ServerPlan): Promise<NatsServer> {
  const spawned = await spawnServer(plan);
  try {
    await spawned.healthy();
  } catch (err) {
    await spawned.server.stop();
    throw err;
  }
  return spawned.server;
}

function group(servers: NatsServer[]): NatsGroup {
  return {
    servers,
    urls: servers.map((s) => s.url).join(','),
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
    [Symbol.asyncDispose]() {
      return this.stop();
    },
  };
}

/** Start one nats-server with JetStream (unless disabled); ports are picked by nats-server unless `port` is given. */
export async function startNats(options: { jetstream?: boolean; name?: string; storeDir?: string; port?: number; maxPayload?: number; extraConfig?: string } = {}): Promise<NatsServer> {
  return launch({
    extraConfig: options.extraConfig,
    name: options.name ?? `n-${process.pid}-${Math.random().toString(36).slice(2, 7)}`,
    port: options.port,
    jetstream: options.jetstream ?? true,
    storeDir: options.storeDir,
    maxPayload: options.maxPayload,
  });
}

/** A listener that hangs up on every connection, held open (never released) while it is needed. */
async function anchor(): Promise<{ url: string; close(): void }> {
  const srv = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  return { url: `nats-route://127.0.0.1:${(srv.address() as net.AddressInfo).port}`, close: () => srv.close() };
}

/**
 * Start the servers of one cluster, listening (not yet healthy). Members 2..n dial the first
 * member's route port and gossip completes the mesh. A JetStream member refuses to start without
 * a configured route, and when the first one starts its peers have no ports yet: it dials an
 * anchor (a listener this process holds, which hangs up) until they are up, then reloads with a
 * route to the second member and the anchor closes.
 */
async function spawnCluster(name: string, size: number, jetstream: boolean, gateways?: { name: string; url: string }[]): Promise<Spawned[]> {
  if (jetstream && size < 2) throw new Error(`a JetStream cluster needs 2 or more servers (${name} has ${size}); startNats runs one`);
  const plan = (i: number, routes: string[]): ServerPlan => ({ name: `${name}-${i + 1}`, cluster: name, routes, jetstream, gateway: gateways !== undefined, gateways });
  const held = jetstream ? await anchor() : undefined;
  const members: Spawned[] = [];
  try {
    members.push(await spawnServer(plan(0, held ? [held.url] : [])));
    const seed = members[0]!.server.clusterUrl!;
    members.push(...(await Promise.all(Array.from({ length: size - 1 }, (_, i) => spawnServer(plan(i + 1, [seed]))))));
    if (held) await members[0]!.reload(plan(0, [members[1]!.server.clusterUrl!]));
  } catch (err) {
    await Promise.all(members.map((m) => m.server.stop()));
    throw err;
  } finally {
    held?.close();
  }
  return members;
}

/** Wait until every server sees its whole cluster (and, with gateways, every other cluster). */
async function waitMesh(servers: NatsServer[], clusterSize: number, gatewayCount: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (const server of servers) {
    while (true) {
      const routez = (await (await fetch(`${server.monitorUrl}/routez`)).json()) as { num_routes: number };
      let gatewaysOk = true;
      if (gatewayCount > 0) {
        const gw = (await (await fetch(`${server.monitorUrl}/gatewayz`)).json()) as { outbound_gateways?: Record<string, unknown> };
        // Every server dials one outbound connection per remote cluster; inbound ones land on
        // whichever servers the remote side picked, so only outbound is a per-server signal.
        gatewaysOk = Object.keys(gw.outbound_gateways ?? {}).length >= gatewayCount;
      }
      // JetStream needs an elected meta leader before streams and KV buckets can be created.
      const jsz = (await (await fetch(`${server.monitorUrl}/jsz`)).json()) as { disabled?: boolean; meta_cluster?: { leader?: string } };
      const jetstreamOk = jsz.disabled === true || clusterSize === 1 || Boolean(jsz.meta_cluster?.leader);
      if (routez.num_routes >= clusterSize - 1 && gatewaysOk && jetstreamOk) break;
      if (Date.now() > deadline) throw new Error(`nats-server ${server.name} did not join its mesh (routes ${routez.num_routes})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Wait until JetStream really serves requests from this server: right after a supercluster
 * forms, the meta group may time out or lose freshly created streams for several seconds.
 */
async function waitJetStreamUsable(url: string, timeoutMs = 30_000): Promise<void> {
  const nc = await connect({ servers: url });
  const deadline = Date.now() + timeoutMs;
  const probe = `probe-${Math.random().toString(36).slice(2, 8)}`;
  try {
    while (true) {
      try {
        const jsm = await nc.jetstreamManager({ timeout: 2000 });
        await jsm.streams.add({ name: probe, subjects: [`${probe}.>`], num_replicas: 1 });
        await nc.jetstream({ timeout: 2000 }).publish(`${probe}.x`, new Uint8Array([1]));
        await jsm.streams.delete(probe);
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`JetStream not usable at ${url} after ${timeoutMs} ms: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await nc.close();
  }
}

/** Start a cluster of `size` JetStream nodes joined by routes. */
export async function startCluster(options: { name?: string; size?: number; jetstream?: boolean } = {}): Promise<NatsGroup> {
  const size = options.size ?? 3;
  const jetstream = options.jetstream ?? true;
  const members = await spawnCluster(options.name ?? 'c1', size, jetstream);
  const servers = members.map((m) => m.server);
  const result = group(servers);
  try {
    await Promise.all(members.map((m) => m.healthy()));
    await waitMesh(servers, size, 0);
    if (jetstream) await waitJetStreamUsable(servers[0]!.url);
  } catch (err) {
    await result.stop();
    throw err;
  }
  return result;
}

/** A supercluster: named clusters joined by gateways. */
export interface Supercluster extends NatsGroup {
  /** Servers of one cluster by name. */
  cluster(name: string): NatsServer[];
  /** Client URLs of one cluster. */
  urlsOf(name: string): string;
}

/** Start a supercluster, by default `aws` and `gcp` with 2 nodes each, joined by gateways. */
export async function startSupercluster(options: { clusters?: string[]; size?: number; jetstreamClusters?: string[] } = {}): Promise<Supercluster> {
  const names = options.clusters ?? ['aws', 'gcp'];
  const size = options.size ?? 2;
  // JetStream runs in the first cluster by default: one home for lattice state, reached from the
  // other clusters through the gateways (a meta group spread over small clusters across
  // gateways answers slowly for many seconds after it forms).
  const jetstreamClusters = options.jetstreamClusters ?? names.slice(0, 1);
  // Clusters start one after another: each dials the gateways of those before it, and gossip
  // (implicit gateways) connects the earlier ones back.
  const started: { name: string; members: Spawned[] }[] = [];
  const stopAll = () => Promise.all(started.flatMap((c) => c.members.map((m) => m.server.stop())));
  try {
    for (const name of names) {
      const gateways = started.map((c) => ({ name: c.name, url: c.members[0]!.server.gatewayUrl! }));
      started.push({ name, members: await spawnCluster(name, size, jetstreamClusters.includes(name), gateways) });
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  const servers = started.flatMap((c) => c.members.map((m) => m.server));
  try {
    await Promise.all(started.flatMap((c) => c.members.map((m) => m.healthy())));
    await waitMesh(servers, size, names.length - 1);
    for (const name of names) await waitJetStreamUsable(servers.find((s) => s.cluster === name)!.url);
  } catch (err) {
    await stopAll();
    throw err;
  }
  const base = group(servers);
  return {
    ...base,
    cluster: (name) => servers.filter((s) => s.cluster === name),
    urlsOf: (name) => servers.filter((s) => s.cluster === name).map((s) => s.url).join(','),
  };
}
