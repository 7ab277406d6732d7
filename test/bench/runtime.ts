/**
 * Actor runtime benchmark: `node --import tsx test/bench/runtime.ts`.
 * Per example actor: load with an empty cache (transpile + compile + first worker) and with a
 * warm disk cache; cold start (new instance from cached compiled modules, timed in the worker);
 * warm call (timed in the worker, direct); main thread -> worker -> main round trip. Then
 * `serveComponent` against `jco serve` on the http-js component under the same HTTP load.
 * Prints a table and writes bench-results-runtime.json (git-ignored).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildExampleActors, type ExampleActorName } from '../../actors/index.ts';
import { createRuntime, serveComponent, type KeyValueCapability } from '../../host/runtime/index.ts';
import type { ActorRequest } from '../../lattice/wire/index.ts';

const repoRoot = new URL('../../', import.meta.url).pathname;
const encoder = new TextEncoder();

function pct(samples: number[], q: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
}
const us = (ms: number) => Math.round(ms * 1000 * 10) / 10;

function memoryKeyValue(): KeyValueCapability {
  const data = new Map<string, bigint>();
  return {
    get: async (_a, k) => (data.has(k) ? encoder.encode(String(data.get(k))) : undefined),
    set: async () => {},
    delete: async (_a, k) => void data.delete(k),
    exists: async (_a, k) => data.has(k),
    keys: async () => [...data.keys()],
    increment: async (_a, k, d) => {
      const v = (data.get(k) ?? 0n) + d;
      data.set(k, v);
      return v;
    },
  };
}

const requests: Record<ExampleActorName, ActorRequest> = {
  hello: { method: 'GET', path: '/', query: 'name=bench', headers: [], body: new Uint8Array() },
  counter: { method: 'POST', path: '/', query: 'key=bench', headers: [], body: new Uint8Array() },
  'echo-c': { method: 'CALL', path: '/', query: '', headers: [], body: encoder.encode('bench payload') },
  'http-js': { method: 'GET', path: '/', query: '', headers: [['host', 'bench']], body: new Uint8Array() },
  'hostile-js': { method: 'GET', path: '/ok', query: '', headers: [], body: new Uint8Array() },
  'hostile-c': { method: 'GET', path: '/ok', query: '', headers: [], body: new Uint8Array() },
  'flaky-c': { method: 'GET', path: '/', query: '', headers: [], body: new Uint8Array() },
  'slow-c': { method: 'GET', path: '/', query: '', headers: [], body: new Uint8Array() },
};

interface ActorResult {
  actor: string;
  loadFreshCacheMs: number;
  loadDiskCacheMs: number;
  coldStart: { n: number; p50Us: number; p99Us: number };
  warmCall?: { n: number; p50Us: number; p99Us: number };
  roundTrip: { n: number; p50Us: number; p99Us: number };
}

async function benchActor(name: ExampleActorName, path: string): Promise<ActorResult> {
  const js = name !== 'echo-c' && name !== 'hostile-c';
  const fresh = await mkdtemp(join(tmpdir(), 'trellis-bench-'));
  const capabilities = { keyvalue: memoryKeyValue() };
  let t = performance.now();
  {
    await using rt = await createRuntime({ cacheDir: fresh, capabilities });
    await rt.load({ name, path, policy: { minInstances: 1, maxConcurrency: 1 } });
  }
  const loadFreshCacheMs = performance.now() - t;
  await using rt = await createRuntime({ cacheDir: fresh, capabilities });
  t = performance.now();
  await rt.load({ name, path, policy: { minInstances: 1, maxConcurrency: 1 } });
  const loadDiskCacheMs = performance.now() - t;
  const req = requests[name];

  const coldN = js ? 100 : 1000;
  const cold = await rt.bench(name, req, coldN, 'cold');
  let warmCall: ActorResult['warmCall'];
  {
    const warmN = js ? 2000 : 20000;
    await rt.bench(name, req, Math.min(warmN, 2000), 'warm'); // JIT warm-up
    const warm = await rt.bench(name, req, warmN, 'warm');
    warmCall = { n: warmN, p50Us: us(pct(warm, 0.5)), p99Us: us(pct(warm, 0.99)) };
  }
  const rtN = js ? 2000 : 5000;
  const trips: number[] = [];
  for (let i = 0; i < rtN; i++) {
    const s = performance.now();
    await rt.invoke(name, req);
    trips.push(performance.now() - s);
  }
  await rm(fresh, { recursive: true, force: true });
  return {
    actor: name,
    loadFreshCacheMs: Math.round(loadFreshCacheMs),
    loadDiskCacheMs: Math.round(loadDiskCacheMs),
    coldStart: { n: coldN, p50Us: us(pct(cold, 0.5)), p99Us: us(pct(cold, 0.99)) },
    warmCall,
    roundTrip: { n: rtN, p50Us: us(pct(trips, 0.5)), p99Us: us(pct(trips, 0.99)) },
  };
}

interface LoadResult {
  target: string;
  requests: number;
  ok: number;
  errors: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

/** Fixed-concurrency keep-alive HTTP load for `durationMs`; counts 2xx as ok, anything else as an error. */
async function load(target: string, url: string, concurrency: number, durationMs: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const u = new URL(url);
  const latencies: number[] = [];
  let ok = 0;
  let errors = 0;
  const end = performance.now() + durationMs;
  const one = () =>
    new Promise<void>((resolve) => {
      const s = performance.now();
      const r = request({ host: u.hostname, port: u.port, path: u.pathname, agent, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => {
          latencies.push(performance.now() - s);
          if (res.statusCode! >= 200 && res.statusCode! < 300) ok++;
          else errors++;
          resolve();
        });
      });
      r.on('error', () => {
        errors++;
        resolve();
      });
      r.on('timeout', () => r.destroy());
      r.end();
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  return { target, requests: ok + errors, ok, errors, reqPerSec: Math.round(ok / elapsed), p50Ms: +pct(latencies, 0.5).toFixed(2), p99Ms: +pct(latencies, 0.99).toFixed(2) };
}

async function waitForHttp(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`jco serve exited with ${child.exitCode}`);
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`${url} did not come up`);
}

async function jcoServe(component: string, port: number, extra: string[]): Promise<{ url: string; stop(): void }> {
  const child = spawn(join(repoRoot, 'node_modules/.bin/jco'), ['serve', component, '--host', '127.0.0.1', '--port', String(port), ...extra], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(url, child, 120_000);
  } catch (err) {
    child.kill();
    throw err;
  }
  return { url, stop: () => child.kill() };
}

/** `serveComponent` in a child process (this file with `--serve <component> <port>`). */
async function selfServe(component: string, port: number): Promise<{ url: string; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--serve', component, String(port)], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(url, child, 120_000);
  return { url, stop: () => child.kill() };
}

/** The runtime benchmark (a module of `npm run bench`; also runnable alone). */
export async function run(): Promise<Record<string, unknown>> {
  const paths = await buildExampleActors();
  const actors: ExampleActorName[] = ['echo-c', 'hello', 'counter', 'http-js'];
  const results: ActorResult[] = [];
  for (const name of actors) {
    const r = await benchActor(name, paths[name]);
    results.push(r);
    console.log(
      `${name.padEnd(8)} load ${r.loadFreshCacheMs} ms (empty cache) / ${r.loadDiskCacheMs} ms (disk cache) | cold start p50 ${r.coldStart.p50Us} µs p99 ${r.coldStart.p99Us} µs (n=${r.coldStart.n})` +
        (r.warmCall ? ` | warm call p50 ${r.warmCall.p50Us} µs p99 ${r.warmCall.p99Us} µs` : '') +
        ` | round trip p50 ${r.roundTrip.p50Us} µs p99 ${r.roundTrip.p99Us} µs`,
    );
  }

  const CONCURRENCY = 16;
  const DURATION_MS = 5000;
  const http: LoadResult[] = [];
  // Both servers run in their own process so the load generator competes with each alike.
  const served = await selfServe(paths['http-js'], 8930);
  await load('warm-up', served.url + '/', CONCURRENCY, 1000);
  http.push(await load('serveComponent', served.url + '/', CONCURRENCY, DURATION_MS));
  served.stop();
  for (const [target, extra, port] of [
    ['jco serve', [], 8931],
    ['jco serve --isolate-requests instance', ['--isolate-requests', 'instance'], 8932],
  ] as const) {
    try {
      const j = await jcoServe(paths['http-js'], port, [...extra]);
      await load('warm-up', j.url + '/', CONCURRENCY, 1000);
      http.push(await load(target, j.url + '/', CONCURRENCY, DURATION_MS));
      j.stop();
    } catch (err) {
      console.log(`${target}: ${(err as Error).message}`);
    }
  }
  for (const h of http) console.log(`${h.target.padEnd(38)} ${h.reqPerSec} req/s ok (${h.ok} ok, ${h.errors} errors) p50 ${h.p50Ms} ms p99 ${h.p99Ms} ms`);
  const ours = http.find((h) => h.target === 'serveComponent')!;
  for (const h of http.filter((x) => x !== ours)) {
    console.log(`serveComponent / ${h.target}: ${h.reqPerSec ? (ours.reqPerSec / h.reqPerSec).toFixed(1) + 'x' : 'n/a (no successful responses)'}`);
  }
  await writeFile(join(repoRoot, 'bench-results-runtime.json'), JSON.stringify({ date: new Date().toISOString(), actors: results, http }, null, 2));
  console.log('wrote bench-results-runtime.json');
  return { actors: results, http };
}

// Alone: `node --import tsx test/bench/runtime.ts`; `--serve` is the child that serves one component.
const invokedDirectly = process.argv[1] === fileURLToPath(import.meta.url);
if (invokedDirectly && process.argv[2] === '--serve') {
  const server = await serveComponent({ path: process.argv[3]!, listen: `127.0.0.1:${process.argv[4]}` });
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
} else if (invokedDirectly) {
  await run();
  process.exit(0);
}
