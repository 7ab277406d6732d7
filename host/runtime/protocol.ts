/** Messages between the runtime (main thread) and an actor worker. Type-only module. */
import type { ActorRequest, ActorResponse } from '../../lattice/wire/index.ts';
import type { World } from './compile.ts';
import type { SandboxConfig } from './wasi.ts';
import type { WasmModule } from './wasm-api.ts';
import type { MessagePort } from 'node:worker_threads';

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
}

export interface WireFailure {
  code: string;
  message: string;
}

export type ToWorker =
  | { type: 'invoke'; id: number; request: ActorRequest }
  | { type: 'bench'; id: number; request: ActorRequest; iterations: number; cold: boolean };

export type FromWorker =
  | { type: 'ready'; instantiateMs: number }
  | { type: 'init-failed'; error: WireFailure }
  | { type: 'result'; id: number; response?: ActorResponse; error?: WireFailure; cold: boolean; instantiateMs: number; callMs: number }
  | { type: 'bench'; id: number; samplesMs: number[]; error?: WireFailure }
  | { type: 'log'; level: string; message: string; guest: boolean };

export type HostCallName = 'keyvalue' | 'httpSend' | 'callActor';

export interface HostCall {
  op: HostCallName;
  method?: string;
  args: unknown[];
}

export type HostReply = { ok: true; value: unknown } | { ok: false; error: string };
