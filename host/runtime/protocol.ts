/**
 * Messages between the runtime (main thread) and the shared actor workers. Type-only module.
 * A worker holds instances of many actors; every message about one actor names it by the
 * runtime-wide number the main thread gave it (`actor`).
 */
import type { WireError } from '../../lattice/errors/index.ts';
import type { NatsConnect } from '../../lattice/options/index.ts';
import type { ActorRequest, ActorResponse } from '../../lattice/wire/index.ts';
import type { World } from './compile.ts';
import type { SandboxConfig } from './wasi/index.ts';
import type { WasmModule } from './wasm-api.ts';
import type { MessagePort } from 'node:worker_threads';
import type { FinishedSpan } from '../../lattice/telemetry/index.ts';
import type { GuestIdentity } from './guest-trace.ts';

/** What a worker thread starts with: its channels to the main thread. */
export interface WorkerInit {
  /** Host calls (keyvalue, http, actors) go out on this port; the reply comes back on it too. */
  hostPort: MessagePort;
  /** Int32 slot the worker waits on until the main thread has posted a host-call reply. */
  hostSignal: SharedArrayBuffer;
  /** The CallWatch record of the call this worker runs (see call-watch.ts). */
  watch: SharedArrayBuffer;
  /** This worker's number within the host (connection names). */
  index: number;
}

/** One actor as a worker needs it (sent once per worker; compiled modules are shared, not copied). */
export interface ActorInit {
  world: World;
  jsUrl: string;
  modules: Record<string, WasmModule>;
  sandbox: SandboxConfig;
  maxMemoryPages: number;
  instancePerRequest: boolean;
  executionTimeoutMs: number;
  /** Warm instances this worker keeps of the actor. */
  place: number;
  /**
   * Instantiate once even with no placement here, so a broken component fails the load (one
   * worker does, not all: a JS instance holds megabytes).
   */
  validate: boolean;
  /** Int32 [live instances] of this actor on this worker, written by the worker. */
  counts: SharedArrayBuffer;
  /**
   * Int32 [long-call score] shared by every worker of the actor: set high by a call longer than
   * a few ms (or one the watchdog ended), lowered by each short call; while above 0, a worker
   * leaves its queue groups for the actor's calls (see lattice-serve.ts).
   */
  flags: SharedArrayBuffer;
  /** The CallStats of this actor's lattice calls on this worker (see call-stats.ts). */
  stats: SharedArrayBuffer;
  /** When set, the worker serves this actor's lattice calls from its NATS connection. */
  serve?: ServeSpec;
  /**
   * Int32 [count, flag per worker index] of the workers subscribed to this version's queue group
   * (see subscribers.ts): a worker pauses only while each version it serves keeps another.
   */
  subscribers: SharedArrayBuffer;
  /** When set, tracing is on: the worker times each guest run of this actor as a span (see guest-trace.ts). */
  tracing?: GuestIdentity;
}

/**
 * How the worker connection reaches NATS: a serializable value handed through from the host
 * unchanged, so connection options added there (credentials, TLS) reach every worker. Every
 * actor of one host carries the same value; a worker connects with the first it is given.
 */
export interface WorkerConnection {
  servers: string[];
  /** The host's compiled connection (credential, TLS, inbox prefix; lattice/options): plain data. */
  connect?: NatsConnect;
  /** NATS connection name of the actor (the worker names its connection from its prefix). */
  connectionName: string;
}

/** How a worker joins the lattice to serve one actor version. */
export interface ServeSpec extends WorkerConnection {
  subject: string;
  queue: string;
  /** Who answers, on every reply (body and headers). */
  hostId: string;
  version: string;
}

export type ToWorker =
  | { type: 'add'; actor: number; spec: ActorInit }
  /** Keep `place` warm instances of the actor (create or drop idle ones). */
  | { type: 'place'; actor: number; place: number }
  | { type: 'invoke'; actor: number; id: number; request: ActorRequest; invocationId: string; /** epoch ms */ deadlineAt?: number; traceparent?: string }
  /** Stop taking the actor's lattice calls: finish what NATS has delivered, then say so. */
  | { type: 'stop-serving'; actor: number }
  | { type: 'remove'; actor: number }
  | { type: 'bench'; actor: number; id: number; request: ActorRequest; iterations: number; cold: boolean };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'added'; actor: number; error?: WireError }
  | { type: 'result'; actor: number; id: number; response?: ActorResponse; error?: WireError; cold: boolean }
  | { type: 'bench'; actor: number; id: number; samplesMs: number[]; error?: WireError }
  /** A log line; `invocationId` and `traceId` of the call that wrote it, when one ran. */
  | { type: 'log'; actor: number; level: string; message: string; guest: boolean; invocationId?: string; traceId?: string; code?: string }
  /** Guest runs timed in the worker, for the host's tracer (tracing on only). */
  | { type: 'spans'; actor: number; spans: FinishedSpan[] }
  | { type: 'serving-stopped'; actor: number }
  /** The placement asked by `place` is warm. */
  | { type: 'placed'; actor: number }
  /** The worker's lattice connection closed for good: replace the worker. */
  | { type: 'connection-lost' };

export type HostCallName = 'keyvalue' | 'httpSend' | 'callActor';

export interface HostCall {
  /** The actor whose guest makes the call. */
  actor: number;
  op: HostCallName;
  method?: string;
  args: unknown[];
  /** The invocation the guest runs, and this call's number within it (from 1). */
  invocationId: string;
  seq: number;
  /** For callActor: what is left of the calling invocation's time (ms). */
  remainingMs?: number;
  /** The trace context the call continues (the guest run's span when tracing is on). */
  traceparent?: string;
}

export type HostReply = { ok: true; value: unknown } | { ok: false; error: string };
