/**
 * RPC over TLS: `invoke` of echo-c on a host process against plain NATS request/reply to an
 * echo process, both over TLS to the same nats-server and from the same caller connection (the
 * caller, the host and the responder all connect with --tls-ca to a tls:// URL). The figure is
 * the ratio invoke/raw at the same payload and concurrency, as in rpc.ts, now with TLS on every
 * hop; the raw row itself shows what TLS costs NATS.
 * Knobs: BENCH_DURATION_MS (per scenario, default 2000), BENCH_WARMUP_MS (500), BENCH_PAYLOADS
 * (default 64,16384), BENCH_CONCURRENCY (default 1,64), BENCH_ROUNDS (default 2, interleaved).
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connectControl } from '../../lattice/control/index.ts';
import { createRpcClient } from '../../lattice/rpc/index.ts';
import { bytesRequest } from '../../lattice/wire/index.ts';
import { deployExample, spawnHost, uniqueLattice, waitFor } from '../harness/index.ts';
import { makeTestCerts, startConfiguredNats } from '../harness/secure-nats.ts';
import { envList, envNumber, measure, spawnScript, table, type Stats } from './lib.ts';

const label = (bytes: number) => (bytes >= 1024 ? `${bytes / 1024} KB` : `${bytes} B`);

/** Run the TLS RPC benchmark; returns the rows and the invoke/raw ratios. */
export async function run(): Promise<Record<string, unknown>> {
  const durationMs = envNumber('BENCH_DURATION_MS', 2000);
  const warmupMs = envNumber('BENCH_WARMUP_MS', 500);
  const rounds = Math.round(envNumber('BENCH_ROUNDS', 2));
  const payloads = envList('BENCH_PAYLOADS', [64, 16 * 1024]);
  const concurrencies = envList('BENCH_CONCURRENCY', [1, 64]);
  const certs = await makeTestCerts();
  await using nats = await startConfiguredNats(`tls { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}" }\nmax_payload: 1MB`);
  const url = `tls://127.0.0.1:${nats.port}`;
  const lattice = uniqueLattice('benchtls');
  const subject = `bench.tls.${lattice}`;
  await using host = await spawnHost({ nats: url, lattice, name: 'bench-tls-host', extraArgs: ['--log-level', 'info', '--tls-ca', certs.ca] });
  await using echo = await spawnScript(fileURLToPath(new URL('./tls-responder.ts', import.meta.url)), [url, certs.ca, subject]);
  await using control = await connectControl({ nats: url, lattice, timeoutMs: 60_000, auth: { tlsCa: certs.ca } });
  await deployExample(control, 'echo-c', [host.id], { actor: 'echo', count: 1 });
  await using rpc = await createRpcClient(control.nc, { lattice, caller: 'bench' });
  await waitFor(() => rpc.view.liveVersions('echo').length > 0, { what: 'echo live in the caller view' });
  const nc = control.nc;

  const rows: (Stats & { mode: string; payloadBytes: number; concurrency: number })[] = [];
  for (const payloadBytes of payloads) {
    const payload = new Uint8Array(randomBytes(payloadBytes));
    const request = bytesRequest(payload);
    const calls: Record<string, () => Promise<unknown>> = {
      raw: () => nc.request(subject, payload, { timeout: 5000 }),
      invoke: () => rpc.invoke('echo', request),
    };
    for (const concurrency of concurrencies) {
      const byMode = new Map<string, Stats[]>([['raw', []], ['invoke', []]]);
      for (let round = 0; round < rounds; round++) {
        for (const [mode, call] of Object.entries(calls)) byMode.get(mode)!.push(await measure(call, { concurrency, durationMs: durationMs / rounds, warmupMs }));
      }
      for (const [mode, stats] of byMode) {
        const best = [...stats].sort((a, b) => a.p50Us - b.p50Us)[Math.floor(stats.length / 2)]!;
        rows.push({ mode, payloadBytes, concurrency, ...best });
        process.stderr.write(`  rpc-tls ${mode.padEnd(6)} ${label(payloadBytes).padStart(5)} x${String(concurrency).padEnd(2)}  ${Math.round(best.rps)} req/s  p50 ${Math.round(best.p50Us)} µs\n`);
      }
    }
  }
  const ratios = [];
  for (const payloadBytes of payloads) {
    for (const concurrency of concurrencies) {
      const find = (mode: string) => rows.find((r) => r.mode === mode && r.payloadBytes === payloadBytes && r.concurrency === concurrency)!;
      ratios.push({ payload: label(payloadBytes), inFlight: concurrency, 'rps invoke/raw (TLS)': find('invoke').rps / find('raw').rps, 'p50 invoke-raw µs (TLS)': find('invoke').p50Us - find('raw').p50Us });
    }
  }
  console.log('\nRPC over TLS: invoke of echo-c on a host process vs plain NATS request/reply, every connection TLS');
  console.log(table(rows.map((r) => ({ mode: r.mode, payload: label(r.payloadBytes), inFlight: r.concurrency, 'req/s': r.rps, 'p50 µs': r.p50Us, 'p99 µs': r.p99Us, errors: r.errors }))));
  console.log(table(ratios));
  return { config: { durationMs, warmupMs, rounds, payloads, concurrencies }, rows, ratios };
}
