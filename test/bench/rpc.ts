/**
 * RPC benchmark: `invoke` of the echo-c actor on a host running as a separate process, against
 * plain NATS request/reply to responders that also run in their own processes, on the same
 * nats-server, in the same run. Payloads 64 B and 16 KB, 1 and 64 requests in flight.
 *
 * Rows (modes), each a separate process answering on its own subject:
 *   raw      plain payload, no headers, echoed as is: the floor the targets compare against
 *   raw+hdr  the same carrying the five invocation headers: what the metadata costs on the
 *            wire and in nats.js, independent of Trellis code
 *   codec    invoke's exact request (msgpack ActorRequest + headers) to a responder that
 *            decodes it and answers an msgpack InvokeReply as hosts do: a host without
 *            the actor runtime
 *   runtime  codec on the main thread + echo-c in that responder's own actor runtime, one
 *            main thread → worker thread → main thread hop per call: how hosts served calls
 *            before their workers joined the queue group themselves (kept for comparison)
 *   invoke   rpc.invoke → host process, whose instance workers are the queue-group members
 *            and answer from their own NATS connections (runtime/lattice-serve.ts) → reply
 * Then the actor runtime alone in this process (no NATS): the main thread → worker → main
 * thread hop, and the guest call timed inside the worker.
 *
 * CPU per request (user + system, every thread, from /proc) is reported for the caller, the
 * answering process and nats-server: on a machine shared with other work it is the stable
 * number, where wall-clock latency mostly measures waiting for a core.
 *
 * Every path first runs BENCH_JIT_WARMUP_MS (default 4000) of load at 64 in flight, 16 KB and
 * 64 B, before anything is measured: a freshly started process spends several seconds of its
 * other threads' CPU in V8's optimizing compiler, and the host, with more code on its path
 * (nats.js, msgpack, the jco glue), would otherwise pay for its warm-up in the first scenario.
 *
 * Each scenario runs in BENCH_ROUNDS rounds (default 3), the modes interleaved within each round,
 * and every figure reported is the median over the rounds: on a shared 2-core machine one
 * stretch of interference otherwise decides a ratio.
 *
 * Knobs (environment): BENCH_DURATION_MS (per scenario, default 3000), BENCH_WARMUP_MS (700),
 * BENCH_INSTANCES (echo-c instances, default 1), BENCH_WORKERS (the host's worker threads, each
 * a queue-group member; default 1, as the raw baseline has one responder; more members on 2
 * cores share them with the caller and nats-server), BENCH_MODES
 * (comma list of the modes above),
 * BENCH_PAYLOADS (bytes, default 64,16384), BENCH_CONCURRENCY (default 1,64),
 * BENCH_RUNTIME_HOP=0 (skip the in-process runtime rows), BENCH_PROFILE_DIR (write --cpu-prof
 * profiles of the host and responders there; profile the caller by running the bench itself
 * with node --cpu-prof).
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { headers as natsHeaders, type Msg } from 'nats';
import { connectControl } from '../../lattice/control/index.ts';
import { createRpcClient, type InvokeResult } from '../../lattice/rpc/index.ts';
import { bytesRequest, decode, encode, RpcHeaders, type InvokeReply } from '../../lattice/wire/index.ts';
import { deployExample, exampleActor, spawnHost, startNats, TRELLIS_BIN, uniqueLattice, waitFor } from '../harness/index.ts';
import { envList, envNumber, measure, processCpuMs, selfCpuMs, spawnScript, table, type Stats } from './lib.ts';

const MODES = ['raw', 'raw+hdr', 'codec', 'runtime', 'invoke'] as const;
type Mode = (typeof MODES)[number];
const PAYLOADS = envList('BENCH_PAYLOADS', [64, 16 * 1024]);
const CONCURRENCY = envList('BENCH_CONCURRENCY', [1, 64]);

interface Row extends Stats {
  mode: Mode;
  payloadBytes: number;
  concurrency: number;
}

const label = (bytes: number) => (bytes >= 1024 ? `${bytes / 1024} KB` : `${bytes} B`);

/** Run the RPC benchmark; returns every measured row, the invoke/raw ratios and the runtime hop. */
export async function run(): Promise<Record<string, unknown>> {
  const durationMs = envNumber('BENCH_DURATION_MS', 3000);
  const warmupMs = envNumber('BENCH_WARMUP_MS', 700);
  const instances = envNumber('BENCH_INSTANCES', 1);
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const profileArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const lattice = uniqueLattice('bench');
  const subject = (mode: string) => `bench.${mode}.${lattice}`;
  const modes = (process.env.BENCH_MODES?.split(',') ?? MODES) as Mode[];
  for (const mode of modes) if (!MODES.includes(mode)) throw new Error(`BENCH_MODES: unknown mode ${mode} (known: ${MODES.join(', ')})`);
  const skipHop = process.env.BENCH_RUNTIME_HOP === '0';
  // The host's shared worker threads (each a queue-group member with its own connection).
  // Default 1: one member, as the raw baseline has one responder.
  const workerArgs = ['--workers', String(envNumber('BENCH_WORKERS', 1))];

  await using nats = await startNats({ maxPayload: 1024 * 1024 });
  // A host process like every other test's (spawnHost); when profiling, the same command with
  // --cpu-prof, which node accepts only on its command line.
  await using host = profileDir
    ? await (async () => {
        const child = await spawnScript(TRELLIS_BIN, ['host', '--nats', nats.url, '--lattice', lattice, '--name', 'bench-host', '--log-level', 'info', ...workerArgs], {
          nodeArgs: profileArgs,
          tsx: false,
          ready: (line) => line.includes('"host started"'),
        });
        return { id: (JSON.parse(child.readyLine) as { hostId: string }).hostId, process: child.process, [Symbol.asyncDispose]: child.stop };
      })()
    : await spawnHost({ nats: nats.url, lattice, name: 'bench-host', extraArgs: ['--log-level', 'info', ...workerArgs] });
  // One responder process per baseline layer (see raw-responder.ts).
  const responderScript = fileURLToPath(new URL('./raw-responder.ts', import.meta.url));
  await using echo = await spawnScript(responderScript, [nats.url, subject('echo'), 'echo'], { nodeArgs: profileArgs });
  await using codec = await spawnScript(responderScript, [nats.url, subject('codec'), 'codec'], { nodeArgs: profileArgs });
  await using inProcess = await spawnScript(responderScript, [nats.url, subject('runtime'), 'runtime', String(instances)], { nodeArgs: profileArgs });
  const calleePid: Record<Mode, number> = { raw: echo.process.pid!, 'raw+hdr': echo.process.pid!, codec: codec.process.pid!, runtime: inProcess.process.pid!, invoke: host.process.pid! };
  await using control = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
  await deployExample(control, 'echo-c', [host.id], { actor: 'echo', count: instances });
  await using rpc = await createRpcClient(control.nc, { lattice, caller: 'bench' });
  await waitFor(() => rpc.view.liveVersions('echo').length > 0, { what: 'echo live in the caller view' });
  const nc = control.nc;

  const jitWarmupMs = envNumber('BENCH_JIT_WARMUP_MS', 4000);
  const rounds = Math.round(envNumber('BENCH_ROUNDS', 3));
  if (jitWarmupMs > 0) {
    process.stderr.write(`  rpc warm-up: ${jitWarmupMs} ms per mode\n`);
    for (const mode of modes) {
      for (const bytes of [16 * 1024, 64]) {
        const warm = bytesRequest(new Uint8Array(randomBytes(bytes)));
        const warmEncoded = encode(warm);
        const call: Record<Mode, () => Promise<unknown>> = {
          raw: () => nc.request(subject('echo'), warm.body, { timeout: 5000 }),
          'raw+hdr': () => nc.request(subject('echo'), warm.body, { timeout: 5000, headers: natsHeaders() }),
          codec: () => nc.request(subject('codec'), warmEncoded, { timeout: 5000 }),
          runtime: () => nc.request(subject('runtime'), warmEncoded, { timeout: 5000 }),
          invoke: () => rpc.invoke('echo', warm),
        };
        await measure(call[mode], { concurrency: 64, durationMs: jitWarmupMs / 2, warmupMs: 0 });
      }
    }
  }

  const rows: Row[] = [];
  for (const payloadBytes of PAYLOADS) {
    const payload = randomBytes(payloadBytes);
    const request = bytesRequest(new Uint8Array(payload));
    // The same metadata invoke sends, built once: raw+hdr measures the wire, not header building.
    const h = natsHeaders();
    h.set(RpcHeaders.invocationId, '0b7f3c2e-6a51-4c0e-9d2a-1f4e5b6c7d8e');
    h.set(RpcHeaders.deadline, String(Date.now() + 3_600_000));
    h.set(RpcHeaders.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    h.set(RpcHeaders.caller, 'bench');
    h.set(RpcHeaders.attemptExpires, String(Date.now() + 3_600_000));
    const encoded = encode(request);
    const calls: Record<Mode, () => Promise<unknown>> = {
      raw: () => nc.request(subject('echo'), payload, { timeout: 5000 }),
      'raw+hdr': () => nc.request(subject('echo'), payload, { timeout: 5000, headers: h }),
      codec: () => nc.request(subject('codec'), encoded, { timeout: 5000, headers: h }),
      runtime: () => nc.request(subject('runtime'), encoded, { timeout: 5000, headers: h }),
      invoke: () => rpc.invoke('echo', request),
    };
    // Check once that every path really echoes.
    for (const mode of modes) {
      const r = (await calls[mode]()) as InvokeResult | Msg;
      const body = 'response' in r ? r.response.body : mode === 'raw' || mode === 'raw+hdr' ? r.data : decode<InvokeReply & { ok: true }>(r.data).response.body;
      if (Buffer.compare(Buffer.from(body), payload) !== 0) throw new Error(`${mode} did not echo the payload`);
    }
    for (const concurrency of CONCURRENCY) {
      // Interleaved in rounds, so drift (thermal, other processes) hits every mode alike; each
      // figure is the median over the rounds.
      const byMode = new Map<Mode, Stats[]>(modes.map((m) => [m, []]));
      for (let round = 0; round < rounds; round++) {
        for (const mode of modes) {
          const callee = calleePid[mode];
          const cpu = { caller: selfCpuMs, callee: () => processCpuMs(callee), nats: () => processCpuMs(nats.process.pid!) };
          byMode.get(mode)!.push(await measure(calls[mode], { concurrency, durationMs: durationMs / rounds, warmupMs: round === 0 ? warmupMs : warmupMs / 4, cpu }));
        }
      }
      for (const mode of modes) {
        const stats = medianStats(byMode.get(mode)!);
        rows.push({ mode, payloadBytes, concurrency, ...stats });
        process.stderr.write(`  rpc ${mode.padEnd(7)} ${label(payloadBytes).padStart(5)} x${String(concurrency).padEnd(2)}  ${Math.round(stats.rps)} req/s  p50 ${Math.round(stats.p50Us)} µs  p99 ${Math.round(stats.p99Us)} µs${stats.errors ? `  errors ${stats.errors}` : ''}\n`);
      }
    }
  }

  const ratios = [];
  for (const payloadBytes of PAYLOADS) {
    for (const concurrency of CONCURRENCY) {
      const find = (mode: Row['mode']) => rows.find((r) => r.mode === mode && r.payloadBytes === payloadBytes && r.concurrency === concurrency)!;
      const raw = find('raw');
      const inv = find('invoke');
      if (!raw || !inv || !find('raw+hdr')) continue;
      ratios.push({
        payload: label(payloadBytes),
        inFlight: concurrency,
        'rps invoke/raw': inv.rps / raw.rps,
        'p50 invoke-raw µs': inv.p50Us - raw.p50Us,
        'p99 invoke-raw µs': inv.p99Us - raw.p99Us,
        'p50 hdr-raw µs': find('raw+hdr').p50Us - raw.p50Us,
        'caller CPU invoke-raw µs': inv.cpuUsPerRequest!.caller! - raw.cpuUsPerRequest!.caller!,
        'callee CPU invoke-raw µs': inv.cpuUsPerRequest!.callee! - raw.cpuUsPerRequest!.callee!,
      });
    }
  }

  const hop = skipHop ? { rows: [], note: 'BENCH_RUNTIME_HOP=0' } : await runtimeHop(durationMs / 2, warmupMs / 2, instances);

  console.log('\nRPC: invoke of echo-c on a host process vs plain NATS request/reply to an echo process');
  console.log(table(rows.map((r) => ({
    mode: r.mode,
    payload: label(r.payloadBytes),
    inFlight: r.concurrency,
    'req/s': r.rps,
    'p50 µs': r.p50Us,
    'p90 µs': r.p90Us,
    'p99 µs': r.p99Us,
    'caller CPU µs/req': r.cpuUsPerRequest!.caller!,
    'callee CPU µs/req': r.cpuUsPerRequest!.callee!,
    'nats CPU µs/req': r.cpuUsPerRequest!.nats!,
    requests: r.requests,
    errors: r.errors,
  }))));
  console.log('(callee = the host process for invoke, the echo process for raw; CPU is user+system of every thread)');
  console.log('\nRatios (targets: rps invoke/raw >= 0.8 at the same concurrency; sequential p50 overhead < 50 µs)');
  console.log(table(ratios));
  if (hop.rows.length > 0) {
    console.log(`\nActor runtime alone (in-process runtime.invoke, no NATS; ${instances} instances): the worker-thread hop`);
    console.log(table(hop.rows));
    if (hop.inWorkerCallUs) console.log(`guest call inside the worker (runtime.bench warm, 64 B): p50 ${hop.inWorkerCallUs.p50.toFixed(1)} µs, p99 ${hop.inWorkerCallUs.p99.toFixed(1)} µs`);
  } else console.log(`\nActor runtime alone: skipped (${hop.note})`);

  return { config: { durationMs, warmupMs, instances, payloads: PAYLOADS, concurrency: CONCURRENCY, cpus: (await import('node:os')).availableParallelism() }, rows, ratios, runtimeHop: hop };
}

/**
 * The actor runtime on its own, in this process: runtime.invoke sequentially and with 64 in
 * flight, and the guest call timed inside the worker, so the hop (structured clone both ways,
 * worker scheduling) can be told apart from the actor's own work.
 */
async function runtimeHop(durationMs: number, warmupMs: number, instances: number): Promise<{ rows: Record<string, string | number>[]; inWorkerCallUs?: { p50: number; p99: number }; note?: string }> {
  const { createRuntime } = await import('../../host/runtime/index.ts');
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const cacheDir = await mkdtemp(join(tmpdir(), 'trellis-bench-runtime-'));
  const runtime = await createRuntime({ cacheDir });
  try {
    await runtime.load({ name: 'echo', path: exampleActor('echo-c'), policy: { minInstances: instances, maxConcurrency: instances } });
    const rows: Record<string, string | number>[] = [];
    for (const payloadBytes of PAYLOADS) {
      const request = bytesRequest(new Uint8Array(randomBytes(payloadBytes)));
      for (const concurrency of CONCURRENCY) {
        const s = await measure(() => runtime.invoke('echo', request), { concurrency, durationMs, warmupMs, cpu: { process: () => processCpuMs(process.pid) } });
        rows.push({ path: 'runtime.invoke', payload: label(payloadBytes), inFlight: concurrency, 'req/s': s.rps, 'p50 µs': s.p50Us, 'p90 µs': s.p90Us, 'p99 µs': s.p99Us, 'CPU µs/req (all threads)': s.cpuUsPerRequest!.process!, requests: s.requests });
        process.stderr.write(`  runtime.invoke ${label(payloadBytes).padStart(5)} x${String(concurrency).padEnd(2)}  ${Math.round(s.rps)} req/s  p50 ${Math.round(s.p50Us)} µs\n`);
      }
    }
    const samples = (await runtime.bench('echo', bytesRequest(new Uint8Array(64)), 20_000, 'warm')).sort((a, b) => a - b);
    const inWorkerCallUs = { p50: samples[Math.floor(samples.length * 0.5)]! * 1000, p99: samples[Math.floor(samples.length * 0.99)]! * 1000 };
    return { rows, inWorkerCallUs };
  } finally {
    await runtime.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
}

/** The median of each figure over rounds of one scenario (counts are summed). */
function medianStats(rounds: Stats[]): Stats {
  const median = (values: number[]) => {
    const s = [...values].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const of = (key: 'rps' | 'meanUs' | 'p50Us' | 'p90Us' | 'p99Us' | 'maxUs') => median(rounds.map((r) => r[key]));
  const cpuKeys = Object.keys(rounds[0]?.cpuUsPerRequest ?? {});
  return {
    requests: rounds.reduce((n, r) => n + r.requests, 0),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    seconds: rounds.reduce((n, r) => n + r.seconds, 0),
    rps: of('rps'),
    meanUs: of('meanUs'),
    p50Us: of('p50Us'),
    p90Us: of('p90Us'),
    p99Us: of('p99Us'),
    maxUs: Math.max(...rounds.map((r) => r.maxUs)),
    cpuUsPerRequest: Object.fromEntries(cpuKeys.map((k) => [k, median(rounds.map((r) => r.cpuUsPerRequest![k]!))])),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // Run alone: node --import tsx test/bench/rpc.ts
  await run();
}
