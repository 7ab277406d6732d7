/**
 * The actor runtime: loads WebAssembly components (trellis:actor or wasi:http/proxy), runs them
 * as Wasm instances on a fixed set of shared, sandboxed worker threads and serves invocations. The folder's single entry point.
 */
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { normalizeRequest, type ActorRequest, type ActorResponse } from '../../lattice/wire/index.ts';
import { TrellisError, toTrellisError } from '../../lattice/errors/index.ts';
import { parseListen, readBody, toActorRequest, writeActorResponse, writeError } from '../../lattice/http/index.ts';
import { ComponentCache, type CacheSource, type World } from './compile.ts';
import { availableParallelism } from 'node:os';
import { ActorPool, completeCapabilities, type ActorStats, type HostCapabilities, type LatticeServing } from './pool.ts';
import { WorkerPool } from './workers.ts';
import { compilePolicy, type ActorPolicy } from '../../lattice/policy/index.ts';
import type { SandboxConfig } from './wasi/index.ts';
import { workerScript } from './worker-script.ts';
import type { FinishedSpan } from '../../lattice/telemetry/index.ts';

export { compilePolicy, loadPolicyFile, DEFAULT_POLICY, type ActorPolicy, type DirGrant } from '../../lattice/policy/index.ts';
export type { ActorStats, CapabilityCall, HostCapabilities, KeyValueCapability, HttpRequest, LatticeServing } from './pool.ts';
export type { ServedBatch } from './call-stats.ts';
export { PROGRESS_REPLY, natsFastPaths } from './lattice-serve.ts';
export type { World, CacheSource } from './compile.ts';

/** A loaded actor. */
export interface LoadedActor {
  name: string;
  /** sha256 of the component bytes, hex. */
  digest: string;
  world: World;
  policy: ActorPolicy;
  /** Where the transpiled code came from on this load (`transpiled` means a cache miss). */
  source: CacheSource;
  /** How long jco took to transpile this component (when it was first seen). */
  transpileMs: number;
}

export interface LoadSpec {
  name: string;
  /** The actor and version capability calls report (default: the name, version ''). */
  actor?: string;
  version?: string;
  bytes?: Uint8Array;
  path?: string;
  /** Raw or compiled policy; validated with compilePolicy. Default: DEFAULT_POLICY. */
  policy?: Partial<ActorPolicy> | ActorPolicy;
  /** Serve the actor to the lattice from its workers' own NATS subscriptions. */
  serve?: LatticeServing;
  /** The signed capabilities of this load's instances, given to every capability call they make. */
  caps?: ReadonlySet<string>;
}

export interface InvokeOptions {
  /** Overall deadline from now; fails with TRELLIS_DEADLINE_EXCEEDED if shorter than the policy limit and reached. */
  deadlineMs?: number;
  /** The invocation's id (capability writes are idempotent by it); a new one when absent. */
  invocationId?: string;
  /** The caller's W3C trace context, carried into the guest's host calls and log lines. */
  traceparent?: string;
}

export interface ActorRuntime extends AsyncDisposable {
  /** Load (or replace) an actor; resolves once its `minInstances` are warm. */
  load(spec: LoadSpec): Promise<LoadedActor>;
  invoke(name: string, request: ActorRequest, options?: InvokeOptions): Promise<ActorResponse>;
  unload(name: string): Promise<void>;
  /**
   * Change a loaded actor's instance counts in place, keeping its warm instances. False (and
   * nothing changed) when `policy` differs in more than minInstances and maxConcurrency: that
   * takes a load.
   */
  rescale(name: string, policy: Partial<ActorPolicy> | ActorPolicy): Promise<boolean>;
  list(): LoadedActor[];
  stats(name: string): ActorStats;
  /** Run cold instantiations or warm calls inside one worker, timed there (benchmarks). */
  bench(name: string, request: ActorRequest, iterations: number, mode: 'cold' | 'warm'): Promise<number[]>;
  /** Transpilations run by this runtime (cache misses). */
  readonly transpiles: number;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Where transpiled components are cached by digest. Default: `<os tmpdir>/trellis-runtime-cache`. */
  cacheDir?: string;
  capabilities?: Partial<HostCapabilities>;
  logger?: Logger;
  /** Worker threads shared by every actor (default: one per CPU core). */
  workers?: number;
  /** Tracing on: guest runs are timed in the workers and their spans handed here. */
  spans?: (spans: FinishedSpan[]) => void;
  /** How long each in-process invocation waited for a free instance (metrics). */
  queueWait?: (actor: string, version: string, seconds: number) => void;
}

/** The most worker threads a runtime starts (each holds a NATS connection and a V8 isolate). */
export const MAX_WORKERS = 256;

/** The worker count of `options`, validated. */
export function workerCount(workers: number | undefined): number {
  if (workers === undefined) return Math.max(1, availableParallelism());
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
    throw new TrellisError('TRELLIS_BAD_OPTION', `invalid option workers: ${workers} (an integer from 1 to ${MAX_WORKERS})`);
  }
  return workers;
}

/** A worker lost to a crash fails the call it ran with this. */
function crashError(err: Error): TrellisError {
  const oom = /memory/i.test(err.message) && /out of|allocation/i.test(err.message);
  return new TrellisError(oom ? 'TRELLIS_OUT_OF_MEMORY' : 'TRELLIS_WASM_TRAP', oom ? 'out of memory' : `wasm trap: worker crashed: ${err.message}`, { cause: err });
}

function sandboxOf(name: string, policy: ActorPolicy): SandboxConfig {
  const env: [string, string][] = [];
  for (const k of policy.allowedEnvVars) {
    const v = policy.env[k] ?? process.env[k];
    if (v !== undefined) env.push([k, v]);
  }
  const dirs = policy.allowedDirs.map((d, i) => {
    try {
      return { ...d, hostPath: realpathSync(d.hostPath) };
    } catch (err) {
      throw new TrellisError('TRELLIS_BAD_OPTION', `invalid policy option allowedDirs[${i}].hostPath: ${d.hostPath} does not exist`, { cause: err });
    }
  });
  return { actor: name, env, allowedEnvVars: policy.allowedEnvVars, allowedHosts: policy.allowedHosts, dirs };
}

/** Create an actor runtime. */
export async function createRuntime(options: RuntimeOptions = {}): Promise<ActorRuntime> {
  const cache = new ComponentCache(options.cacheDir ?? join(tmpdir(), 'trellis-runtime-cache'));
  const capabilities = completeCapabilities(options.capabilities);
  const logger = options.logger ?? pino({ level: 'warn' });
  const actors = new Map<string, { info: LoadedActor; pool: ActorPool }>();
  const size = workerCount(options.workers);
  // Started with the first actor: a runtime that loads none starts no thread.
  let workers: Promise<WorkerPool> | undefined;
  const sharedWorkers = () => {
    workers ??= workerScript().then((url) => new WorkerPool(size, url, logger.child({ component: 'workers' }), crashError));
    workers.catch(() => (workers = undefined));
    return workers;
  };

  const get = (name: string) => {
    const a = actors.get(name);
    if (!a) throw new TrellisError('TRELLIS_NOT_FOUND', `no actor named ${name}`);
    return a;
  };

  const runtime: ActorRuntime = {
    async load(spec) {
      const policy = compilePolicy(spec.policy ?? {});
      let bytes = spec.bytes;
      if (!bytes) {
        if (!spec.path) throw new TrellisError('TRELLIS_BAD_REQUEST', 'load needs bytes or path');
        try {
          bytes = await readFile(spec.path);
        } catch (err) {
          throw new TrellisError('TRELLIS_LOAD_FAILED', `failed to load module: ${(err as Error).message}`, { cause: err });
        }
      }
      const { component, source } = await cache.transpiled(bytes);
      const modules = await cache.compiled(component, policy.maxMemoryPages);
      const shared = await sharedWorkers();
      const pool = new ActorPool(
        {
          name: spec.name,
          actor: spec.actor ?? spec.name,
          version: spec.version ?? '',
          world: component.world,
          jsUrl: component.jsUrl,
          modules,
          policy,
          sandbox: sandboxOf(spec.name, policy),
          capabilities,
          // Every line of the actor's names it and its version apart (log filters need no parsing).
          logger: logger.child(spec.version ? { actor: spec.actor ?? spec.name, version: spec.version } : { actor: spec.name }),
          serve: spec.serve,
          ...(spec.caps ? { caps: spec.caps } : {}),
          spans: options.spans,
          queueWait: options.queueWait && ((seconds) => options.queueWait!(spec.actor ?? spec.name, spec.version ?? '', seconds)),
        },
        shared,
      );
      await pool.start();
      const info: LoadedActor = { name: spec.name, digest: component.digest, world: component.world, policy, source, transpileMs: component.transpileMs };
      const previous = actors.get(spec.name);
      actors.set(spec.name, { info, pool });
      // Calls already given to the old pool finish there; new ones go to the new pool.
      await previous?.pool.drain();
      return info;
    },
    invoke(name, request, opts) {
      try {
        return get(name).pool.invoke(normalizeRequest(request), opts?.deadlineMs, opts?.invocationId, opts?.traceparent);
      } catch (err) {
        return Promise.reject(err);
      }
    },
    async rescale(name, policy) {
      const a = get(name);
      const next = compilePolicy(policy);
      const withoutCounts = ({ minInstances: _min, maxConcurrency: _max, ...rest }: ActorPolicy) => JSON.stringify(rest);
      if (withoutCounts(next) !== withoutCounts(a.info.policy)) return false;
      await a.pool.resize(next.minInstances, next.maxConcurrency);
      a.info = { ...a.info, policy: next };
      return true;
    },
    async unload(name) {
      const a = get(name);
      actors.delete(name);
      await a.pool.close();
    },
    list: () => [...actors.values()].map((a) => a.info),
    stats: (name) => get(name).pool.stats(),
    bench: (name, request, iterations, mode) => get(name).pool.bench(normalizeRequest(request), iterations, mode === 'cold'),
    get transpiles() {
      return cache.transpiles;
    },
    async close() {
      const all = [...actors.values()];
      actors.clear();
      await Promise.all(all.map((a) => a.pool.close()));
      const w = workers;
      workers = undefined;
      await (await w?.catch(() => undefined))?.close();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
  return runtime;
}

export interface ServeOptions {
  path: string;
  policy?: Partial<ActorPolicy> | ActorPolicy;
  /** host:port; default 127.0.0.1:8000, port 0 picks a free one. */
  listen?: string;
  cacheDir?: string;
  logger?: Logger;
  capabilities?: Partial<HostCapabilities>;
}

/** Serve one component over HTTP (`trellis run`): either world; failures answer JSON {error:{code,message,hint}}. */
export async function serveComponent(options: ServeOptions): Promise<{ url: string; close(): Promise<void> }> {
  const { host, port } = parseListen(options.listen ?? '127.0.0.1:8000');
  const runtime = await createRuntime({ cacheDir: options.cacheDir, logger: options.logger, capabilities: options.capabilities });
  const name = 'main';
  try {
    await runtime.load({ name, path: options.path, policy: options.policy });
  } catch (err) {
    await runtime.close();
    throw err;
  }
  const server = createServer((req, res) => {
    readBody(req)
      .then((body) => runtime.invoke(name, toActorRequest(req, body)))
      .then(
        (r) => writeActorResponse(res, r),
        (err) => void writeError(res, toTrellisError(err)),
      );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await runtime.close();
    },
  };
}
