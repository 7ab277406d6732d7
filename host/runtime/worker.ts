/**
 * A shared actor worker: holds warm instances of many actors and runs one invocation at a time
 * on them, from the main thread or straight from its own NATS connection. A thread is the unit
 * of preemption here, not of isolation (each actor's Wasm sandbox and WASI state isolate it):
 * the main thread terminates the worker when a call overruns, since a synchronous Wasm loop
 * cannot be interrupted from inside its thread.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { ActorRequest, ActorResponse } from '../../lattice/wire/index.ts';
import { CallStats } from './call-stats.ts';
import { CallWatch, LimitKind } from './call-watch.ts';
import { connectWorker, LONG_CALL_SCORE, type Served, type WorkerLattice } from './lattice-serve.ts';
import type { WireError } from '../../lattice/errors/index.ts';
import type { ActorInit, FromWorker, HostCall, HostReply, ToWorker, WorkerInit } from './protocol.ts';
import { IncomingRequest, ResponseOutparam } from './wasi/index.ts';
import { actorImports } from './worker-imports.ts';
import { GuestTrace, isGuestFault } from './guest-trace.ts';
import { Subscribers } from './subscribers.ts';
import { Wasm, type WasmMemory, type WasmModule } from './wasm-api.ts';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (msg: FromWorker) => port.postMessage(msg);
const signal = new Int32Array(init.hostSignal);
const watch = new CallWatch(init.watch);
/** A call that ran longer than this makes the next call of its actor here leave the queue groups first. */
const LONG_CALL_MS = 5;


/** When the running call must end (epoch ms): what a nested actor call may still use. */
let callEndBy = 0;
/** The watchdog took a call over: the main thread answers it and terminates this worker. */
let retired = false;
/** Violation recorded during the current invocation. */
let violation: string | undefined;
/**
 * The invocation running now, its actor, and how many host calls it has made: each host call
 * carries them, so a provider applies a retried invocation's writes once.
 */
let invocationId = '';
let runningActor = 0;
let hostCalls = 0;
/** The running invocation's trace context (and, with tracing on, its guest span). */
let runningTrace: GuestTrace | undefined;

/** A log line of actor `a`, with the ids of the invocation running now. */
function logLine(a: Actor, level: string, message: string, guest: boolean, code?: string): void {
  const running = runningActor === a.id && invocationId !== '';
  post({ type: 'log', actor: a.id, level, message, guest, invocationId: running ? invocationId : undefined, traceId: (running && a.trace.traceId) || undefined, code });
}

/** A synchronous call to the main thread: component imports cannot wait for a promise. */
function hostCall(call: Omit<HostCall, 'invocationId' | 'seq' | 'actor'>): unknown {
  Atomics.store(signal, 0, 0);
  init.hostPort.postMessage({ ...call, actor: runningActor, invocationId, seq: ++hostCalls, traceparent: runningTrace?.current || undefined } satisfies HostCall);
  watch.waitingOnHost(true);
  Atomics.wait(signal, 0, 0);
  watch.waitingOnHost(false);
  const reply = receiveMessageOnPort(init.hostPort)?.message as HostReply | undefined;
  if (!reply) throw new Error('host call lost its reply');
  if (!reply.ok) throw reply.error; // a string: becomes the import's err(...)
  return reply.value;
}

type Glue = {
  instantiate: (get: (name: string) => WasmModule, imports: unknown, core: (m: WasmModule, i: Record<string, unknown>) => unknown) => Record<string, unknown>;
};
/** jco's glue, imported once per component: every actor of the same bytes shares it. */
const glues = new Map<string, Promise<Glue>>();

interface Instance {
  call: (req: ActorRequest) => ActorResponse;
  memories: WasmMemory[];
  /** Invocations this instance has started. */
  uses: number;
}

interface Actor {
  id: number;
  spec: ActorInit;
  glue: Glue;
  imports: Record<string, unknown>;
  /** Warm instances, used last-in first-out. */
  idle: Instance[];
  place: number;
  /** Components in the `addEventListener('fetch')` style answer once per instance (see invoke). */
  instancePerRequest: boolean;
  /** [live instances], read by the main thread. */
  counts: Int32Array;
  stats: CallStats;
  served?: Served;
  /** [long-call score], shared with the other workers (see ActorInit.flags). */
  flags: Int32Array;
  filling: boolean;
  /** Trace context of this actor's running call; spans of its guest runs when tracing is on. */
  trace: GuestTrace;
}

const actors = new Map<number, Actor>();
let lattice: Promise<WorkerLattice> | undefined;

function findExport(exports: Record<string, unknown>, prefix: string, alias: string): { handle: (...a: unknown[]) => unknown } {
  const key = Object.keys(exports).find((k) => k.startsWith(prefix)) ?? alias;
  const iface = exports[key] as { handle: (...a: unknown[]) => unknown } | undefined;
  if (!iface) throw new Error(`component does not export ${prefix}`);
  return iface;
}

const NO_RESPONSE = 'the component returned without setting a response';

/** A failure the actor reported (not a trap): the instance stays usable. */
class ActorFailure extends Error {}

function instantiate(a: Actor): Instance {
  const memories: WasmMemory[] = [];
  const exports = a.glue.instantiate(
    (name) => a.spec.modules[name]!,
    a.imports,
    (module, imps) => {
      const instance = new Wasm.Instance(module, imps);
      for (const v of Object.values(instance.exports)) if (v instanceof Wasm.Memory) memories.push(v);
      return instance;
    },
  );
  Atomics.add(a.counts, 0, 1);
  if (a.spec.world === 'trellis:actor') {
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

function discard(a: Actor): void {
  Atomics.sub(a.counts, 0, 1);
}

function classify(err: unknown, a: Actor, instance: Instance | undefined): { failure: WireError; poisoned: boolean } {
  if (err instanceof ActorFailure) return { failure: { code: 'TRELLIS_ACTOR_ERROR', message: err.message }, poisoned: false };
  if (err && typeof err === 'object' && Object.hasOwn(err, 'payload')) {
    const payload = (err as { payload: unknown }).payload;
    return { failure: { code: 'TRELLIS_ACTOR_ERROR', message: typeof payload === 'string' ? payload : JSON.stringify(payload) }, poisoned: false };
  }
  const message = err instanceof Error ? err.message : String(err);
  const cap = a.spec.maxMemoryPages;
  const nearCap = instance?.memories.some((m) => m.buffer.byteLength / 65536 >= cap - Math.max(16, cap / 16)) ?? false;
  if (nearCap || /out of memory|allocation failed/i.test(message)) {
    return { failure: { code: 'TRELLIS_OUT_OF_MEMORY', message: 'out of memory' }, poisoned: true };
  }
  return { failure: { code: 'TRELLIS_WASM_TRAP', message: `wasm trap: ${message.replace(/^wasm trap: /, '')}` }, poisoned: true };
}

/**
 * Create warm instances up to the placement while idle, at most FILL_SLICE_MS of them per
 * event-loop turn (at least one), so calls (and NATS) are served between slices of a large
 * placement: a JS instance takes tens of ms. Resolves when done.
 */
function fill(a: Actor): Promise<void> {
  if (a.filling || a.idle.length >= a.place) return Promise.resolve();
  a.filling = true;
  return new Promise((resolve) => {
    const step = () => {
      try {
        const until = performance.now() + FILL_SLICE_MS;
        while (a.idle.length < a.place && actors.get(a.id) === a && !retired) {
          a.idle.push(instantiate(a));
          if (performance.now() >= until) break;
        }
      } catch {
        // Reported by the next invocation, which instantiates again and fails with the reason.
        a.filling = false;
        return resolve();
      }
      if (a.idle.length < a.place && actors.get(a.id) === a && !retired) return void setImmediate(step);
      a.filling = false;
      resolve();
    };
    setImmediate(step);
  });
}
const FILL_SLICE_MS = 4;

type Result = Omit<Extract<FromWorker, { type: 'result' }>, 'type' | 'id' | 'actor'>;

/**
 * A reused instance of a component that answers once per instance returns without a response:
 * the actor is switched to instance-per-request and the request rerun on a fresh instance
 * (safe: the guest produced nothing).
 */
function invoke(a: Actor, request: ActorRequest): Result {
  const reused = (a.idle.at(-1)?.uses ?? 0) > 0;
  const first = invokeOnce(a, request);
  if (first.error?.message !== NO_RESPONSE || !reused || a.instancePerRequest) return first;
  a.instancePerRequest = true;
  logLine(a, 'info', 'component cannot answer twice on one instance: using an instance per request', false);
  for (const _ of a.idle.splice(0)) discard(a);
  const second = invokeOnce(a, request);
  second.cold = true;
  return second;
}

function invokeOnce(a: Actor, request: ActorRequest): Result {
  violation = undefined;
  let instance = a.idle.pop();
  const cold = instance === undefined;
  let keep = !a.instancePerRequest;
  try {
    instance ??= instantiate(a);
    instance.uses++;
    const response = instance.call(request);
    if (violation) return { cold, error: { code: 'TRELLIS_SANDBOX_VIOLATION', message: violation } };
    return { cold, response: { status: response.status, headers: response.headers, body: response.body } };
  } catch (err) {
    if (!instance) {
      const { failure } = classify(err, a, undefined);
      return { cold, error: violation ? { code: 'TRELLIS_SANDBOX_VIOLATION', message: violation } : failure };
    }
    const { failure, poisoned } = classify(err, a, instance);
    if (poisoned) keep = false;
    return { cold, error: violation ? { code: 'TRELLIS_SANDBOX_VIOLATION', message: violation } : failure };
  } finally {
    if (instance) {
      // Keep at most the placement (one when none is placed: the next call finds it warm).
      if (keep && a.idle.length < Math.max(1, a.place)) a.idle.push(instance);
      else discard(a);
    }
  }
}

/**
 * Run one call under the watchdog's eye: it ends by the caller's deadline or the time limit,
 * whichever comes first. Undefined when the watchdog took the call over.
 */
function watched(a: Actor, jobId: number, request: ActorRequest, invocation: string, deadlineAt: number | undefined, reply?: string, traceparent?: string): Result | undefined {
  invocationId = invocation;
  runningActor = a.id;
  hostCalls = 0;
  a.trace.begin(traceparent, invocation);
  runningTrace = a.trace;
  const started = Date.now();
  const limitAt = started + a.spec.executionTimeoutMs;
  const byDeadline = deadlineAt !== undefined && deadlineAt < limitAt;
  callEndBy = byDeadline ? deadlineAt : limitAt;
  // Calls arriving during a long call would wait behind it: let the other workers take them.
  const paused = Atomics.load(a.flags, 0) > 0 && a.served !== undefined ? pauseLattice() : false;
  watch.begin(jobId, callEndBy, byDeadline ? LimitKind.Deadline : LimitKind.TimeLimit, reply, a.id);
  const result = invoke(a, request);
  if (!watch.end()) {
    retired = true;
    a.trace.flush();
    return undefined;
  }
  // A guest's own failure is worth a line with its reason, its invocation and its trace.
  if (isGuestFault(result.error)) logLine(a, 'warn', `invocation failed: ${result.error!.message}`, false, result.error!.code);
  a.trace.end({ error: result.error, cold: result.cold, status: result.response?.status });
  runningTrace = undefined;
  invocationId = '';
  if (Date.now() - started > LONG_CALL_MS) Atomics.store(a.flags, 0, LONG_CALL_SCORE);
  else if (Atomics.load(a.flags, 0) > 0) Atomics.sub(a.flags, 0, 1);
  if (paused) connected?.resume();
  if (a.idle.length < a.place) void fill(a);
  return result;
}

/** Synchronously pause the lattice connection when it is up (it always is for a served actor). */
let connected: WorkerLattice | undefined;
function pauseLattice(): boolean {
  return connected?.pause() ?? false;
}

/** Bench loop, measured here so it excludes thread hops: cold = instantiate only, warm = call only. */
function bench(a: Actor, request: ActorRequest, iterations: number, cold: boolean): number[] {
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    if (cold) {
      const t = performance.now();
      instantiate(a);
      samples.push(performance.now() - t);
      discard(a);
    } else {
      const instance = a.idle.at(-1) ?? (a.idle.push(instantiate(a)), a.idle.at(-1)!);
      const t = performance.now();
      instance.call(request);
      samples.push(performance.now() - t);
    }
  }
  return samples;
}

function connection(spec: NonNullable<ActorInit['serve']>): Promise<WorkerLattice> {
  const slash = spec.connectionName.lastIndexOf('/');
  const name = `${slash > 0 ? spec.connectionName.slice(0, slash) : spec.connectionName}/worker-${init.index}`;
  lattice ??= connectWorker(
    spec,
    name,
    (level, message) => post({ type: 'log', actor: 0, level, message, guest: false }),
    () => post({ type: 'connection-lost' }),
  ).then((l) => (connected = l));
  lattice.catch(() => (lattice = undefined));
  return lattice;
}

/**
 * Adds in flight, by actor: a remove or stop-serving that arrives while add() awaits is noted
 * here and honoured by add() after each await (the main thread posts them in order, so an add
 * is always in `actors` or here by the time they come).
 */
const adding = new Map<number, { removed: boolean; stopServing: boolean }>();

/** Load an actor: its glue, one instance (a broken component fails here), its placement, its queue group. */
async function add(id: number, spec: ActorInit): Promise<void> {
  const pending = { removed: false, stopServing: false };
  adding.set(id, pending);
  try {
    await load(id, spec, pending);
  } finally {
    adding.delete(id);
    // Whatever add did, the pool waits for this once it asked (it gets no `added` when removed).
    if (pending.stopServing) post({ type: 'serving-stopped', actor: id });
  }
}

async function load(id: number, spec: ActorInit, pending: { removed: boolean; stopServing: boolean }): Promise<void> {
  let a: Actor;
  try {
    let glue = glues.get(spec.jsUrl);
    if (!glue) glues.set(spec.jsUrl, (glue = import(spec.jsUrl) as Promise<Glue>));
    const loaded = await glue;
    if (pending.removed) return;
    a = { id, spec, glue: loaded, imports: actorImports(spec.sandbox, {
        log: (level, message) => logLine(a, level, message, true),
        violation(message) {
          if (violation === undefined || (message.startsWith('permission denied') && !violation.startsWith('permission denied'))) violation = message;
        },
        hostCall,
        remainingMs: () => Math.max(1, callEndBy - Date.now()),
      }), idle: [], place: spec.place, instancePerRequest: spec.instancePerRequest, counts: new Int32Array(spec.counts), stats: new CallStats(spec.stats), flags: new Int32Array(spec.flags), filling: false, trace: new GuestTrace(spec.tracing, (spans) => post({ type: 'spans', actor: id, spans })) };
    if (a.place > 0 || spec.validate) {
      // A start function that never returns is stopped like an overrunning call (job -1: a load).
      watch.begin(-1, Date.now() + spec.executionTimeoutMs, LimitKind.TimeLimit, '', id);
      try {
        a.idle.push(instantiate(a));
      } finally {
        if (!watch.end()) retired = true;
      }
      if (retired) return;
      if (a.place === 0) {
        a.idle.pop();
        discard(a);
      }
    }
  } catch (err) {
    const dummy = { spec } as Actor;
    const { failure } = classify(err, dummy, undefined);
    const error = failure.code === 'TRELLIS_OUT_OF_MEMORY' ? failure : { code: 'TRELLIS_LOAD_FAILED', message: `failed to load module: ${(err as Error).message ?? String(err)}` };
    return post({ type: 'added', actor: id, error });
  }
  actors.set(id, a);
  // Removed meanwhile (remove took it out of `actors`): stop here, post nothing.
  const gone = () => pending.removed || actors.get(id) !== a || retired;
  await fill(a);
  if (gone()) return;
  if (spec.serve && !pending.stopServing) {
    try {
      const l = await connection(spec.serve);
      if (gone()) return;
      const served = await l.serve(spec.serve, (request, call) => (retired ? undefined : watched(a, 0, request, call.invocationId, call.deadlineAt, call.reply, call.traceparent)), a.stats, new Subscribers(spec.subscribers, init.index), () => actors.get(id) === a && !retired);
      // Removed or told to stop serving while it subscribed: leave again (draining what came).
      if (gone() || pending.stopServing) {
        await served.stop();
        if (gone()) return;
      } else a.served = served;
    } catch (err) {
      if (gone()) return;
      actors.delete(id);
      const { code, message } = err as WireError;
      return post({ type: 'added', actor: id, error: { code: code ?? 'TRELLIS_NATS_UNAVAILABLE', message: `cannot serve ${spec.serve.subject}: ${message}` } });
    }
  }
  post({ type: 'added', actor: id });
}

port.on('message', (msg: ToWorker) => {
  if (retired) return;
  if (msg.type === 'add') return void add(msg.actor, msg.spec);
  const a = actors.get(msg.actor);
  if (msg.type === 'invoke') {
    if (!a) return post({ type: 'result', actor: msg.actor, id: msg.id, cold: false, error: { code: 'TRELLIS_NOT_FOUND', message: 'actor is unloaded' } });
    if (msg.deadlineAt !== undefined && !(msg.deadlineAt > Date.now())) {
      return post({ type: 'result', actor: a.id, id: msg.id, cold: false, error: { code: 'TRELLIS_DEADLINE_EXCEEDED', message: 'deadline exceeded while waiting for a free instance' } });
    }
    const result = watched(a, msg.id, msg.request, msg.invocationId, msg.deadlineAt, undefined, msg.traceparent);
    if (result) post({ type: 'result', actor: a.id, id: msg.id, ...result });
  } else if (msg.type === 'place') {
    if (!a) return;
    a.place = msg.place;
    while (a.idle.length > a.place) {
      a.idle.pop();
      discard(a);
    }
    void fill(a).then(() => post({ type: 'placed', actor: a.id }));
  } else if (msg.type === 'stop-serving') {
    const pending = adding.get(msg.actor);
    // Still adding: add() stops serving (or never starts) and says so when it is done.
    if (pending) return void (pending.stopServing = true);
    const served = a?.served;
    if (a) a.served = undefined;
    void (served?.stop() ?? Promise.resolve()).then(() => post({ type: 'serving-stopped', actor: msg.actor }));
  } else if (msg.type === 'remove') {
    const pending = adding.get(msg.actor);
    if (pending) pending.removed = true;
    if (!a) return;
    actors.delete(a.id);
    void a.served?.stop();
    for (const _ of a.idle.splice(0)) discard(a);
  } else {
    if (!a) return post({ type: 'bench', actor: msg.actor, id: msg.id, samplesMs: [], error: { code: 'TRELLIS_NOT_FOUND', message: 'actor is unloaded' } });
    try {
      post({ type: 'bench', actor: a.id, id: msg.id, samplesMs: bench(a, msg.request, msg.iterations, msg.cold) });
    } catch (err) {
      post({ type: 'bench', actor: a.id, id: msg.id, samplesMs: [], error: classify(err, a, undefined).failure });
    }
  }
});

post({ type: 'ready' });
