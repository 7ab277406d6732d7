/**
 * Canary metrics benchmark: what the controller's side of the traffic windows costs with many
 * hosts reporting. A child process runs BENCH_CANARY_HOSTS (default 50) reporters, each on its
 * own NATS connection, publishing one window a second (an actor with a stable and a canary
 * version, latencies spread over a few buckets) as hosts do; this process runs the collector.
 *
 * Reported: the collector's CPU per second of reports received (decode + keep), and the CPU of
 * one analysed window: merging BENCH_CANARY_WINDOW_S (default 30) seconds of every host's
 * reports for the actor plus the summary (success rate, p50, p99) of both versions, as the
 * controller does once per interval. Bytes per report are measured too.
 *
 * Alone: node --import tsx test/bench/canary-metrics.ts
 * Child role (used by run()): node --import tsx test/bench/canary-metrics.ts reporters <nats-url> <lattice> <hosts>
 */
import { connect } from 'nats';
import { summarize } from '../../lattice/canary/analysis.ts';
import { collectMetrics, startMetricsReporter, toWire } from '../../lattice/metrics/index.ts';
import { startNats } from '../../lattice/nats-server/index.ts';
import { subjects as buildSubjects } from '../../lattice/subjects/index.ts';
import { encode } from '../../lattice/wire/index.ts';
import { envNumber, selfCpuMs, spawnScript, table } from './lib.ts';

/** One host's synthetic second: 200 stable and 20 canary requests, a few failures, ~1..20 ms. */
function feed(window: import('../../lattice/metrics/index.ts').WindowAccumulator): void {
  const latencies = (n: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % 20));
  window.add('svc', '1.0.0', 200, 1, latencies(200));
  window.add('svc', '1.1.0', 20, 0, latencies(20));
}

async function reporters(url: string, lattice: string, hosts: number): Promise<void> {
  const subjects = buildSubjects(lattice);
  const all = [];
  for (let i = 0; i < hosts; i++) {
    const nc = await connect({ servers: url, name: `bench-host-${i}` });
    const reporter = startMetricsReporter(nc, subjects, `host-${i}`);
    // Fed just before each publish, spread over the second like real hosts.
    setTimeout(() => {
      feed(reporter.window);
      setInterval(() => feed(reporter.window), 1000).unref();
    }, (i * 1000) / hosts);
    all.push(reporter);
  }
  console.log('ready');
  await new Promise(() => {});
}

export async function run(): Promise<Record<string, unknown>> {
  const hosts = envNumber('BENCH_CANARY_HOSTS', 50);
  const windowS = envNumber('BENCH_CANARY_WINDOW_S', 30);
  const nats = await startNats();
  const lattice = `bench${Date.now().toString(36)}`;
  const subjects = buildSubjects(lattice);
  const nc = await connect({ servers: nats.url });
  const collector = await collectMetrics(nc, subjects);
  const child = await spawnScript(new URL(import.meta.url).pathname, ['reporters', nats.url, lattice, String(hosts)], { timeoutMs: 60_000 });
  try {
    // Fill the analysed range with reports first.
    await new Promise((r) => setTimeout(r, (windowS + 2) * 1000));
    const receiveFor = 5000;
    const c0 = selfCpuMs();
    await new Promise((r) => setTimeout(r, receiveFor));
    const receiveCpuMsPerS = (selfCpuMs() - c0) / (receiveFor / 1000);

    const iterations = 50;
    const c1 = selfCpuMs();
    const w0 = performance.now();
    let requests = 0;
    for (let i = 0; i < iterations; i++) {
      const now = Date.now();
      const window = collector.window('svc', now - windowS * 1000, now);
      const stable = summarize(window['1.0.0']!);
      const canary = summarize(window['1.1.0']!);
      requests = stable.requests + canary.requests;
    }
    const analyseCpuMs = (selfCpuMs() - c1) / iterations;
    const analyseWallMs = (performance.now() - w0) / iterations;
    const sample = new (await import('../../lattice/metrics/index.ts')).WindowAccumulator();
    feed(sample);
    const reportBytes = encode(toWire(sample.take('host-0')!)).length;
    const participants = collector.participants(Date.now() - 3000).length;
    const rows = [
      { measure: 'hosts reporting (last 3 s)', value: participants },
      { measure: 'bytes per report (2 versions)', value: reportBytes },
      { measure: 'collector CPU ms per second of reports', value: receiveCpuMsPerS.toFixed(2) },
      { measure: `CPU ms per analysed window (${windowS} s, merge + 2 summaries)`, value: analyseCpuMs.toFixed(3) },
      { measure: 'wall ms per analysed window', value: analyseWallMs.toFixed(3) },
      { measure: 'requests in the analysed window', value: requests },
    ];
    console.log(`\nCanary metrics: ${hosts} hosts reporting once a second, one collector\n${table(rows)}`);
    return { hosts, windowS, participants, reportBytes, receiveCpuMsPerS, analyseCpuMs, analyseWallMs, requests, rejected: collector.rejected };
  } finally {
    await child[Symbol.asyncDispose]();
    collector.close();
    await nc.close();
    await nats.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === 'reporters') await reporters(process.argv[3]!, process.argv[4]!, Number(process.argv[5]));
  else {
    await run();
    process.exit(0);
  }
}
