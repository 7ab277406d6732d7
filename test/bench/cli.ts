/**
 * CLI start-up: how long a `trellis` command takes from exec to exit, from the compiled dist/
 * (what users run) and, for comparison, from the TypeScript sources through tsx (what every start
 * cost before dist/ existed). `node -e 0` is measured in the same rounds as the baseline, and all
 * commands are interleaved round by round, so a busy machine slows every row alike; the "over
 * node" column is the median minus the baseline's median. CPU time per run (user + system, read
 * from this process's reaped-children counters on Linux) is the figure least moved by that load:
 * it counts what the command costs, not how long it waited for a core.
 *
 * `get hosts` runs against a lattice of real hosts, each its own `trellis host` process.
 *
 * Env: BENCH_CLI_RUNS (default 15), BENCH_CLI_SOURCE_RUNS (default 5), BENCH_CLI_HOSTS (default 10).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { TRELLIS_BIN, spawnHost, startNats, uniqueLattice, waitFor, type HostProcess } from '../harness/index.ts';
import { table } from './lib.ts';

const BUILD_SCRIPT = fileURLToPath(new URL('../../host/cli/build-dist.mjs', import.meta.url));
const TARGETS_MS = { help: 150, getHosts: 300 } as const;

function envNumber(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
}

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time (ms) of this process's children that have exited and been reaped (Linux; NaN elsewhere). */
function reapedChildrenCpuMs(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the parenthesised command name; cutime and cstime are fields 16 and 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

interface RunResult {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node <args>` to exit; wall time from spawn to exit. */
function timeRun(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ ms: performance.now() - started, code, stdout, stderr }));
  });
}

/** Peak RSS of one run, in MB, read in the child at exit (a separate run, so timings carry no probe). */
async function peakRssMb(args: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  const probe = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\npeak-rss-kb '+process.resourceUsage().maxRSS+'\\n'))`;
  const { stderr } = await timeRun(['--import', probe, ...args], env);
  const kb = Number(/peak-rss-kb (\d+)/.exec(stderr)?.[1]);
  return Math.round(kb / 1024);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

interface Row {
  name: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  runs: number;
  target?: number;
  /** Throws when a run's output is wrong: a fast wrong answer is not a result. */
  check?: (r: RunResult) => void;
  samples: number[];
  cpuMs: number[];
}

export async function run(): Promise<Record<string, unknown>> {
  const runs = envNumber('BENCH_CLI_RUNS', 15);
  const sourceRuns = envNumber('BENCH_CLI_SOURCE_RUNS', 5);
  const hostCount = envNumber('BENCH_CLI_HOSTS', 10);

  // What users run: dist/ as the install step builds it (a no-op when it is current).
  const build = spawnSync(process.execPath, [BUILD_SCRIPT], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`building dist/ failed: ${build.stderr}`);

  await using nats = await startNats();
  const lattice = uniqueLattice('clibench');
  const hosts: HostProcess[] = [];
  try {
    hosts.push(...(await Promise.all(Array.from({ length: hostCount }, (_, i) => spawnHost({ nats: nats.url, lattice, name: `bench-${i}` })))));
    const env = { TRELLIS_NATS_URL: nats.url, TRELLIS_LATTICE: lattice };
    const allHosts = (r: RunResult) => {
      if (r.code !== 0) throw new Error(`get hosts exited ${r.code}: ${r.stderr}`);
      const n = (JSON.parse(r.stdout) as unknown[]).length;
      if (n !== hostCount) throw new Error(`get hosts listed ${n} of ${hostCount} hosts`);
    };
    const helpOk = (r: RunResult) => {
      if (r.code !== 0 || !r.stdout.includes('Usage: trellis')) throw new Error(`--help failed (${r.code}): ${r.stderr}`);
    };
    // Every host is registered and answering before anything is timed.
    await waitFor(async () => (await timeRun([TRELLIS_BIN, 'get', 'hosts', '--json'], env).then((r) => (allHosts(r), true)).catch(() => false)), {
      timeoutMs: 30_000,
      what: `${hostCount} hosts in get hosts`,
    });

    const fromSource = { TRELLIS_FROM_SOURCE: '1' };
    const rows: Row[] = [
      { name: 'node -e 0 (baseline)', args: ['-e', '0'], runs, samples: [], cpuMs: [] },
      { name: 'trellis --help', args: [TRELLIS_BIN, '--help'], runs, target: TARGETS_MS.help, check: helpOk, samples: [], cpuMs: [] },
      { name: `trellis get hosts (${hostCount} hosts)`, args: [TRELLIS_BIN, 'get', 'hosts', '--json'], env, runs, target: TARGETS_MS.getHosts, check: allHosts, samples: [], cpuMs: [] },
      { name: 'trellis --help, from sources (tsx)', args: [TRELLIS_BIN, '--help'], env: fromSource, runs: sourceRuns, check: helpOk, samples: [], cpuMs: [] },
      { name: `trellis get hosts, from sources (tsx)`, args: [TRELLIS_BIN, 'get', 'hosts', '--json'], env: { ...env, ...fromSource }, runs: sourceRuns, check: allHosts, samples: [], cpuMs: [] },
    ];
    const load = os.loadavg()[0]!;
    for (let round = 0; round < runs; round++) {
      for (const row of rows) {
        if (round >= row.runs) continue;
        const cpuBefore = reapedChildrenCpuMs();
        const result = await timeRun(row.args, row.env);
        row.cpuMs.push(reapedChildrenCpuMs() - cpuBefore);
        row.check?.(result);
        row.samples.push(result.ms);
      }
    }
    const rss = {
      help: await peakRssMb([TRELLIS_BIN, '--help']),
      getHosts: await peakRssMb([TRELLIS_BIN, 'get', 'hosts', '--json'], env),
      helpFromSource: await peakRssMb([TRELLIS_BIN, '--help'], fromSource),
      baseline: await peakRssMb(['-e', '0']),
    };
    const baseline = median(rows[0]!.samples);
    const results = rows.map((row) => {
      const ms = median(row.samples);
      // Mean, not median: each reading is whole 10 ms clock ticks, and the mean of many is finer.
      const cpuMs = row.cpuMs.reduce((a, b) => a + b, 0) / row.cpuMs.length;
      return { name: row.name, runs: row.samples.length, medianMs: ms, minMs: Math.min(...row.samples), overNodeMs: ms - baseline, cpuMs, targetMs: row.target, met: row.target === undefined ? undefined : ms < row.target };
    });
    console.log(`CLI start-up, exec to exit (median of the runs; load average ${load.toFixed(1)} on ${os.availableParallelism()} cores when it began)`);
    console.log(
      table(
        results.map((r) => ({
          command: r.name,
          runs: r.runs,
          'median ms': Math.round(r.medianMs),
          'min ms': Math.round(r.minMs),
          'over node ms': Math.round(r.overNodeMs),
          'cpu ms': Math.round(r.cpuMs),
          target: r.targetMs === undefined ? '' : `< ${r.targetMs} ms: ${r.met ? 'met' : 'MISSED'}`,
        })),
      ),
    );
    console.log(`peak RSS: --help ${rss.help} MB, get hosts ${rss.getHosts} MB, --help from sources ${rss.helpFromSource} MB, node -e 0 ${rss.baseline} MB`);
    return { loadAverage: load, hosts: hostCount, rows: results, peakRssMb: rss, targetsMs: TARGETS_MS };
  } finally {
    await Promise.all(hosts.map((h) => h[Symbol.asyncDispose]()));
  }
}
