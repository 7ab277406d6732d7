/**
 * Placement planner benchmark: the pure `plan` of lattice/placement on a large lattice, with no
 * NATS and no processes. Goal (issue 10): 10,000 instances over 1,000 hosts in < 50 ms.
 *
 * Scenarios, each planned from the same 1,000 hosts labelled cloud × region (a tenth of them
 * with hand-started load, which the planner must count and leave alone):
 *   fresh       100 apps × 100 replicas, spread by cloud 50/30/20 (some narrowed to a region),
 *               on an empty lattice: 10,000 instances placed
 *   steady      the same apps on the lattice the fresh plan produced: every instance kept, no
 *               action (what the reconciler pays every round)
 *   hosts-lost  the steady lattice less 10 hosts: their instances re-placed
 *   rolling     every app at a new version: 10,000 new instances surge next to the old
 *   one-actor   one app with 10,000 replicas over every host
 *   one-join    that app placed, then 1,000 more hosts join: about 5,000 instances move (each
 *               move is a start now and a stop once it runs)
 *
 * Each scenario runs BENCH_PLACEMENT_RUNS times (default 15) after 11 unmeasured runs; the
 * median and worst wall time and the median CPU time are printed against the goal (met when
 * the wall median is under it).
 *
 * Alone: node --import tsx test/bench/placement.ts
 */
import { fileURLToPath } from 'node:url';
import { applyPlan, plan, type PlacementHost, type PlanInput } from '../../lattice/placement/index.ts';
import type { AppActorSpec, AppRevision } from '../../lattice/wire/apps.ts';
import { envNumber, selfCpuMs, table } from './lib.ts';

const GOAL_MS = 50;
const WARMUP_RUNS = 10;
const HOSTS = 1000;
const APPS = 100;
const REPLICAS = 100;
const CLOUDS = ['aws', 'gcp', 'azure'];
const REGIONS = ['eu', 'us', 'asia'];

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

function lattice(): PlacementHost[] {
  return Array.from({ length: HOSTS }, (_, i) => ({
    id: `host-${String(i).padStart(4, '0')}`,
    name: `host-${i}`,
    labels: { cloud: CLOUDS[i % 3]!, region: REGIONS[Math.floor(i / 3) % 3]!, zone: `z${i % 7}` },
    actors: i % 10 === 0 ? [{ name: 'manual', version: '1.0.0', digest: digest(999_999), instances: 1 + (i % 5) }] : [],
    providers: [],
  }));
}

function actorSpec(name: string, replicas: number, version: string, n: number, narrow: boolean): AppActorSpec {
  return {
    name,
    version,
    digest: digest(n),
    replicas,
    spread: [
      { name: 'aws', requirements: narrow ? { cloud: 'aws', region: 'eu' } : { cloud: 'aws' }, weight: 50 },
      { name: 'gcp', requirements: { cloud: 'gcp' }, weight: 30 },
      { name: 'azure', requirements: { cloud: 'azure' }, weight: 20 },
    ],
    policy: { maxMemoryPages: 64 },
    links: [],
    routes: [],
  };
}

function apps(version: string, revision: number): AppRevision[] {
  return Array.from({ length: APPS }, (_, i) => ({
    name: `app-${String(i).padStart(3, '0')}`,
    revision,
    specHash: `h${revision}`,
    createdAt: '2026-01-01T00:00:00.000Z',
    spec: { name: `app-${i}`, actors: [actorSpec(`actor-${i}`, REPLICAS, version, i * 10 + revision, i % 4 === 0)], providers: [] },
  }));
}

interface Row {
  scenario: string;
  instances: number;
  actions: number;
  medianMs: number;
  maxMs: number;
  /** CPU time (all threads of this process) per plan: the stable figure on a busy machine. */
  cpuMedianMs: number;
}

function measure(scenario: string, input: PlanInput, runs: number): Row {
  // Unmeasured runs first: the reconciler plans every second, so the planner runs JIT-compiled.
  let last = plan(input);
  for (let i = 0; i < WARMUP_RUNS; i++) last = plan(input);
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = selfCpuMs();
    const t0 = performance.now();
    last = plan(input);
    times.push(performance.now() - t0);
    cpu.push(selfCpuMs() - c0);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  const instances = last.targets.reduce((n, t) => n + t.count, 0);
  const mid = Math.floor(runs / 2);
  return { scenario, instances, actions: last.actions.length, medianMs: times[mid]!, maxMs: times[runs - 1]!, cpuMedianMs: cpu[mid]! };
}

export async function run(): Promise<Record<string, unknown>> {
  const runs = Math.round(envNumber('BENCH_PLACEMENT_RUNS', 15));
  const hosts = lattice();
  const v1 = apps('1.0.0', 1);
  const rows: Row[] = [];
  rows.push(measure('fresh', { apps: v1, hosts }, runs));
  const steady = applyPlan(hosts, plan({ apps: v1, hosts }));
  rows.push(measure('steady', { apps: v1, hosts: steady }, runs));
  rows.push(measure('hosts-lost', { apps: v1, hosts: steady.filter((_, i) => i % 100 !== 7) }, runs));
  rows.push(measure('rolling', { apps: apps('1.1.0', 2), hosts: steady }, runs));
  const one: AppRevision = { ...v1[1]!, spec: { ...v1[1]!.spec, actors: [{ ...actorSpec('big', 10_000, '1.0.0', 5, false), spread: [{ name: 'any', requirements: {}, weight: 1 }] }] } };
  rows.push(measure('one-actor', { apps: [one], hosts }, runs));
  const placed = applyPlan(hosts, plan({ apps: [one], hosts }));
  const joining = lattice().map((h, i) => ({ ...h, id: `host-${String(HOSTS + i).padStart(4, '0')}`, actors: [] }));
  rows.push(measure('one-join', { apps: [one], hosts: [...placed, ...joining] }, runs));
  console.log(`placement planner, ${HOSTS} hosts, median of ${runs} runs (goal < ${GOAL_MS} ms; on a busy machine wall time includes waiting for a core, CPU time does not)`);
  console.log(table(rows.map((r) => ({ ...r, goal: r.medianMs < GOAL_MS ? 'met' : 'MISSED' }))));
  return { goalMs: GOAL_MS, hosts: HOSTS, runs, scenarios: rows };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await run();
}
