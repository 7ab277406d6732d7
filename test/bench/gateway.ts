/**
 * HTTP gateway benchmark: the same echo-c actor behind four HTTP paths and raw NATS, driven in
 * the same run at the same concurrency (32 connections, and 64 for throughput).
 *
 * Scenarios:
 *   a  gateway→NATS→host   `trellis gateway` process → NATS → echo-c on a separate `trellis
 *                          host` process; metrics on, weights set for the actor (so the RPC
 *                          client's weighted pick runs), NATS metadata and x-trellis-* headers
 *   b  host --gateway      `trellis host --gateway`: the gateway inside the host, local-first
 *                          (the call runs in-process through runtime.invoke, no NATS)
 *   a0 http→raw NATS       a plain node:http server in a child process doing nc.request to the
 *                          raw echo responder of (c): what HTTP + a NATS hop cost with no
 *                          Trellis code at all, the realistic floor for (a)
 *   c  raw NATS req/reply  nc.request from this process to a plain echo responder process
 *                          (raw-responder.ts): the target's floor for (a). Load comes from lib.measure,
 *                          not autocannon, since it is not HTTP
 *   d  http+runtime        a plain node:http server in a child process answering each request
 *                          with runtime.invoke on echo-c (worker threads): the ceiling for (b)
 *   d' http+direct         the same server calling the transpiled component on its own main
 *                          thread (no worker hop, no sandbox time limit): the absolute ceiling
 *
 * HTTP load: wrk when it is on PATH (one thread, a Lua script POSTing a 64 B body; it costs a
 * fraction of autocannon's CPU per request, which matters when the load generator shares two
 * cores with the server), else autocannon in this process (latency from its per-response
 * times: float ms, its own histogram rounds to whole ms). CPU per request (user+system, all
 * threads, from /proc) is reported per taking-part process; with wrk the load generator's own
 * CPU is not counted. req/s is a lower bound of what the server could do alone.
 *
 * Rounds: every scenario runs once per round, the order rotating from round to round, and the
 * report gives the median of the rounds with its spread (min–max) and the ratios of each round's
 * pair (their median and spread). One window per scenario gave ratios of 0.54 and 0.29 in two
 * runs on one afternoon: a single window says more about the machine than about the gateway.
 *
 * Knobs (environment): BENCH_GATEWAY_DURATION_MS (measured time per run, default 3000),
 * BENCH_GATEWAY_WARMUP_MS (500), BENCH_GATEWAY_ROUNDS (3), BENCH_GATEWAY_DRIVER (wrk|autocannon;
 * default wrk when installed), BENCH_INSTANCES (echo-c instances per host, default 2),
 * BENCH_GATEWAY_SCENARIOS (comma list of a,a0,b,c,d,d-direct), BENCH_GATEWAY_CONNECTIONS
 * (comma list, default 32,64), BENCH_PROFILE_DIR (run the gateway and hosts with --cpu-prof
 * into that folder and print their top self-time functions during the measured windows; V8
 * samples wall time, so a thread preempted inside a syscall is charged to that syscall),
 * BENCH_GATEWAY_NODE_ARGS (extra node flags for the gateway and host processes).
 *
 * Alone: node --import tsx test/bench/gateway.ts
 * Child roles (used by run()): node --import tsx test/bench/gateway.ts serve-wasm <runtime|direct> <instances>
 *                              node --import tsx test/bench/gateway.ts serve-proxy <nats-url> <subject>
 */
import { execFile, execFileSync } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error -- autocannon ships no type declarations; the part used is typed below.
import autocannonUntyped from 'autocannon';
import { connectControl, type ControlClient } from '../../lattice/control/index.ts';
import { openWeights } from '../../lattice/weights/index.ts';
import { readBody, toActorRequest, writeActorResponse } from '../../lattice/http/index.ts';
import type { ActorRequest, ActorResponse } from '../../lattice/wire/index.ts';
import { openHttpRoutes } from '../../lattice/http-routes/index.ts';
import { deployExample, exampleActor, startNats, TRELLIS_BIN, uniqueLattice, waitFor } from '../harness/index.ts';
import { envNumber, fmt, measure, processCpuMs, selfCpuMs, spawnScript, table, type Child } from './lib.ts';

interface AutocannonResult {
  requests: { total: number; average: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type AutocannonInstance = EventEmitter & PromiseLike<AutocannonResult>;
type Autocannon = (opts: { url: string; connections: number; duration: number; method?: string; body?: Buffer | string; headers?: Record<string, string> }) => AutocannonInstance;
const autocannon = autocannonUntyped as Autocannon;

const SCENARIOS = ['a', 'a0', 'b', 'c', 'd', 'd-direct'] as const;
type Scenario = (typeof SCENARIOS)[number];
const DESCRIPTION: Record<Scenario, string> = {
  a: 'a  gateway proc → NATS → host proc',
  a0: 'a0 node:http proxy → raw NATS → echo proc',
  b: 'b  host --gateway (local-first)',
  c: 'c  raw NATS request/reply',
  d: 'd  node:http + runtime.invoke',
  'd-direct': "d' node:http + direct call (no worker)",
};
const PAYLOAD_BYTES = 64;

interface Row {
  scenario: Scenario;
  /** 1-based round this window belongs to. */
  round: number;
  connections: number;
  requests: number;
  errors: number;
  rps: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
  /** CPU µs per request by process (user+system, every thread). */
  cpu: Record<string, number>;
  /** hrtime window of the measured phase (µs, CLOCK_MONOTONIC like V8's profiles). */
  windowUs: [number, number];
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

function percentileUs(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 1000;
}

/** Drive an HTTP URL with autocannon: an unmeasured warm-up, then the measured run. */
async function httpLoad(url: string, body: Buffer, connections: number, durationMs: number, warmupMs: number, cpu: Record<string, () => number>): Promise<Omit<Row, 'scenario' | 'round'>> {
  const opts = { url, connections, method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } };
  if (warmupMs > 0) await autocannon({ ...opts, duration: Math.max(1, Math.round(warmupMs / 1000)) });
  let samples = new Float64Array(1 << 18);
  let n = 0;
  let bad = 0;
  const cpuBefore = Object.fromEntries(Object.entries(cpu).map(([k, read]) => [k, read()]));
  const t0 = nowUs();
  const instance = autocannon({ ...opts, duration: Math.max(1, Math.round(durationMs / 1000)) });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
    if (statusCode < 200 || statusCode >= 300) {
      bad++;
      return;
    }
    if (n === samples.length) {
      const next = new Float64Array(samples.length * 2);
      next.set(samples);
      samples = next;
    }
    samples[n++] = responseTimeMs;
  });
  const result = await instance;
  const t1 = nowUs();
  const seconds = (t1 - t0) / 1e6;
  const total = n + bad + result.errors;
  const cpuUs = Object.fromEntries(Object.entries(cpu).map(([k, read]) => [k, ((read() - cpuBefore[k]!) * 1000) / Math.max(1, total)]));
  const sorted = samples.slice(0, n).sort();
  return {
    connections,
    requests: n,
    errors: bad + result.errors + result.timeouts,
    rps: n / seconds,
    p50Us: percentileUs(sorted, 50),
    p90Us: percentileUs(sorted, 90),
    p99Us: percentileUs(sorted, 99),
    maxUs: (sorted[n - 1] ?? NaN) * 1000,
    cpu: cpuUs,
    windowUs: [t0, t1],
  };
}

/** wrk's human durations ("812.00us", "1.20ms", "2.01s") in µs. */
export function wrkDurationUs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const scale = { us: 1, ms: 1000, s: 1e6, m: 6e7 }[m[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(m[1]) * scale;
}

let wrkScriptPath: string | undefined;
/** The Lua script wrk runs: POST this body with the gateway's content type. */
async function wrkScript(body: Buffer): Promise<string> {
  if (wrkScriptPath) return wrkScriptPath;
  const dir = await mkdtemp(join(tmpdir(), 'trellis-bench-wrk-'));
  wrkScriptPath = join(dir, 'post.lua');
  // Lua long brackets take the body verbatim; the body is printable ASCII (see run()).
  await writeFile(wrkScriptPath, `wrk.method = "POST"\nwrk.body = [==[${body.toString('latin1')}]==]\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
  return wrkScriptPath;
}

/** Drive an HTTP URL with wrk (one thread): an unmeasured warm-up run, then the measured run. */
async function wrkLoad(url: string, body: Buffer, connections: number, durationMs: number, warmupMs: number, cpu: Record<string, () => number>): Promise<Omit<Row, 'scenario' | 'round'>> {
  const script = await wrkScript(body);
  const runWrk = (ms: number) =>
    new Promise<string>((resolve, reject) => {
      execFile('wrk', ['-t1', `-c${connections}`, `-d${Math.max(1, Math.round(ms / 1000))}s`, '--latency', '-s', script, url], { timeout: ms + 30_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`wrk failed: ${stderr || err.message}`)) : resolve(stdout),
      );
    });
  if (warmupMs > 0) await runWrk(warmupMs);
  const measured = Object.fromEntries(Object.entries(cpu).filter(([k]) => k !== 'loadgen'));
  const cpuBefore = Object.fromEntries(Object.entries(measured).map(([k, read]) => [k, read()]));
  const t0 = nowUs();
  const out = await runWrk(durationMs);
  const t1 = nowUs();
  const r = parseWrk(out, (t1 - t0) / 1e6);
  const total = Math.max(1, r.requests + r.errors);
  const cpuUs = Object.fromEntries(Object.entries(measured).map(([k, read]) => [k, ((read() - cpuBefore[k]!) * 1000) / total]));
  return { connections, ...r, cpu: cpuUs, windowUs: [t0, t1] };
}

/** The numbers of one wrk --latency report. */
export function parseWrk(out: string, seconds: number): Pick<Row, 'requests' | 'errors' | 'rps' | 'p50Us' | 'p90Us' | 'p99Us' | 'maxUs'> {
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const pct = (p: string) => wrkDurationUs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  // "    Latency   812.00us  120.00us   5.00ms   90.00%": avg, stdev, max, +/- stdev.
  const latency = /^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(out);
  const ok = total - non2xx;
  return { requests: ok, errors: non2xx + socketErrors, rps: ok / seconds, p50Us: pct('50'), p90Us: pct('90'), p99Us: pct('99'), maxUs: latency ? wrkDurationUs(latency[3]!) : NaN };
}

function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // wrk --version exits 1 after printing its version; only a missing binary is ENOENT.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** Median and spread of a list (NaN when empty). */
function spread(values: number[]): { median: number; min: number; max: number } {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN };
  const mid = v.length >> 1;
  return { median: v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2, min: v[0]!, max: v.at(-1)! };
}
const showSpread = (s: { median: number; min: number; max: number }, digits = 2) =>
  `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;

/**
 * A `trellis` command as a child process (so node flags like --cpu-prof can be passed). `listening`
 * is the address from a "gateway listening" line before the ready line, if any (port 0 binds a
 * free port, and only the gateway knows which).
 */
async function trellis(args: string[], readyMsg: string, nodeArgs: string[]): Promise<Child & { ready: Record<string, unknown>; listening?: string }> {
  let listening: string | undefined;
  const child = await spawnScript(TRELLIS_BIN, args, {
    tsx: false,
    nodeArgs,
    timeoutMs: 60_000,
    ready: (line) => {
      if (line.includes('"msg":"gateway listening"')) listening = (JSON.parse(line) as { listen: string }).listen;
      return line.includes(`"msg":"${readyMsg}"`);
    },
  });
  return { ...child, ready: JSON.parse(child.readyLine) as Record<string, unknown>, listening };
}

/** Deploy echo-c on a host with weights and an HTTP route /echo, in that host's lattice. */
async function deployEcho(control: ControlClient, hostId: string, instances: number): Promise<void> {
  await deployExample(control, 'echo-c', [hostId], { actor: 'echo', count: instances });
  // Weights make every call go through the weighted pick, as in a canary setup.
  await (await openWeights(control.nc, control.subjects)).set('echo', { '1.0.0': 100 });
  await (await openHttpRoutes(control.nc, control.subjects)).add('/echo', 'echo');
}

async function waitEcho(url: string): Promise<Response> {
  return waitFor(
    async () => {
      const r = await fetch(url, { method: 'POST', body: 'ping' });
      return r.status === 200 && (await r.clone().text()) === 'ping' ? r : undefined;
    },
    { timeoutMs: 30_000, what: `${url} to echo` },
  );
}

/** Run the gateway benchmark; returns every row, the ratios and (when profiling) the profile summaries. */
export async function run(): Promise<Record<string, unknown>> {
  const durationMs = envNumber('BENCH_GATEWAY_DURATION_MS', 3000);
  const warmupMs = envNumber('BENCH_GATEWAY_WARMUP_MS', 500);
  const rounds = Math.max(1, envNumber('BENCH_GATEWAY_ROUNDS', 3));
  const driver = process.env.BENCH_GATEWAY_DRIVER ?? (hasWrk() ? 'wrk' : 'autocannon');
  if (driver !== 'wrk' && driver !== 'autocannon') throw new Error(`BENCH_GATEWAY_DRIVER: ${driver} (known: wrk, autocannon)`);
  const load = driver === 'wrk' ? wrkLoad : httpLoad;
  const instances = envNumber('BENCH_INSTANCES', 2);
  const connectionsList = (process.env.BENCH_GATEWAY_CONNECTIONS ?? '32,64').split(',').map(Number);
  const scenarios = (process.env.BENCH_GATEWAY_SCENARIOS?.split(',') ?? [...SCENARIOS]) as Scenario[];
  for (const s of scenarios) if (!SCENARIOS.includes(s)) throw new Error(`BENCH_GATEWAY_SCENARIOS: unknown ${s} (known: ${SCENARIOS.join(', ')})`);
  const profileDir = process.env.BENCH_PROFILE_DIR;
  // Extra node flags for the gateway and host processes, e.g. `--require ./patch.cjs` to try a
  // change to a dependency without editing it.
  const extraNodeArgs = process.env.BENCH_GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const profArgs = async (name: string) => {
    if (!profileDir) return extraNodeArgs;
    const dir = join(profileDir, name);
    await mkdir(dir, { recursive: true });
    return [...extraNodeArgs, '--cpu-prof', `--cpu-prof-dir=${dir}`];
  };
  const want = (s: Scenario) => scenarios.includes(s);
  // Printable ASCII so that wrk's Lua script carries it verbatim; random so no cache can help.
  const payload = Buffer.from(Array.from({ length: PAYLOAD_BYTES }, () => 0x41 + Math.floor(Math.random() * 26)));

  await using nats = await startNats();
  const natsCpu = () => processCpuMs(nats.process.pid!);
  const latticeA = uniqueLattice('gwa');
  const latticeB = uniqueLattice('gwb');
  // Disposed in reverse order at the end (or on failure), before the profiles are read.
  const owned: AsyncDisposable[] = [];
  const stack = {
    use<T extends AsyncDisposable>(d: T): T {
      owned.push(d);
      return d;
    },
    async disposeAsync(): Promise<void> {
      while (owned.length > 0) await Promise.resolve(owned.pop()![Symbol.asyncDispose]()).catch(() => {});
    },
  };
  try {
    const cpuOf = (c: Child) => () => processCpuMs(c.process.pid!);
    const urls: Partial<Record<Scenario, string>> = {};
    const cpus: Partial<Record<Scenario, Record<string, () => number>>> = {};
    const pids: Record<string, number> = {};

    // (a) a host process and a gateway process in lattice A.
    if (want('a')) {
      const host = stack.use(await trellis(['host', '--nats', nats.url, '--lattice', latticeA, '--name', 'bench-gw-host', '--log-level', 'info', '--http-port', '0'], 'host started', await profArgs('host-a')));
      const gateway = stack.use(await trellis(['gateway', '--nats', nats.url, '--lattice', latticeA, '--listen', '127.0.0.1:0', '--log-level', 'info'], 'gateway ready', await profArgs('gateway-a')));
      const control = stack.use(await connectControl({ nats: nats.url, lattice: latticeA, timeoutMs: 60_000 }));
      await deployEcho(control, host.ready.hostId as string, instances);
      urls.a = `${gateway.ready.url as string}/echo`;
      const probe = await waitEcho(urls.a);
      if (probe.headers.get('x-trellis-host') !== host.ready.hostId) throw new Error('(a) was not answered by the host process');
      cpus.a = { loadgen: selfCpuMs, gateway: cpuOf(gateway), host: cpuOf(host), nats: natsCpu };
      pids['gateway-a'] = gateway.process.pid!;
      pids['host-a'] = host.process.pid!;
    }
    // (b) a host with the gateway inside, in lattice B (so (a) never reaches its instances).
    if (want('b')) {
      const host = stack.use(
        await trellis(['host', '--nats', nats.url, '--lattice', latticeB, '--name', 'bench-gw-local', '--log-level', 'info', '--http-port', '0', '--gateway', '127.0.0.1:0'], 'host started', await profArgs('host-b')),
      );
      if (!host.listening) throw new Error('(b) host logged no "gateway listening" line');
      const control = stack.use(await connectControl({ nats: nats.url, lattice: latticeB, timeoutMs: 60_000 }));
      await deployEcho(control, host.ready.hostId as string, instances);
      urls.b = `http://${host.listening}/echo`;
      const probe = await waitEcho(urls.b);
      if (probe.headers.get('x-trellis-host') !== host.ready.hostId) throw new Error('(b) was not answered by its own host');
      cpus.b = { loadgen: selfCpuMs, host: cpuOf(host), nats: natsCpu };
      pids['host-b'] = host.process.pid!;
    }
    // (c) a plain echo responder process.
    const subject = `bench.gw.raw.${latticeA}`;
    let raw: Child | undefined;
    if (want('c') || want('a0')) {
      raw = stack.use(await spawnScript(fileURLToPath(new URL('./raw-responder.ts', import.meta.url)), [nats.url, subject, 'echo']));
      cpus.c = { loadgen: selfCpuMs, responder: cpuOf(raw), nats: natsCpu };
    }
    if (want('a0')) {
      const proxy = stack.use(await spawnScript(fileURLToPath(import.meta.url), ['serve-proxy', nats.url, subject], { ready: (l) => l.startsWith('ready ') }));
      urls.a0 = `http://127.0.0.1:${proxy.readyLine.trim().split(' ')[1]}/echo`;
      await waitEcho(urls.a0);
      cpus.a0 = { loadgen: selfCpuMs, proxy: cpuOf(proxy), responder: cpuOf(raw!), nats: natsCpu };
    }
    // (d) node:http with the actor runtime, and (d') with the component called directly.
    for (const mode of ['d', 'd-direct'] as const) {
      if (!want(mode)) continue;
      const child = stack.use(await spawnScript(fileURLToPath(import.meta.url), ['serve-wasm', mode === 'd' ? 'runtime' : 'direct', String(instances)], { ready: (l) => l.startsWith('ready '), timeoutMs: 120_000 }));
      urls[mode] = `http://127.0.0.1:${child.readyLine.trim().split(' ')[1]}/echo`;
      await waitEcho(urls[mode]!);
      cpus[mode] = { loadgen: selfCpuMs, server: cpuOf(child) };
    }
    const control = stack.use(await connectControl({ nats: nats.url, lattice: latticeA, timeoutMs: 60_000 }));
    const nc = control.nc;
    if (raw) {
      const echoed = await nc.request(subject, payload, { timeout: 5000 });
      if (Buffer.compare(Buffer.from(echoed.data), payload) !== 0) throw new Error('(c) did not echo');
    }

    // One longer warm-up of every path first: the first measured run must not pay for the JIT.
    for (const scenario of scenarios) {
      if (scenario === 'c') await measure(() => nc.request(subject, payload, { timeout: 5000 }), { concurrency: 32, durationMs: 0, warmupMs: 2 * warmupMs });
      else await load(urls[scenario]!, payload, 32, 2 * warmupMs, 0, {});
    }
    const rows: Row[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const connections of connectionsList) {
        // Interleaved, the order rotating each round, so drift (other work on the machine) and
        // position hit every scenario alike.
        const shift = (round - 1) % scenarios.length;
        for (const scenario of [...scenarios.slice(shift), ...scenarios.slice(0, shift)]) {
          let r: Omit<Row, 'scenario' | 'round'>;
          if (scenario === 'c') {
            const t0 = nowUs();
            const s = await measure(() => nc.request(subject, payload, { timeout: 5000 }), { concurrency: connections, durationMs, warmupMs, cpu: cpus.c });
            r = { connections, requests: s.requests, errors: s.errors, rps: s.rps, p50Us: s.p50Us, p90Us: s.p90Us, p99Us: s.p99Us, maxUs: s.maxUs, cpu: s.cpuUsPerRequest ?? {}, windowUs: [t0 + warmupMs * 1000, nowUs()] };
          } else {
            r = await load(urls[scenario]!, payload, connections, durationMs, warmupMs, cpus[scenario]!);
          }
          rows.push({ scenario, round, ...r });
          process.stderr.write(`  gateway r${round} ${DESCRIPTION[scenario].padEnd(40)} x${connections}  ${Math.round(r.rps)} req/s  p50 ${Math.round(r.p50Us)} µs  p99 ${Math.round(r.p99Us)} µs${r.errors ? `  errors ${r.errors}` : ''}\n`);
        }
      }
    }

    const of = (sc: Scenario, c: number) => rows.filter((r) => r.scenario === sc && r.connections === c);
    const summary = scenarios.flatMap((sc) =>
      connectionsList.map((c) => {
        const rs = of(sc, c);
        const cpuKeys = [...new Set(rs.flatMap((r) => Object.keys(r.cpu)))];
        return {
          scenario: sc,
          connections: c,
          rps: spread(rs.map((r) => r.rps)),
          p50Us: spread(rs.map((r) => r.p50Us)).median,
          p99Us: spread(rs.map((r) => r.p99Us)).median,
          maxUs: Math.max(...rs.map((r) => r.maxUs)),
          errors: rs.reduce((n, r) => n + r.errors, 0),
          cpu: Object.fromEntries(cpuKeys.map((k) => [k, spread(rs.map((r) => r.cpu[k] ?? NaN)).median])),
        };
      }),
    );
    // A ratio is taken within each round (both windows saw the same machine), then summarized.
    const ratioOf = (x: Scenario, y: Scenario, c: number) => {
      const per = [];
      for (let round = 1; round <= rounds; round++) {
        const a = rows.find((r) => r.scenario === x && r.connections === c && r.round === round);
        const b = rows.find((r) => r.scenario === y && r.connections === c && r.round === round);
        if (a && b) per.push(a.rps / b.rps);
      }
      return per.length ? spread(per) : undefined;
    };
    const ratios: Record<string, string | number>[] = [];
    const ratioValues: Record<string, number>[] = [];
    const pairs: [string, Scenario, Scenario][] = [
      ['(a)/(c) target ≥ 0.6', 'a', 'c'],
      ['(a0)/(c)', 'a0', 'c'],
      ['(a)/(a0)', 'a', 'a0'],
      ['(b)/(d) target ≥ 0.4', 'b', 'd'],
      ["(b)/(d')", 'b', 'd-direct'],
      ['(a)/(b)', 'a', 'b'],
    ];
    for (const c of connectionsList) {
      const row: Record<string, string | number> = { connections: c };
      const values: Record<string, number> = { connections: c };
      for (const [name, x, y] of pairs) {
        const r = ratioOf(x, y, c);
        if (!r) continue;
        row[name] = showSpread(r);
        values[name] = r.median;
      }
      for (const sc of ['a', 'b'] as const) {
        const p99 = summary.find((r) => r.scenario === sc && r.connections === c)?.p99Us;
        if (p99 !== undefined) row[`(${sc}) p99 ms (< 10 at 32)`] = values[`(${sc}) p99 ms`] = p99 / 1000;
      }
      ratios.push(row);
      ratioValues.push(values);
    }

    const loadAvg = os.loadavg()[0]!;
    console.log(`\nHTTP gateway: echo-c (${PAYLOAD_BYTES} B POST) through each path; ${instances} instances; ${rounds} interleaved rounds of ${durationMs / 1000} s per run after ${warmupMs / 1000} s warm-up; HTTP driven by ${driver}`);
    console.log(`(${os.availableParallelism()} CPUs; 1-minute load average at the end ${loadAvg.toFixed(1)}: above the CPU count, other work shares the cores and req/s drops for all rows)`);
    console.log(table(summary.map((r) => ({
      scenario: DESCRIPTION[r.scenario],
      conns: r.connections,
      'req/s median (min–max)': showSpread(r.rps, 0),
      'p50 ms': r.p50Us / 1000,
      'p99 ms': r.p99Us / 1000,
      'max ms': r.maxUs / 1000,
      errors: r.errors,
      'CPU µs/req by process (median)': Object.entries(r.cpu).map(([k, v]) => `${k} ${fmt(v)}`).join(', '),
    }))));
    console.log(`(c) is driven by lib.measure over nc.request, the HTTP rows by ${driver}; loadgen = this process${driver === 'wrk' ? ' (wrk\'s own CPU is not counted)' : ''}.`);
    console.log('\nRatios: median of the per-round ratios (min–max)');
    console.log(table(ratios));

    // Every child must exit (SIGINT) before its --cpu-prof file exists.
    await stack.disposeAsync();
    let profiles: Record<string, ProfileSummary> | undefined;
    if (profileDir) {
      profiles = {};
      const windows: Record<string, [number, number][]> = {
        'gateway-a': rows.filter((r) => r.scenario === 'a').map((r) => r.windowUs),
        'host-a': rows.filter((r) => r.scenario === 'a').map((r) => r.windowUs),
        'host-b': rows.filter((r) => r.scenario === 'b').map((r) => r.windowUs),
      };
      for (const [name, w] of Object.entries(windows)) {
        if (w.length === 0) continue;
        const dir = join(profileDir, name);
        const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile')).sort();
        for (const file of files) {
          const summary = summariseProfile(JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile, w);
          if (summary.sampledMs < 50 || summary.busyPct < 1) continue; // an idle thread
          const key = `${name}/${file}`;
          profiles[key] = summary;
          console.log(`\nProfile ${key}: ${fmt(summary.sampledMs)} ms sampled in the measured windows (${summary.busyPct.toFixed(1)}% not idle)`);
          console.log('by area (self time, % of non-idle):');
          console.log(table(summary.areas.slice(0, 14).map((a) => ({ area: a.name, '%': a.pct }))));
          console.log('top functions (self time, % of non-idle):');
          console.log(table(summary.top.slice(0, 25).map((f) => ({ function: f.name, where: f.where, '%': f.pct }))));
        }
      }
    }
    return { config: { durationMs, warmupMs, rounds, driver, instances, payloadBytes: PAYLOAD_BYTES, connections: connectionsList, scenarios, profiled: Boolean(profileDir), loadAvg }, rows, summary, ratios: ratioValues, profiles };
  } finally {
    await stack.disposeAsync();
  }
}

// ---------------------------------------------------------------------------------------------
// Profile summary: self time per function and per area, only in the given windows.

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}
interface ProfileSummary {
  sampledMs: number;
  busyPct: number;
  areas: { name: string; pct: number }[];
  top: { name: string; where: string; pct: number }[];
}

/** Which part of the stack a frame belongs to, by its script URL. */
function areaOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : `native ${fn || '(anonymous)'}`;
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const repo = /\/work\/[^/]+\/(.*)$/.exec(url.replace(/^file:\/\//, ''));
  if (repo) return repo[1]!;
  if (url.includes('component.js')) return 'jco component.js (guest glue)';
  if (url.includes('trellis-actor-worker')) return 'actor worker script';
  return url.replace(/^file:\/\//, '');
}

function summariseProfile(profile: CpuProfile, windows: [number, number][]): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (!windows.some(([a, b]) => t >= a && t <= b)) continue;
    const id = profile.samples[i]!;
    // A sample's time is the gap to the next one.
    const dt = profile.timeDeltas[i + 1] ?? delta;
    total += dt;
    const fn = byId.get(id)?.callFrame.functionName;
    if (fn === '(idle)') idle += dt;
    else selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  const busy = Math.max(1, total - idle);
  const fns = new Map<string, { name: string; where: string; us: number }>();
  const areas = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    // tsx-compiled sources report line 0: the file is enough there.
    const where = url ? (lineNumber > 0 ? `${area}:${lineNumber + 1}` : area) : '';
    const key = `${functionName}@${where}`;
    const f = fns.get(key) ?? { name: functionName || '(anonymous)', where, us: 0 };
    f.us += us;
    fns.set(key, f);
  }
  return {
    sampledMs: total / 1000,
    busyPct: (busy / Math.max(1, total)) * 100,
    areas: [...areas].map(([name, us]) => ({ name, pct: (us / busy) * 100 })).sort((x, y) => y.pct - x.pct),
    top: [...fns.values()].map((f) => ({ name: f.name, where: f.where, pct: (f.us / busy) * 100 })).sort((x, y) => y.pct - x.pct),
  };
}

// ---------------------------------------------------------------------------------------------
// Child role: a plain node:http server answering with echo-c, via the runtime or directly.

/**
 * Serve `handle` on a free local port, print `ready <port>` for the parent, and on SIGINT or
 * SIGTERM close the server, run `cleanup` and exit.
 */
async function serveUntilSignalled(handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>, cleanup: () => Promise<void>): Promise<void> {
  const server = http.createServer((req, res) => void handle(req, res));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  console.log(`ready ${(server.address() as AddressInfo).port}`);
  const stop = async () => {
    server.closeAllConnections();
    server.close();
    await cleanup();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/** The direct variant: transpiled echo-c instantiated on this thread, its handler called synchronously. */
async function directInvoker(cacheDir: string): Promise<(req: ActorRequest) => ActorResponse> {
  const { ComponentCache } = await import('../../host/runtime/compile.ts');
  const { wasiImports } = await import('../../host/runtime/wasi/index.ts');
  const { Wasm } = await import('../../host/runtime/wasm-api.ts');
  const { DEFAULT_POLICY } = await import('../../host/runtime/index.ts');
  const cache = new ComponentCache(cacheDir);
  const { component } = await cache.transpiled(await readFile(exampleActor('echo-c')));
  const modules = await cache.compiled(component, DEFAULT_POLICY.maxMemoryPages);
  const table = wasiImports({ actor: 'echo', env: [], allowedEnvVars: [], allowedHosts: [], dirs: [] }, {
    violation: () => {},
    output: () => {},
    httpSend: () => {
      throw new Error('no outbound http');
    },
  }) as Record<string, unknown>;
  const imports = new Proxy({} as Record<string, unknown>, {
    get: (_, key) => (typeof key === 'string' ? (table[key.replace(/@[^@]*$/, '')] ?? {}) : undefined),
  });
  const generated = (await import(component.jsUrl)) as {
    instantiate: (get: (name: string) => unknown, imports: unknown, core: (m: unknown, i: Record<string, unknown>) => unknown) => Record<string, { handle: (r: ActorRequest) => ActorResponse }>;
  };
  const exports = generated.instantiate(
    (name) => modules.get(name),
    imports,
    (m, i) => new Wasm.Instance(m as never, i),
  );
  const key = Object.keys(exports).find((k) => k.startsWith('trellis:actor/handler@')) ?? 'handler';
  const handler = exports[key]!;
  return (req) => handler.handle(req);
}

/** The (a0) floor: HTTP in, one plain NATS request to the echo responder, its payload out. */
async function serveProxy(url: string, subject: string): Promise<void> {
  const { connect } = await import('nats');
  const nc = await connect({ servers: url, name: 'bench-http-proxy' });
  await serveUntilSignalled(
    async (req, res) => {
      try {
        const msg = await nc.request(subject, await readBody(req), { timeout: 5000 });
        res.writeHead(200, ['content-length', String(msg.data.length)]);
        res.end(msg.data);
      } catch (err) {
        res.writeHead(502).end(String(err));
      }
    },
    () => nc.close(),
  );
}

async function serveWasm(mode: string, instances: number): Promise<void> {
  const cacheDir = await mkdtemp(join(tmpdir(), 'trellis-bench-gw-'));
  let invoke: (req: ActorRequest) => Promise<ActorResponse> | ActorResponse;
  let closeRuntime = async () => {};
  if (mode === 'runtime') {
    const { createRuntime } = await import('../../host/runtime/index.ts');
    const runtime = await createRuntime({ cacheDir });
    await runtime.load({ name: 'echo', path: exampleActor('echo-c'), policy: { minInstances: instances, maxConcurrency: instances } });
    invoke = (req) => runtime.invoke('echo', req);
    closeRuntime = () => runtime.close();
  } else {
    invoke = await directInvoker(cacheDir);
  }
  await serveUntilSignalled(
    async (req, res) => {
      try {
        writeActorResponse(res, await invoke(toActorRequest(req, await readBody(req))));
      } catch (err) {
        res.writeHead(500).end(String(err));
      }
    },
    async () => {
      await closeRuntime();
      await rm(cacheDir, { recursive: true, force: true });
    },
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === 'serve-wasm') {
    await serveWasm(process.argv[3] ?? 'runtime', Number(process.argv[4] ?? 2));
  } else if (process.argv[2] === 'serve-proxy') {
    await serveProxy(process.argv[3]!, process.argv[4]!);
  } else {
    // Run alone: node --import tsx test/bench/gateway.ts
    await run();
    process.exit(0);
  }
}
