/**
 * Canary controller benchmark: the real controller (lattice/canary-controller) on a real
 * nats-server, with BENCH_CANARY_HOSTS (default 50) simulated hosts in a child process, each on
 * its own connection, publishing a traffic window a second as hosts do. The host inventory the
 * controller sees is a fixed view (one host running both versions of every actor): the
 * benchmark is about analysis, not placement.
 *
 * Reported:
 * - the controller's CPU per analysed window: CPU with BENCH_CANARY_RUNS (default 10) canaries
 *   that are analysed every tick but never decide (minRequests out of reach), less the CPU of
 *   the same process with no canary, divided by the windows analysed;
 * - decision times: a healthy canary (steps 25, 50, 100; interval 1 s) from each step's start
 *   to its decision, and a canary failing 10 % from its first step to its rollback. The
 *   interval is the floor; the rest is the tick (250 ms), the reporting period (1 s) and KV.
 *
 * Alone: node --import tsx test/bench/canary-controller.ts
 */
import { connect } from 'nats';
import { CANARY_DEFAULTS } from '../../lattice/apps/canary.ts';
import { start } from '../../lattice/canary/index.ts';
import { CANARY_TICK_MS, openWriter, startCanaryController, transition, type CanaryRecord } from '../../lattice/canary-controller/index.ts';
import { createControlClient } from '../../lattice/control/index.ts';
import { createLogger } from '../../lattice/log/index.ts';
import { startMetricsReporter } from '../../lattice/metrics/index.ts';
import { startNats } from '../../lattice/nats-server/index.ts';
import type { HostView } from '../../lattice/reconciler/hosts.ts';
import { subjects as buildSubjects } from '../../lattice/subjects/index.ts';
import type { HostInventory } from '../../lattice/wire/index.ts';
import { envNumber, selfCpuMs, spawnScript, table } from './lib.ts';

const latencies = (n: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % 20));

/** The actors every simulated host reports: `w<i>` (waiting runs), `good`, `bad` (10 % failures). */
function actorsOf(runs: number): string[] {
  return [...Array.from({ length: runs }, (_, i) => `w${i}`), 'good', 'bad'];
}

async function reporters(url: string, lattice: string, hosts: number, runs: number): Promise<void> {
  const subjects = buildSubjects(lattice);
  for (let i = 0; i < hosts; i++) {
    const nc = await connect({ servers: url, name: `bench-host-${i}` });
    const reporter = startMetricsReporter(nc, subjects, `host-${i}`);
    const feed = () => {
      for (const actor of actorsOf(runs)) {
        reporter.window.add(actor, '1.0.0', 100, 0, latencies(100));
        reporter.window.add(actor, '1.1.0', 20, actor === 'bad' ? 2 : 0, latencies(20));
      }
    };
    setTimeout(() => {
      feed();
      setInterval(feed, 1000).unref();
    }, (i * 1000) / hosts);
  }
  console.log('ready');
  await new Promise(() => {});
}

function fixedView(runs: number): HostView {
  const host: HostInventory = {
    id: 'bench-host',
    name: 'bench-host',
    lattice: 'bench',
    labels: {},
    version: '0',
    startedAt: new Date().toISOString(),
    uptimeMs: 0,
    providers: [],
    actors: actorsOf(runs).flatMap((name) =>
      ['1.0.0', '1.1.0'].map((version) => ({ name, version, digest: `sha256:${'0'.repeat(64)}`, world: 'actor', instances: 1, maxConcurrency: 1, startedAt: '' })),
    ),
  };
  return { live: () => [host], heldOut: () => [], patchActor: () => {}, patchProvider: () => {}, close: () => {} };
}

export async function run(): Promise<Record<string, unknown>> {
  const hosts = envNumber('BENCH_CANARY_HOSTS', 50);
  const runs = envNumber('BENCH_CANARY_RUNS', 10);
  const measureS = envNumber('BENCH_CANARY_MEASURE_S', 6);
  const nats = await startNats();
  const lattice = `benchcc${Date.now().toString(36)}`;
  const subjects = buildSubjects(lattice);
  const nc = await connect({ servers: nats.url });
  const child = await spawnScript(new URL(import.meta.url).pathname, ['reporters', nats.url, lattice, String(hosts), String(runs)], { timeoutMs: 60_000 });
  const logger = createLogger({ component: 'bench', level: 'error' });
  // Stops of the retired and rolled-back versions would go to the fixed view's host, which does
  // not exist: promotion waits out a long grace and the failing canary is kept on rollback.
  const controller = await startCanaryController({
    nc, subjects, control: createControlClient(nc, { lattice }), view: fixedView(runs), id: 'bench', logger, fence: 1,
    isLeader: () => true, apps: () => [], onChange: () => {}, retireGraceMs: 3_600_000,
  });
  const writer = await openWriter(nc, subjects, 'bench', '/bench');
  const begin = (actor: string, spec: Partial<typeof CANARY_DEFAULTS>) =>
    transition(writer, actor, (st, now) => ({ transition: start(st, { actor, stable: '1.0.0', canary: '1.1.0', spec: { ...CANARY_DEFAULTS, ...spec } }, now), extra: {} }));
  const cpuOver = async (ms: number) => {
    const c = selfCpuMs();
    await new Promise((r) => setTimeout(r, ms));
    return selfCpuMs() - c;
  };
  try {
    await new Promise((r) => setTimeout(r, 3000));
    const idleCpuMs = await cpuOver(measureS * 1000);
    for (let i = 0; i < runs; i++) await begin(`w${i}`, { minRequests: 1_000_000_000, intervalMs: 1000, progressDeadlineMs: 3_600_000 });
    // Let every run take its first step (the canary serves in the fixed view).
    await new Promise((r) => setTimeout(r, 2000));
    const busyCpuMs = await cpuOver(measureS * 1000);
    const windows = runs * ((measureS * 1000) / CANARY_TICK_MS);
    const cpuPerWindowMs = (busyCpuMs - idleCpuMs) / windows;

    await begin('good', { steps: [25, 50, 100], intervalMs: 1000, minRequests: 100, p99Ms: 500, successRate: 0.99 });
    await begin('bad', { steps: [25, 50, 100], intervalMs: 1000, minRequests: 100, failureLimit: 1, keepCanaryOnRollback: true });
    const ended = async (actor: string) => {
      for (;;) {
        const r = (await writer.docs.get(actor))?.value as CanaryRecord | undefined;
        if (r && (r.phase === 'Promoted' || r.phase === 'RolledBack')) return r;
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    const [g, b] = await Promise.all([ended('good'), ended('bad')]);
    // Each step: from the step's start (its history entry) to the next decision.
    const at = (r: CanaryRecord) => r.history.map((h) => ({ t: Date.parse(h.at), d: h.decision }));
    const gh = at(g);
    const stepMs: number[] = [];
    for (let i = 0; i < gh.length - 1; i++) if (gh[i]!.d === 'step') stepMs.push(gh[i + 1]!.t - gh[i]!.t);
    const bh = at(b);
    const firstStep = bh.find((h) => h.d === 'step')!.t;
    const rollbackMs = bh.find((h) => h.d === 'rolled-back')!.t - firstStep;
    const rows = [
      { measure: 'hosts reporting', value: controller.collector.participants(Date.now() - 3000).length },
      { measure: 'controller CPU ms per second, no canary (collector only)', value: (idleCpuMs / measureS).toFixed(2) },
      { measure: `controller CPU ms per second, ${runs} canaries analysed every ${CANARY_TICK_MS} ms`, value: (busyCpuMs / measureS).toFixed(2) },
      { measure: 'CPU ms per analysed window (analysis + window merge, net)', value: cpuPerWindowMs.toFixed(3) },
      { measure: 'healthy canary: ms from each step start to its decision (interval 1000)', value: stepMs.join(', ') },
      { measure: 'healthy canary: phase', value: g.phase },
      { measure: 'failing canary (10 %): ms from first step to rollback (interval 1000)', value: rollbackMs },
      { measure: 'failing canary: reason', value: b.history.at(-1)!.reason.split(';')[0]!.slice(0, 40) },
    ];
    console.log(`\nCanary controller: ${hosts} hosts reporting once a second\n${table(rows)}`);
    return { hosts, runs, idleCpuMsPerS: idleCpuMs / measureS, busyCpuMsPerS: busyCpuMs / measureS, cpuPerWindowMs, stepDecisionMs: stepMs, promoted: g.phase === 'Promoted', rollbackMs, rolledBack: b.phase === 'RolledBack' };
  } finally {
    await controller.close();
    await child[Symbol.asyncDispose]();
    await nc.close();
    await nats.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === 'reporters') await reporters(process.argv[3]!, process.argv[4]!, Number(process.argv[5]), Number(process.argv[6]));
  else {
    await run();
    process.exit(0);
  }
}
