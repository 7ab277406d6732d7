/** Messages between the runtime (main thread) and an actor worker. Type-only module. */
import type { WireError } from '../../lattice/errors/index.ts';
import type { NatsConnect } from '../../lattice/options/index.ts';
import type { ActorRequest, ActorResponse } from '../../lattice/wire/index.ts';
import type { World } from './compile.ts';
import type { SandboxConfig } from './wasi/index.ts';
import type { WasmModule } from './wasm-api.ts';
import type { MessagePort } from 'node:worker_threads';
import type { FinishedSpan } from '../../lattice/telemetry/index.ts';
import type { GuestIdentity } from './guest-trace.ts';

export interface WorkerInit {
  world: World;
  jsUrl: string;
  modules: Record<string, WasmModule>;
  sandbox: SandboxConfig;
  maxMemoryPages: number;
  instancePerRequest: boolean;
  /** Host calls (keyvalue, http, actors) go out on this port; the reply comes back on it too. */
  hostPort: MessagePort;
  /** Int32 slot the worker waits on until the main thread has posted a host-call reply. */
  hostSignal: SharedArrayBuffer;
  /** The CallWatch record of the call this worker runs (see call-watch.ts). */
  watch: SharedArrayBuffer;
  /** The CallStats of the lattice calls this worker serves (see call-stats.ts). */
  stats: SharedArrayBuffer;
  executionTimeoutMs: number;
  /** When set, the worker serves lattice calls from its own NATS connection (see lattice-serve.ts). */
  serve?: ServeSpec;
  /** When set, tracing is on: the worker times each guest run as a span (see guest-trace.ts). */
  tracing?: GuestIdentity;
}

/** How a worker joins the lattice to serve one actor version. */
export interface ServeSpec {
  servers: string[];
  /** The host's compiled connection (credential, TLS, inbox prefix); plain data, so it crosses to the worker. */
  connect?: NatsConnect;
  /** NATS connection name (shows in the server's connz). */
  connectionName: string;
  subject: string;
  queue: string;
  /** Who answers, on every reply (body and headers). */
  hostId: string;
  version: string;
}

export type ToWorker =
  | { type: 'invoke'; id: number; request: ActorRequest; invocationId: string; /** epoch ms */ deadlineAt?: number; traceparent?: string }
  /** Stop taking lattice calls: finish what NATS has delivered, then close the connection. */
  | { type: 'stop-serving' }
  | { type: 'bench'; id: number; request: ActorRequest; iterations: number; cold: boolean };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-failed'; error: WireError }
  | { type: 'result'; id: number; response?: ActorResponse; error?: WireError; cold: boolean }
  | { type: 'bench'; id: number; samplesMs: number[]; error?: WireError }
  /** A log line; `invocationId` and `traceId` of the call that wrote it, when one ran. */
  | { type: 'log'; level: string; message: string; guest: boolean; invocationId?: string; traceId?: string; code?: string }
  /** Guest runs timed in the worker, for the host's tracer (tracing on only). */
  | { type: 'spans'; spans: FinishedSpan[] }
  | { type: 'serving-stopped' };

export type HostCallName = 'keyvalue' | 'httpSend' | 'callActor';

export interface HostCall {
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
