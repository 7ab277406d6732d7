/**
 * Density benchmark (issue 12): what a real `trellis host` process holds idle and per instance
 * or actor, 1,000 C instances started and serving, NATS connections per host, and JavaScript
 * actors measured the same way. `node --import tsx test/bench/density.ts`, or
 * `npm run bench -- density`. RSS is read from /proc after the host settles (a GC is not
 * forced: it is what an operator would see).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildExampleActors } from '../../actors/index.ts';
import { createRuntime } from '../../host/runtime/index.ts';
import { connectControl } from '../../lattice/control/index.ts';
import { createRpcClient } from '../../lattice/rpc/index.ts';
import { bytesRequest } from '../../lattice/wire/index.ts';
import { deployExample, spawnHost, startNats, uniqueLattice, waitFor } from '../harness/index.ts';
import { envNumber, table } from './lib.ts';

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const threadsOf = (pid: number) => Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
const settle = (ms = 1500) => new Promise((r) => setTimeout(r, ms));
function pct(samples: number[], q: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
}

export async function run(): Promise<Record<string, unknown>> {
  const workers = envNumber('BENCH_WORKERS', os.availableParallelism());
  const big = envNumber('BENCH_INSTANCES', 1000);
  await buildExampleActors();
  // The host runs what users run: the compiled CLI in dist/, brought up to date first.
  execFileSync(process.execPath, [fileURLToPath(new URL('../../host/cli/build-dist.mjs', import.meta.url))], { stdio: 'inherit' });
  await using nats = await startNats();
  const lattice = uniqueLattice('density');
  const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-density-')) };
  await using host = await spawnHost({ nats: nats.url, lattice, env, extraArgs: ['--workers', String(workers)] });
  await using client = await connectControl({ nats: nats.url, lattice, timeoutMs: 120_000 });
  const rpc = await createRpcClient(client.nc, { lattice, caller: 'bench' });
  const pid = host.process.pid!;
  const rows: Record<string, string | number>[] = [];
  const out: Record<string, unknown> = { workers };

  await settle(3000);
  const idle = rssOf(pid);
  out.idleRssMb = mb(idle);
  rows.push({ row: 'idle host RSS (no actor, workers not started)', value: `${mb(idle)} MB`, target: '< 80 MB' });

  // One C actor, one instance: the worker threads start with the first actor.
  // A small memory cap: the host refuses counts whose worst case (count x cap) exceeds its RAM.
  const small = { maxMemoryPages: 32 };
  await deployExample(client, 'echo-c', [host.id], { actor: 'c', count: 1, policy: small });
  const live = (actor: string) => waitFor(() => rpc.view.liveVersions(actor).length > 0, { what: `${actor} live`, timeoutMs: 30_000 });
  await live('c');
  await rpc.invoke('c', bytesRequest('x'));
  await settle();
  const one = rssOf(pid);
  out.firstCActorRssMb = mb(one);
  rows.push({ row: `host with 1 C instance (${workers} workers started)`, value: `${mb(one)} MB`, target: '' });

  // 1,000 instances of it: time from the scale command to all warm, then every one serving.
  let t = performance.now();
  await client.scaleActor(host.id, { actor: 'c', version: '1.0.0', count: big });
  const startMs = performance.now() - t;
  t = performance.now();
  const answers = await Promise.all(Array.from({ length: big }, (_, i) => rpc.invoke('c', bytesRequest(`m${i}`))));
  const serveMs = performance.now() - t;
  const allOk = answers.every((a, i) => new TextDecoder().decode(a.response.body) === `m${i}`);
  await settle();
  const many = rssOf(pid);
  const perInstanceKb = Math.round((many - one) / (big - 1) / 1024);
  Object.assign(out, { cInstances: big, cStartMs: Math.round(startMs), cServeAllMs: Math.round(serveMs), cAllServed: allOk, cPerInstanceKb: perInstanceKb, cManyRssMb: mb(many) });
  rows.push({ row: `${big} C instances: started (scale → all warm)`, value: `${Math.round(startMs)} ms`, target: '< 5000 ms' });
  rows.push({ row: `${big} C instances: ${big} calls in flight, all answered`, value: `${allOk ? 'yes' : 'NO'} in ${Math.round(serveMs)} ms`, target: 'all' });
  rows.push({ row: 'marginal memory per extra C instance', value: `${perInstanceKb} KB`, target: '< 1 MB' });

  // Distinct actors (20 more versions of the small C component).
  const distinct = envNumber('BENCH_DISTINCT', 20);
  const before = rssOf(pid);
  for (let i = 0; i < distinct; i++) await deployExample(client, 'echo-c', [host.id], { actor: `d${i}`, count: 1, policy: small });
  for (let i = 0; i < distinct; i++) await live(`d${i}`);
  for (let i = 0; i < distinct; i++) await rpc.invoke(`d${i}`, bytesRequest('x'));
  await settle();
  const perActorKb = Math.round((rssOf(pid) - before) / distinct / 1024);
  out.perDistinctActorKb = perActorKb;
  rows.push({ row: `marginal memory per extra distinct C actor (${distinct}, same component)`, value: `${perActorKb} KB`, target: '< 2 MB' });

  // JavaScript: one instance, then ten more.
  const jsBefore = rssOf(pid);
  await deployExample(client, 'hello', [host.id], { actor: 'js', count: 1 });
  await live('js');
  await rpc.invoke('js', bytesRequest('x'));
  await settle();
  const jsOne = rssOf(pid);
  await client.scaleActor(host.id, { actor: 'js', version: '1.0.0', count: 11 });
  await settle();
  const jsEleven = rssOf(pid);
  const jsPerInstanceMb = mb((jsEleven - jsOne) / 10);
  Object.assign(out, { jsFirstActorMb: mb(jsOne - jsBefore), jsPerInstanceMb });
  rows.push({ row: 'JS actor (hello): first instance incl. glue on every worker', value: `${mb(jsOne - jsBefore)} MB`, target: 'report' });
  rows.push({ row: 'JS actor (hello): per extra instance', value: `${jsPerInstanceMb} MB`, target: 'report' });

  // Connections the server sees from this host (named after it), and its threads.
  const connz = (await (await fetch(`${nats.monitorUrl}/connz?limit=1000`)).json()) as { connections: { name?: string }[] };
  const connections = connz.connections.filter((c) => c.name?.startsWith('trellis-host-') && c.name.includes(host.name)).length;
  Object.assign(out, { natsConnections: connections, threads: threadsOf(pid), finalRssMb: mb(rssOf(pid)) });
  rows.push({ row: `NATS connections of the host (${big + distinct + 11} instances, ${distinct + 2} actors)`, value: connections, target: `<= ${workers + 1}` });
  rows.push({ row: 'host OS threads', value: threadsOf(pid), target: 'report' });
  await rpc.close();

  // Cold start and warm call inside a worker, timed there (no thread hop).
  {
    const paths = await buildExampleActors();
    await using rt = await createRuntime({ cacheDir: path.join(os.tmpdir(), 'trellis-runtime-test-cache'), workers: 1 });
    for (const [name, p, n] of [['echo-c', paths['echo-c'], 2000], ['hello', paths.hello, 100]] as const) {
      await rt.load({ name, path: p, policy: { minInstances: 1, maxConcurrency: 1 } });
      const req = bytesRequest('bench');
      const cold = await rt.bench(name, req, n, 'cold');
      const warm = await rt.bench(name, req, n * 5, 'warm');
      const key = name === 'echo-c' ? 'c' : 'js';
      out[`${key}ColdStartP50Us`] = Math.round(pct(cold, 0.5) * 1000);
      out[`${key}WarmCallP50Us`] = Math.round(pct(warm, 0.5) * 1000 * 10) / 10;
      rows.push({ row: `${name}: cold start p50 / p99 (new instance, in the worker)`, value: `${Math.round(pct(cold, 0.5) * 1000)} / ${Math.round(pct(cold, 0.99) * 1000)} µs`, target: name === 'echo-c' ? '< 1000 µs p50' : 'report' });
      rows.push({ row: `${name}: warm call p50 (in the worker)`, value: `${(Math.round(pct(warm, 0.5) * 10000) / 10).toFixed(1)} µs`, target: 'report' });
    }
  }
  console.log(table(rows));
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run();
  process.exit(0);
}
