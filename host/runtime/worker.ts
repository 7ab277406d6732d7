/**
 * An actor worker: owns one component instance at a time and runs invocations on it directly.
 * Runs in a worker thread so the main thread can terminate it when a call overruns; its WASI
 * state (env, preopens, streams) is private to this thread.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { KeyValueOps, type ActorRequest, type ActorResponse } from '../../lattice/wire/index.ts';
import { CallStats } from './call-stats.ts';
import { CallWatch, LimitKind } from './call-watch.ts';
import { serveLattice, type LatticeServer } from './lattice-serve.ts';
import { GuestTrace, isGuestFault } from './guest-trace.ts';
import type { WireError } from '../../lattice/errors/index.ts';
import type { FromWorker, HostCall, HostReply, ToWorker, WorkerInit } from './protocol.ts';
import { hostAllowed } from '../../lattice/http/index.ts';
import { IncomingRequest, ResponseOutparam, wasiImports, type OutgoingHttp, type SandboxHost } from './wasi/index.ts';
import { Wasm, type WasmMemory, type WasmModule } from './wasm-api.ts';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (msg: FromWorker) => port.postMessage(msg);
const signal = new Int32Array(init.hostSignal);
const watch = new CallWatch(init.watch);
/** When the running call must end (epoch ms): what a nested actor call may still use. */
let callEndBy = 0;
/** The watchdog took a call over: the main thread answers it and terminates this worker. */
let retired = false;

/** Violation recorded during the current invocation. */
let violation: string | undefined;
/**
 * The invocation running now and how many host calls it has made: each host call carries both,
 * so a provider applies a retried invocation's writes once (the retry repeats the numbers).
 */
let invocationId = '';
let hostCalls = 0;
/** The running invocation's trace context (and, with tracing on, its guest span). */
const trace = new GuestTrace(init.tracing, (spans) => post({ type: 'spans', spans }));
/** A log line of the running invocation, with its ids. */
const logLine = (level: string, message: string, guest: boolean, code?: string) =>
  post({ type: 'log', level, message, guest, invocationId: invocationId || undefined, traceId: trace.traceId || undefined, code });

/** A synchronous call to the main thread: component imports cannot wait for a promise. */
function hostCall(call: Omit<HostCall, 'invocationId' | 'seq'>): unknown {
  Atomics.store(signal, 0, 0);
  init.hostPort.postMessage({ ...call, invocationId, seq: ++hostCalls, traceparent: trace.current || undefined } satisfies HostCall);
  watch.waitingOnHost(true);
  Atomics.wait(signal, 0, 0);
  watch.waitingOnHost(false);
  const reply = receiveMessageOnPort(init.hostPort)?.message as HostReply | undefined;
  if (!reply) throw new Error('host call lost its reply');
  if (!reply.ok) throw reply.error; // a string: becomes the import's err(...)
  return reply.value;
}

const host: SandboxHost = {
  violation(message) {
    if (violation === undefined || (message.startsWith('permission denied') && !violation.startsWith('permission denied'))) violation = message;
  },
  output(stream, line) {
    logLine(stream === 'stderr' ? 'warn' : 'info', line, true);
  },
  httpSend(req: OutgoingHttp) {
    return hostCall({ op: 'httpSend', args: [req] }) as ActorResponse;
  },
};

const { sandbox } = init;
const trellisImports: Record<string, Record<string, unknown>> = {
  'trellis:actor/logging': {
    log: (level: string, message: string) => logLine(level, message, true),
  },
  'trellis:actor/keyvalue': Object.fromEntries(
    KeyValueOps.map((m) => [m, (...args: unknown[]) => hostCall({ op: 'keyvalue', method: m, args })]),
  ),
  'trellis:actor/http-client': {
    send(req: OutgoingHttp) {
      if (!URL.canParse(req.url)) throw `invalid url: ${req.url}`;
      const url = new URL(req.url);
      if (!hostAllowed(sandbox.allowedHosts, url)) {
        const message = `host not allowed: ${url.hostname}`;
        host.violation(message);
        throw `TRELLIS_SANDBOX_VIOLATION: ${message}`;
      }
      return hostCall({ op: 'httpSend', args: [req] });
    },
  },
  'trellis:actor/actors': {
    call: (actor: string, req: ActorRequest) => hostCall({ op: 'callActor', args: [actor, req], remainingMs: Math.max(1, callEndBy - Date.now()) }),
  },
  'trellis:actor/config': {
    getEnv(name: string) {
      if (!sandbox.allowedEnvVars.includes(name)) {
        host.violation(`env var not allowed: ${name}`);
        throw `env var not allowed: ${name}`;
      }
      const hit = sandbox.env.find(([k]) => k === name);
      if (!hit) throw `env var not set: ${name}`;
      return hit[1];
    },
  },
};
const table = { ...wasiImports(sandbox, host), ...trellisImports };

/** Any `wasi:*@0.2.x` (or unversioned) key resolves to the one implementation; others fail the load. */
const imports = new Proxy({} as Record<string, unknown>, {
  get(_, key) {
    if (typeof key !== 'string') return undefined;
    const at = key.lastIndexOf('@');
    const name = at < 0 ? key : key.slice(0, at);
    const version = at < 0 ? '' : key.slice(at + 1);
    const ok = version === '' || (name.startsWith('wasi:') ? /^0\.2\.\d+/.test(version) : /^0\.1\.\d+/.test(version));
    const impl = ok ? table[name] : undefined;
    if (!impl) throw new Error(`unsupported import ${key}`);
    return impl;
  },
});

interface Instance {
  call: (req: ActorRequest) => ActorResponse;
  memories: WasmMemory[];
  /** Invocations this instance has started. */
  uses: number;
}

const generated = (await import(init.jsUrl)) as {
  instantiate: (get: (name: string) => WasmModule, imports: unknown, core: (m: WasmModule, i: Record<string, unknown>) => unknown) => Record<string, unknown>;
};

function findExport(exports: Record<string, unknown>, prefix: string, alias: string): { handle: (...a: unknown[]) => unknown } {
  const key = Object.keys(exports).find((k) => k.startsWith(prefix)) ?? alias;
  const iface = exports[key] as { handle: (...a: unknown[]) => unknown } | undefined;
  if (!iface) throw new Error(`component does not export ${prefix}`);
  return iface;
}

function instantiate(): Instance {
  const memories: WasmMemory[] = [];
  const exports = generated.instantiate(
    (name) => init.modules[name]!,
    imports,
    (module, imps) => {
      const instance = new Wasm.Instance(module, imps);
      for (const v of Object.values(instance.exports)) if (v instanceof Wasm.Memory) memories.push(v);
      return instance;
    },
  );
  if (init.world === 'trellis:actor') {
    const handler = findExport(exports, 'trellis:actor/handler@', 'handler');
    return { memories, uses: 0, call: (req) => handler.handle(req) as ActorResponse };
  }
  const handler = findExport(exports, 'wasi:http/incoming-handler@', 'incomingHandler');
  return {
    memories,
    uses: 0,
    call(req) {
      const out = new ResponseOutparam();
      handler.handle(new IncomingRequest(req), out);
      const res = out.response();
      if (!res) throw new ActorFailure(NO_RESPONSE);
      if ('error' in res) throw new ActorFailure(res.error);
      return res;
    },
  };
}

const NO_RESPONSE = 'the component returned without setting a response';

/** A failure the actor reported (not a trap): the instance stays usable. */
class ActorFailure extends Error {}

let current: Instance | undefined;

function classify(err: unknown, instance: Instance | undefined): { failure: WireError; poisoned: boolean } {
  if (err instanceof ActorFailure) return { failure: { code: 'TRELLIS_ACTOR_ERROR', message: err.message }, poisoned: false };
  if (err && typeof err === 'object' && Object.hasOwn(err, 'payload')) {
    const payload = (err as { payload: unknown }).payload;
    return { failure: { code: 'TRELLIS_ACTOR_ERROR', message: typeof payload === 'string' ? payload : JSON.stringify(payload) }, poisoned: false };
  }
  const message = err instanceof Error ? err.message : String(err);
  const cap = init.maxMemoryPages;
  const nearCap = instance?.memories.some((m) => m.buffer.byteLength / 65536 >= cap - Math.max(16, cap / 16)) ?? false;
  if (nearCap || /out of memory|allocation failed/i.test(message)) {
    return { failure: { code: 'TRELLIS_OUT_OF_MEMORY', message: 'out of memory' }, poisoned: true };
  }
  return { failure: { code: 'TRELLIS_WASM_TRAP', message: `wasm trap: ${message.replace(/^wasm trap: /, '')}` }, poisoned: true };
}

/** Instantiate ahead of need while idle, so the next request finds an instance. */
function prewarm(): void {
  if (current) return;
  try {
    current = instantiate();
  } catch {
    // Reported by the next invocation, which instantiates again and fails with the reason.
  }
}

/**
 * Components in the `addEventListener('fetch')` style answer once per instance: a reused instance
 * that returns without a response is switched to instance-per-request and the request rerun on a
 * fresh instance (safe: the guest produced nothing).
 */
let instancePerRequest = init.instancePerRequest;

function invoke(request: ActorRequest): Extract<FromWorker, { type: 'result' }> {
  const reused = (current?.uses ?? 0) > 0;
  const first = invokeOnce(request);
  if (first.error?.message !== NO_RESPONSE || !reused || instancePerRequest) return first;
  instancePerRequest = true;
  logLine('info', 'component cannot answer twice on one instance: using an instance per request', false);
  current = undefined;
  const second = invokeOnce(request);
  second.cold = true;
  return second;
}

function invokeOnce(request: ActorRequest): Extract<FromWorker, { type: 'result' }> {
  let cold = false;
  violation = undefined;
  let instance = current;
  try {
    if (!instance) {
      cold = true;
      instance = current = instantiate();
    }
    instance.uses++;
    const response = instance.call(request);
    if (instancePerRequest) current = undefined;
    if (violation) return { type: 'result', id: 0, cold, error: { code: 'TRELLIS_SANDBOX_VIOLATION', message: violation } };
    return { type: 'result', id: 0, cold, response: { status: response.status, headers: response.headers, body: response.body } };
  } catch (err) {
    const { failure, poisoned } = classify(err, instance);
    if (poisoned || instancePerRequest) current = undefined;
    const error = violation ? { code: 'TRELLIS_SANDBOX_VIOLATION', message: violation } : failure;
    return { type: 'result', id: 0, cold, error };
  }
}

/** Bench loop, measured here so it excludes thread hops: cold = instantiate only, warm = call only. */
function bench(request: ActorRequest, iterations: number, cold: boolean): number[] {
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    if (cold) {
      const t = performance.now();
      current = instantiate();
      samples.push(performance.now() - t);
    } else {
      const instance = (current ??= instantiate());
      const t = performance.now();
      instance.call(request);
      samples.push(performance.now() - t);
    }
  }
  return samples;
}

/**
 * Run one call under the watchdog's eye: it ends by the caller's deadline or the time limit,
 * whichever comes first. Undefined when the watchdog took the call over.
 */
function watched(jobId: number, request: ActorRequest, invocation: string, deadlineAt: number | undefined, reply?: string, traceparent?: string): ReturnType<typeof invoke> | undefined {
  invocationId = invocation;
  hostCalls = 0;
  trace.begin(traceparent, invocation);
  const limitAt = Date.now() + init.executionTimeoutMs;
  const byDeadline = deadlineAt !== undefined && deadlineAt < limitAt;
  callEndBy = byDeadline ? deadlineAt : limitAt;
  watch.begin(jobId, callEndBy, byDeadline ? LimitKind.Deadline : LimitKind.TimeLimit, reply);
  const result = invoke(request);
  if (!watch.end()) {
    retired = true;
    trace.flush();
    return undefined;
  }
  // A guest's own failure is worth a line with its reason, its invocation and its trace.
  if (isGuestFault(result.error)) logLine('warn', `invocation failed: ${result.error!.message}`, false, result.error!.code);
  trace.end({ error: result.error, cold: result.cold, status: result.response?.status });
  invocationId = '';
  if (!current) setImmediate(prewarm);
  return result;
}

let lattice: LatticeServer | undefined;

port.on('message', (msg: ToWorker) => {
  if (retired) return;
  if (msg.type === 'invoke') {
    if (msg.deadlineAt !== undefined && !(msg.deadlineAt > Date.now())) {
      post({ type: 'result', id: msg.id, cold: false, error: { code: 'TRELLIS_DEADLINE_EXCEEDED', message: 'deadline exceeded while waiting for a free instance' } });
      return;
    }
    const result = watched(msg.id, msg.request, msg.invocationId, msg.deadlineAt, undefined, msg.traceparent);
    if (!result) return;
    result.id = msg.id;
    post(result);
  } else if (msg.type === 'stop-serving') {
    void (lattice?.stop() ?? Promise.resolve()).then(() => post({ type: 'serving-stopped' }));
  } else {
    try {
      post({ type: 'bench', id: msg.id, samplesMs: bench(msg.request, msg.iterations, msg.cold) });
    } catch (err) {
      post({ type: 'bench', id: msg.id, samplesMs: [], error: classify(err, current).failure });
    }
    if (!current) setImmediate(prewarm);
  }
});

/** Instantiate the component, join the lattice when asked, and say ready (or why not). */
async function start(): Promise<void> {
  try {
    current = instantiate();
  } catch (err) {
    const { failure } = classify(err, undefined);
    const error = failure.code === 'TRELLIS_OUT_OF_MEMORY' ? failure : { code: 'TRELLIS_LOAD_FAILED', message: `failed to load module: ${(err as Error).message ?? String(err)}` };
    post({ type: 'init-failed', error });
    return;
  }
  if (init.serve) {
    try {
      lattice = await serveLattice(
        init.serve,
        (request, call) => (retired ? undefined : watched(0, request, call.invocationId, call.deadlineAt, call.reply, call.traceparent)),
        new CallStats(init.stats),
        (level, message) => post({ type: 'log', level, message, guest: false }),
      );
    } catch (err) {
      const { code, message } = err as WireError;
      post({ type: 'init-failed', error: { code: code ?? 'TRELLIS_NATS_UNAVAILABLE', message: `cannot serve ${init.serve.subject}: ${message}` } });
      return;
    }
  }
  post({ type: 'ready' });
}

await start();
