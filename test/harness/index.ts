/**
 * The test harness: real nats-server processes (from lattice/nats-server), real host processes
 * (`host/cli/trellis.js host` as child processes) with readiness waits and cleanup, and the one
 * way tests deploy an example actor (`deployExample`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ControlClient } from '../../lattice/control/index.ts';
import { openArtifacts } from '../../lattice/state/index.ts';

export * from '../../lattice/nats-server/index.ts';

/** Path of the `trellis` executable. */
export const TRELLIS_BIN = fileURLToPath(new URL('../../host/cli/trellis.js', import.meta.url));

const children = new Set<ChildProcess>();
/**
 * SIGKILL every child process the harness started that still runs. The test setup file calls it
 * after each test file, so a test that failed before disposing its hosts leaves none behind (a
 * host whose nats-server is gone would otherwise try to reconnect forever); it also runs when
 * the test process exits.
 */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
}
process.once('exit', killChildren);

/** A host running as a child process. */
export interface HostProcess extends AsyncDisposable {
  readonly id: string;
  readonly name: string;
  readonly process: ChildProcess;
  /** Parsed JSON log lines so far. */
  readonly logs: Record<string, unknown>[];
  /** Resolves with the exit code when the process ends. */
  readonly exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

/** Start `trellis host` as a child process and wait for its "host started" log line. */
export async function spawnHost(options: { nats: string; lattice: string; labels?: Record<string, string>; name?: string; heartbeatMs?: number; extraArgs?: string[]; env?: NodeJS.ProcessEnv }): Promise<HostProcess> {
  const args = ['host', '--nats', options.nats, '--lattice', options.lattice, '--log-level', 'debug'];
  for (const [k, v] of Object.entries(options.labels ?? {})) args.push('--label', `${k}=${v}`);
  if (options.name) args.push('--name', options.name);
  if (options.heartbeatMs) args.push('--heartbeat-ms', String(options.heartbeatMs));
  args.push(...(options.extraArgs ?? []));
  const started = await spawnTrellis(args, 'host started', options.env);
  return {
    ...started,
    id: started.ready.hostId as string,
    name: started.ready.name as string,
    kill: (signal = 'SIGKILL') => started.process.kill(signal),
  };
}

/** A `trellis` child process that logs JSON lines (gateway, provider...). */
export interface TrellisProcess extends AsyncDisposable {
  readonly process: ChildProcess;
  readonly logs: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
  /** The log line that said it was ready. */
  readonly ready: Record<string, unknown>;
}

/** Start `trellis <args>` (or another copy of the bin) and wait for the log line whose msg is `readyMsg`. */
export async function spawnTrellis(args: string[], readyMsg: string, env: NodeJS.ProcessEnv = {}, bin = TRELLIS_BIN): Promise<TrellisProcess> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { children.delete(child); resolve(code); }));
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`trellis ${args[0]} not ready in 30 s: ${stderr}`)); }, 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === readyMsg) { clearTimeout(timer); resolve(entry); }
      } catch {
        logs.push({ raw: line });
      }
    });
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`trellis ${args[0]} exited with ${code}: ${stderr}`)); });
  });
  return {
    process: child,
    logs,
    exited,
    ready,
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Poll `check` until it returns a truthy value or the time runs out. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, options: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
  throw new Error(`timed out waiting for ${options.what ?? 'condition'}${lastError ? `: ${(lastError as Error).message}` : ''}`);
}

/** A unique lattice name per test, so tests sharing a server never hear each other. */
export function uniqueLattice(prefix = 't'): string {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** Path of a built example actor (global setup builds them into .cache/actors). */
export function exampleActor(name: string): string {
  return fileURLToPath(new URL(`../../.cache/actors/${name}.wasm`, import.meta.url));
}

/** Where and how to run an example actor (see `deployExample`). */
export interface DeployOptions {
  /** Name it runs under (default: the example's name). */
  actor?: string;
  version?: string;
  /** Instances per host (default 1). */
  count?: number;
  policy?: Record<string, unknown>;
}

/**
 * Push a built example actor to the lattice's artifact store and start it on every host in `on`
 * (ids, or anything with an id): the one way tests deploy. Returns the component's digest.
 */
export async function deployExample(client: ControlClient, example: string, on: (string | { id: string })[], options: DeployOptions = {}): Promise<string> {
  const { digest } = await (await openArtifacts(client.nc, client.subjects)).push(new Uint8Array(await readFile(exampleActor(example))));
  const params = { actor: options.actor ?? example, version: options.version ?? '1.0.0', digest, count: options.count ?? 1, ...(options.policy ? { policy: options.policy } : {}) };
  await Promise.all(on.map((h) => client.startActor(typeof h === 'string' ? h : h.id, params)));
  return digest;
}

/** Whether a process still runs (a zombie, dead but not yet reaped by its new parent, does not). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ...", the state letter after the parenthesised name.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
