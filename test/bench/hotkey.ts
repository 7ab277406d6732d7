/**
 * Hot-key benchmark: increments of ONE key at 1, 16 and 200 concurrent callers, two ways:
 *   provider  keyvalue-nats increment requests straight to a provider process (the host's
 *             supervised one): the key-value layer alone, where concurrent increments of one key
 *             are coalesced into one compare-and-set per batch
 *   actor     rpc.invoke of the counter actor (POST ?key=hot) on two host processes with two
 *             instances each, its key-value link to that provider: the whole path an HTTP
 *             increment takes behind the gateway
 * Each row checks that the answers were distinct (none counted twice) and none was lost.
 *
 * Knobs (environment): BENCH_HOTKEY_DURATION_MS (per row, default 3000), BENCH_WARMUP_MS (700),
 * BENCH_HOTKEY_CONCURRENCY (default 1,16,200), BENCH_HOTKEY_PATHS (default provider,actor),
 * BENCH_DEADLINE_MS (per call, default 10000), BENCH_PROFILE_DIR (run the hosts with --cpu-prof there).
 * Alone: node --import tsx test/bench/hotkey.ts
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectControl } from '../../lattice/control/index.ts';
import { openLinks } from '../../lattice/links/index.ts';
import { createRpcClient } from '../../lattice/rpc/index.ts';
import { decode, encode, type ProviderReply, type ProviderRequest } from '../../lattice/wire/index.ts';
import { deployExample, spawnHost, startNats, TRELLIS_BIN, uniqueLattice, waitFor } from '../harness/index.ts';
import { envList, envNumber, measure, processCpuMs, selfCpuMs, spawnScript, table, type Stats } from './lib.ts';

const CONCURRENCY = envList('BENCH_HOTKEY_CONCURRENCY', [1, 16, 200]);
const PATHS = (process.env.BENCH_HOTKEY_PATHS?.split(',') ?? ['provider', 'actor']).filter((p): p is 'provider' | 'actor' => p === 'provider' || p === 'actor');

/** Run the hot-key benchmark; returns its rows. */
export async function run(): Promise<Record<string, unknown>> {
  const durationMs = envNumber('BENCH_HOTKEY_DURATION_MS', 3000);
  const warmupMs = envNumber('BENCH_WARMUP_MS', 700);
  const deadlineMs = envNumber('BENCH_DEADLINE_MS', 10_000);
  const lattice = uniqueLattice('hotkey');
  await using nats = await startNats();
  const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-bench-state-')) };
  const profileDir = process.env.BENCH_PROFILE_DIR;
  // As every test starts hosts (spawnHost); when profiling, the same command with --cpu-prof,
  // which node accepts only on its command line.
  const hosts = await Promise.all(
    [0, 1].map(async (i) => {
      const args = ['host', '--nats', nats.url, '--lattice', lattice, '--name', `hot-${i}`, '--log-level', 'info'];
      if (!profileDir) return spawnHost({ nats: nats.url, lattice, env, name: `hot-${i}`, extraArgs: ['--log-level', 'info'] });
      const child = await spawnScript(TRELLIS_BIN, args, { env, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`], tsx: false, ready: (line) => line.includes('"host started"') });
      return { id: (JSON.parse(child.readyLine) as { hostId: string }).hostId, process: child.process, [Symbol.asyncDispose]: child.stop };
    }),
  );
  try {
    await using control = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    await control.startProvider(hosts[0]!.id, { provider: 'keyvalue-nats' });
    await deployExample(control, 'counter', hosts, { actor: 'counter', version: '1.0.0', count: 2 });
    const bucket = `hot-${lattice}`;
    await (await openLinks(control.nc, control.subjects)).put('counter', 'keyvalue-nats', { bucket });
    await using rpc = await createRpcClient(control.nc, { lattice, caller: 'bench', deadlineMs });
    await waitFor(() => rpc.view.liveVersions('counter').length === 1, { what: 'counter live in the caller view' });
    const post = (key: string) => ({ method: 'POST', path: '/', query: `key=${key}`, headers: [] as [string, string][], body: new Uint8Array() });
    await waitFor(async () => (await rpc.invoke('counter', post('warm'))).response.status === 200, { timeoutMs: 30_000, what: 'counter answers' });

    const nc = control.nc;
    const providerSubject = control.subjects.provider('keyvalue-nats');
    const cpu = { caller: selfCpuMs, hosts: () => hosts.reduce((n, h) => n + processCpuMs(h.process.pid!), 0), nats: () => processCpuMs(nats.process.pid!) };
    const rows: (Stats & { path: string; concurrency: number; distinct: boolean })[] = [];
    let keyNo = 0;
    for (const concurrency of CONCURRENCY) {
      for (const pathName of PATHS) {
        const key = `hot${keyNo++}`;
        const seen: bigint[] = [];
        const call =
          pathName === 'provider'
            ? async () => {
                const request: ProviderRequest = { actor: 'counter', version: '1.0.0', op: 'increment', config: { bucket }, args: [key, '1'], invocation: { id: randomUUID(), seq: 1 } };
                const reply = decode<ProviderReply>((await nc.request(providerSubject, encode(request), { timeout: deadlineMs })).data);
                if (!reply.ok) throw new Error(reply.error.message);
                seen.push(BigInt(reply.value as string));
              }
            : async () => {
                const r = await rpc.invoke('counter', post(key));
                if (r.response.status !== 200) throw new Error(`status ${r.response.status}`);
                seen.push(BigInt(new TextDecoder().decode(r.response.body)));
              };
        const stats = await measure(call, { concurrency, durationMs, warmupMs, cpu });
        // Every answer distinct and, with the warm-up's, exactly 1..n: none twice, none lost.
        const sorted = [...seen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const distinct = sorted.every((v, i) => v === BigInt(i + 1));
        rows.push({ path: pathName, concurrency, distinct, ...stats });
        process.stderr.write(`  hotkey ${pathName.padEnd(8)} x${String(concurrency).padEnd(3)}  ${Math.round(stats.rps)} increments/s  p50 ${Math.round(stats.p50Us / 1000)} ms  p99 ${Math.round(stats.p99Us / 1000)} ms${stats.errors ? `  errors ${stats.errors}` : ''}${distinct ? '' : '  ANSWERS NOT 1..n'}\n`);
      }
    }
    console.log('\nHot key: increments of one key (provider alone, and the counter actor through rpc.invoke on 2 hosts x 2 instances)');
    console.log(table(rows.map((r) => ({
      path: r.path,
      callers: r.concurrency,
      'increments/s': r.rps,
      'p50 ms': r.p50Us / 1000,
      'p99 ms': r.p99Us / 1000,
      'caller CPU µs/inc': r.cpuUsPerRequest!.caller!,
      'hosts CPU µs/inc': r.cpuUsPerRequest!.hosts!,
      'nats CPU µs/inc': r.cpuUsPerRequest!.nats!,
      errors: r.errors,
      'answers 1..n': r.distinct ? 'yes' : 'NO',
    }))));
    console.log('(hosts CPU: the two host processes, threads included; the provider process they supervise is not counted)');
    return { config: { durationMs, warmupMs, concurrency: CONCURRENCY }, rows };
  } finally {
    await Promise.all(hosts.map((h) => h[Symbol.asyncDispose]()));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // Run alone: node --import tsx test/bench/hotkey.ts
  await run();
  process.exit(0);
}
