/**
 * Real nats-server processes, for the embedded `trellis up` and the test harness: a single node with
 * JetStream, a 3-node cluster, and a supercluster of clusters joined by gateways. Every server
 * gets random free ports, a temp store dir, a short ping interval (dead clients are noticed in
 * seconds), a readiness wait on the monitoring endpoint, and is killed when disposed or when
 * the test process exits, whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
  readonly process: ChildProcess;
  /** Kill -9 (simulates a crashed node). */
  kill(): void;
  stop(): Promise<void>;
}

/** A group of servers, disposed together. */
export interface NatsGroup extends AsyncDisposable {
  readonly servers: NatsServer[];
  /** Client URLs of every server (comma separated, as hosts accept them). */
  readonly urls: string;
  stop(): Promise<void>;
}

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

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

interface ServerPlan {
  name: string;
  cluster?: string;
  port: number;
  monitorPort: number;
  clusterPort?: number;
  gatewayPort?: number;
  routes?: number[];
  gateways?: { name: string; port: number }[];
  jetstream: boolean;
  storeDir?: string;
  maxPayload?: number;
}

function configText(plan: ServerPlan, storeDir: string): string {
  const lines = [
    `server_name: ${plan.name}`,
    `listen: 127.0.0.1:${plan.port}`,
    `http: 127.0.0.1:${plan.monitorPort}`,
    // Short pings: a client that vanished without closing is dropped within ~3 s.
    `ping_interval: "1s"`,
    `ping_max: 2`,
    `max_payload: ${plan.maxPayload ?? 1024 * 1024}`,
  ];
  if (plan.jetstream) lines.push(`jetstream { store_dir: "${storeDir}", max_memory_store: 256MB, max_file_store: 1GB }`);
  if (plan.cluster && plan.clusterPort) {
    const routes = (plan.routes ?? []).map((p) => `nats-route://127.0.0.1:${p}`);
    lines.push(`cluster { name: ${plan.cluster}, listen: 127.0.0.1:${plan.clusterPort}, routes: [${routes.map((r) => `"${r}"`).join(', ')}] }`);
  }
  if (plan.gatewayPort) {
    const gws = (plan.gateways ?? []).map((g) => `{ name: ${g.name}, urls: ["nats://127.0.0.1:${g.port}"] }`);
    lines.push(`gateway { name: ${plan.cluster}, listen: 127.0.0.1:${plan.gatewayPort}, gateways: [${gws.join(', ')}] }`);
  }
  return lines.join('\n') + '\n';
}

async function waitReady(monitorUrl: string, child: ChildProcess, check: (varz: Record<string, unknown>) => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const start = Date.now();
  let lastError = 'not started';
  while (Date.now() - start < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`${monitorUrl}/healthz`);
      if (res.ok && (await check({}))) return;
      lastError = `healthz ${res.status}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nats-server at ${monitorUrl} not ready after ${timeoutMs} ms (${lastError})`);
}

async function launch(plan: ServerPlan): Promise<NatsServer> {
  const bin = natsServerBinary();
  const dir = await mkdtemp(path.join(os.tmpdir(), `trellis-nats-${plan.name}-`));
  const storeDir = plan.storeDir ?? path.join(dir, 'jetstream');
  const conf = path.join(dir, 'nats.conf');
  await writeFile(conf, configText(plan, storeDir));
  const child = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  child.once('exit', () => live.delete(child));
  const monitorUrl = `http://127.0.0.1:${plan.monitorPort}`;
  try {
    await waitReady(monitorUrl, child, async () => true);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  let stopped: Promise<void> | undefined;
  const server: NatsServer = {
    name: plan.name,
    cluster: plan.cluster,
    url: `nats://127.0.0.1:${plan.port}`,
    port: plan.port,
    monitorUrl,
    process: child,
    kill: () => child.kill('SIGKILL'),
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
  return server;
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

/** Start one nats-server with JetStream (unless disabled) on random ports. */
export async function startNats(options: { jetstream?: boolean; name?: string; storeDir?: string; port?: number; maxPayload?: number } = {}): Promise<NatsServer> {
  return launch({
    name: options.name ?? `n-${process.pid}-${Math.random().toString(36).slice(2, 7)}`,
    port: options.port ?? (await freePort()),
    monitorPort: await freePort(),
    jetstream: options.jetstream ?? true,
    storeDir: options.storeDir,
    maxPayload: options.maxPayload,
  });
}

async function planCluster(name: string, size: number, jetstream: boolean): Promise<ServerPlan[]> {
  const plans: ServerPlan[] = [];
  for (let i = 0; i < size; i++) {
    plans.push({ name: `${name}-${i + 1}`, cluster: name, port: await freePort(), monitorPort: await freePort(), clusterPort: await freePort(), jetstream });
  }
  for (const plan of plans) plan.routes = plans.filter((p) => p !== plan).map((p) => p.clusterPort!);
  return plans;
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
  const plans = await planCluster(options.name ?? 'c1', size, options.jetstream ?? true);
  const servers = await Promise.all(plans.map(launch));
  await waitMesh(servers, size, 0);
  if (options.jetstream ?? true) await waitJetStreamUsable(servers[0]!.url);
  return group(servers);
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
  const byCluster = new Map<string, ServerPlan[]>();
  for (const name of names) byCluster.set(name, await planCluster(name, size, jetstreamClusters.includes(name)));
  for (const plans of byCluster.values()) for (const plan of plans) plan.gatewayPort = await freePort();
  for (const [name, plans] of byCluster) {
    for (const plan of plans) {
      plan.gateways = [...byCluster].filter(([other]) => other !== name).map(([other, ps]) => ({ name: other, port: ps[0]!.gatewayPort! }));
    }
  }
  const servers = await Promise.all([...byCluster.values()].flat().map(launch));
  await waitMesh(servers, size, names.length - 1);
  for (const name of names) await waitJetStreamUsable(servers.find((s) => s.cluster === name)!.url);
  const base = group(servers);
  return {
    ...base,
    cluster: (name) => servers.filter((s) => s.cluster === name),
    urlsOf: (name) => servers.filter((s) => s.cluster === name).map((s) => s.url).join(','),
  };
}
