/**
 * Shared helpers of the benchmarks: a closed-loop load generator with latency percentiles, a
 * child-process helper, and a plain-text table. Benchmarks report numbers; they never assert.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** Throughput and latency of one measured scenario. */
export interface Stats {
  requests: number;
  errors: number;
  seconds: number;
  /** Completed requests per second. */
  rps: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
  /** CPU time (user+system, all threads) per completed request, by process, when probed. */
  cpuUsPerRequest?: Record<string, number>;
}

/** How long and how hard to drive one scenario. */
interface LoadOptions {
  /** Requests kept in flight (closed loop: each worker awaits its request before the next). */
  concurrency: number;
  /** Measured time. */
  durationMs: number;
  /** Unmeasured time first, so JIT, pools and connections are warm. */
  warmupMs: number;
  /**
   * Cumulative CPU time (ms) of processes taking part, read before and after the measured
   * phase. CPU per request is the robust number on a busy machine, where wall-clock latency
   * mostly measures how long threads wait for a core.
   */
  cpu?: Record<string, () => number>;
}

/** A growable sample buffer (no per-sample allocation on the hot path). */
class Samples {
  private data = new Float64Array(1 << 16);
  length = 0;
  add(value: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = value;
  }
  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Drive `call` with `concurrency` requests in flight: first for `warmupMs` unmeasured, then for
 * `durationMs` recording every latency. A failed call counts as an error (and is not timed).
 */
export async function measure(call: () => Promise<unknown>, options: LoadOptions): Promise<Stats> {
  const samples = new Samples();
  let errors = 0;
  let recording = false;
  let stopAt = performance.now() + options.warmupMs;
  let firstError: unknown;
  const worker = async () => {
    while (performance.now() < stopAt) {
      const t0 = performance.now();
      try {
        await call();
        if (recording) samples.add(performance.now() - t0);
      } catch (err) {
        firstError ??= err;
        if (recording) errors++;
      }
    }
  };
  if (options.warmupMs > 0) await Promise.all(Array.from({ length: options.concurrency }, worker));
  recording = true;
  const cpuBefore = Object.fromEntries(Object.entries(options.cpu ?? {}).map(([k, read]) => [k, read()]));
  const started = performance.now();
  stopAt = started + options.durationMs;
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const cpuUsPerRequest = options.cpu
    ? Object.fromEntries(Object.entries(options.cpu).map(([k, read]) => [k, ((read() - cpuBefore[k]!) * 1000) / Math.max(1, samples.length + errors)]))
    : undefined;
  if (samples.length === 0 && firstError) throw firstError;
  const sorted = samples.sorted();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    requests: samples.length,
    errors,
    seconds,
    rps: samples.length / seconds,
    meanUs: (sum / Math.max(1, sorted.length)) * 1000,
    p50Us: percentile(sorted, 50) * 1000,
    p90Us: percentile(sorted, 90) * 1000,
    p99Us: percentile(sorted, 99) * 1000,
    maxUs: (sorted[sorted.length - 1] ?? NaN) * 1000,
    cpuUsPerRequest,
  };
}

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Cumulative CPU time (user + system, every thread) of a process in ms, from /proc (Linux);
 * NaN elsewhere. Resolution is one clock tick (10 ms), fine over seconds of load.
 */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** Cumulative CPU time of this process in ms (µs resolution). */
export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** A child process that printed its readiness line. */
export interface Child extends AsyncDisposable {
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Run a script with node (TypeScript through `--import tsx` unless `tsx: false`) and wait until a
 * stdout line satisfies `ready` (default: the line `ready`). Killed when disposed or when this
 * process exits. `nodeArgs` go to node itself, e.g. `--cpu-prof`, which NODE_OPTIONS refuses.
 */
export async function spawnScript(
  script: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; nodeArgs?: string[]; tsx?: boolean; ready?: (line: string) => boolean; timeoutMs?: number } = {},
): Promise<Child & { readyLine: string }> {
  const ready = options.ready ?? ((line: string) => line.trim() === 'ready');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...(options.tsx === false ? [] : ['--import', 'tsx']), script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const timeoutMs = options.timeoutMs ?? 30_000;
  const readyLine = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready after ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    // Keep reading (and discarding) stdout afterwards so a chatty child never blocks on a full pipe.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (ready(line)) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${script} exited before it was ready: ${stderr}`));
    });
  });
  const stop = async () => {
    process.removeListener('exit', kill);
    if (child.exitCode !== null || child.signalCode !== null) return;
    // SIGINT, not SIGKILL: a child started with --cpu-prof writes its profile on a clean exit.
    child.kill('SIGINT');
    const timer = setTimeout(kill, 5000);
    await exited;
    clearTimeout(timer);
  };
  return { process: child, readyLine, stop, [Symbol.asyncDispose]: stop };
}

/** Render rows of plain values as an aligned text table (numbers right-aligned). */
export function table(rows: Record<string, string | number>[]): string {
  if (rows.length === 0) return '(no rows)';
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: string | number | undefined) => (v === undefined ? '' : typeof v === 'number' ? fmt(v) : v);
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[], numeric: boolean[]) => values.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ');
  const numeric = columns.map((c) => rows.some((r) => typeof r[c] === 'number'));
  return [line(columns, numeric), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map((r) => line(columns.map((c) => cell(r[c])), numeric))].join('\n');
}

/** Format a number for a table: integers as is, others with sensible precision. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) || Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Read a positive number from the environment (bench knobs), or the default. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return value;
}

/** Read a comma-separated list of positive numbers from the environment, or the default. */
export function envList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const values = raw.split(',').map(Number);
  if (values.some((v) => !Number.isFinite(v) || v <= 0)) throw new Error(`${name} must be a comma-separated list of positive numbers, got ${raw}`);
  return values;
}
