/**
 * The scheduler of one actor on the runtime's shared workers (workers.ts). Its instances are
 * Wasm instances inside those workers, not threads: `minInstances` of them are placed warm,
 * spread over the workers; a worker without a warm one makes one when a call needs it. Calls
 * come from this process (invoke, below) and, when the actor serves the lattice, straight from
 * every worker's NATS connection. In-process calls run at most `maxConcurrency` at a time, each
 * on a free worker; the rest wait in a FIFO queue of at most 64 x maxConcurrency entries, past
 * which invoke fails at once with TRELLIS_OVERLOADED.
 */
import type { Logger } from 'pino';
import { randomUUID } from 'node:crypto';
import type { ActorRequest, ActorResponse } from '../../lattice/wire/index.ts';
import { TrellisError, fromWire, type ErrorCode, type WireError } from '../../lattice/errors/index.ts';
import type { World } from './compile.ts';
import type { ActorPolicy } from '../../lattice/policy/index.ts';
import { LimitKind, type CallSnapshot } from './call-watch.ts';
import { CallStats, type ServedBatch } from './call-stats.ts';
import type { ActorInit, FromWorker, HostCall, HostReply, ServeSpec } from './protocol.ts';
import type { FinishedSpan } from '../../lattice/telemetry/index.ts';
import type { SandboxConfig } from './wasi/index.ts';
import type { WasmModule } from './wasm-api.ts';
import type { ActorClient, Posted, WorkerPool, WorkerSlot } from './workers.ts';
import { LONG_CALL_SCORE } from './lattice-serve.ts';
import { Subscribers } from './subscribers.ts';
import { runHostCall, type HostCapabilities } from './capabilities.ts';

export { completeCapabilities, type CapabilityCall, type HostCapabilities, type HttpRequest, type KeyValueCapability } from './capabilities.ts';

/** Counters and timings of one actor. */
export interface ActorStats {
  /** Invocations that had to create an instance first. */
  coldStarts: number;
  /** Invocations served by an existing instance. */
  warmCalls: number;
  failures: number;
  /** Live Wasm instances of the actor on this runtime's workers (warm placement plus on-demand). */
  instances: number;
  /** Of those, running a call now. */
  busy: number;
  queued: number;
  /** Workers running this actor terminated by the watchdog or lost to a crash, and replaced. */
  workersReplaced: number;
}

/** What a pool needs to place an actor on the workers. */
export interface PoolSpec {
  name: string;
  /** Who the instances are, as capability calls report it. */
  actor: string;
  version: string;
  world: World;
  jsUrl: string;
  modules: Map<string, WasmModule>;
  policy: ActorPolicy;
  sandbox: SandboxConfig;
  capabilities: HostCapabilities;
  /** The signed capabilities of these instances, passed on every capability call (see CapabilityCall). */
  caps?: ReadonlySet<string>;
  logger: Logger;
  /** Serve this actor to the lattice from the workers themselves. */
  serve?: LatticeServing;
  /** Tracing on: the workers time guest runs and hand the spans here (see guest-trace.ts). */
  spans?: (spans: FinishedSpan[]) => void;
  /** How long each in-process call waited for a worker, seconds (metrics). */
  queueWait?: (seconds: number) => void;
}

/** How a pool serves the lattice: the workers' NATS subscription and who answers for them. */
export interface LatticeServing extends ServeSpec {
  /** Tell a lattice caller its call is still running (the worker is busy and cannot). */
  progress(reply: string): void;
  /** Answer a lattice call the watchdog ended (the worker is being terminated). */
  fail(reply: string, error: WireError): void;
  /** What the workers served, reported in batches (metrics). */
  record(batch: ServedBatch): void;
}

interface Job {
  id: number;
  request: ActorRequest;
  /** The invocation's id, for the capability calls it makes. */
  invocationId: string;
  /** Epoch ms (shared with the worker's clock). */
  deadlineAt: number | undefined;
  traceparent: string | undefined;
  /** performance.now() when it was queued (queue wait metric). */
  queuedAt: number;
  resolve(r: ActorResponse): void;
  reject(e: TrellisError): void;
}

/** This actor on one worker index (kept across replacements of the thread). */
interface OnWorker {
  /** The generation of the thread that has loaded the actor (-1: none yet). */
  added: number;
  loaded: Promise<WireError | undefined>;
  settle(error?: WireError): void;
  counts: Int32Array<SharedArrayBuffer>;
  stats: CallStats;
  servingStopped?: () => void;
  placed?: () => void;
  bench?: { id: number; resolve(s: number[]): void; reject(e: TrellisError): void };
}

/** Invocations allowed to wait per unit of concurrency before TRELLIS_OVERLOADED. */
const QUEUE_PER_SLOT = 64;

export class ActorPool implements ActorClient {
  #spec: PoolSpec;
  readonly #workers: WorkerPool;
  readonly #id: number;
  readonly #on: OnWorker[];
  readonly #queue: Job[] = [];
  /** In-process calls posted to workers, by job id. */
  readonly #running = new Map<number, Job>();
  /** [long-call score] shared by the workers (ActorInit.flags). */
  readonly #flags = new Int32Array(new SharedArrayBuffer(4));
  /** The workers in this version's queue group (ActorInit.subscribers). */
  readonly #subscribers: SharedArrayBuffer;
  #nextId = 1;
  #closed = false;
  /** Workers loading the actor now join its queue groups (until the pool stops serving). */
  #serving: boolean;
  readonly #counters = { coldStarts: 0, warmCalls: 0, failures: 0, workersReplaced: 0 };

  constructor(spec: PoolSpec, workers: WorkerPool) {
    this.#spec = spec;
    this.#workers = workers;
    this.#serving = spec.serve !== undefined;
    this.#subscribers = Subscribers.buffer(workers.slots.length);
    this.#on = workers.slots.map(() => this.#newOnWorker());
    this.#id = workers.register(this);
  }

  #newOnWorker(): OnWorker {
    let settle!: (error?: WireError) => void;
    const loaded = new Promise<WireError | undefined>((resolve) => (settle = resolve));
    return { added: -1, loaded, settle, counts: new Int32Array(new SharedArrayBuffer(4)), stats: new CallStats() };
  }

  get executionTimeoutMs(): number {
    return this.#spec.policy.executionTimeoutMs;
  }

  /** Warm instances placed on worker `index`: minInstances spread evenly. */
  #placement(index: number): number {
    const n = this.#workers.slots.length;
    const min = this.#spec.policy.minInstances;
    return Math.floor(min / n) + (index < min % n ? 1 : 0);
  }

  init(slot: WorkerSlot): ActorInit {
    const spec = this.#spec;
    const on = this.#on[slot.index]!;
    // A new thread starts with no instances of its own.
    on.counts = new Int32Array(new SharedArrayBuffer(4));
    // ...and is not in the queue group until it has subscribed.
    new Subscribers(this.#subscribers, slot.index).reset();
    // Only the serving fields cross to the worker (the callbacks stay here); fields added to the
    // spec (connection options) cross with them.
    let serve: ServeSpec | undefined;
    if (this.#serving && spec.serve) {
      const { progress: _p, fail: _f, record: _r, ...fields } = spec.serve;
      serve = fields;
    }
    return {
      world: spec.world,
      jsUrl: spec.jsUrl,
      modules: Object.fromEntries(spec.modules),
      sandbox: spec.sandbox,
      maxMemoryPages: spec.policy.maxMemoryPages,
      instancePerRequest: spec.policy.instancePerRequest,
      executionTimeoutMs: spec.policy.executionTimeoutMs,
      place: this.#placement(slot.index),
      validate: slot.index === 0,
      counts: on.counts.buffer,
      flags: this.#flags.buffer as SharedArrayBuffer,
      stats: on.stats.buffer,
      serve,
      subscribers: this.#subscribers,
      tracing: spec.spans ? { actor: spec.actor, version: spec.version } : undefined,
    };
  }

  /** Load the actor on every worker; fails (TRELLIS_LOAD_FAILED) when the component cannot instantiate. */
  async start(): Promise<void> {
    for (const slot of this.#workers.slots) if (slot.ready) this.#workers.post(slot, { type: 'add', actor: this.#id, spec: this.init(slot) });
    const errors = (await Promise.all(this.#on.map((o) => o.loaded))).filter((e) => e !== undefined);
    if (errors.length > 0) {
      await this.close();
      throw fromWire(errors[0]!);
    }
  }

  invoke(request: ActorRequest, deadlineMs?: number, invocationId: string = randomUUID(), traceparent?: string): Promise<ActorResponse> {
    if (this.#closed) return Promise.reject(new TrellisError('TRELLIS_NOT_FOUND', `actor ${this.#spec.name} is unloaded`));
    const { maxConcurrency } = this.#spec.policy;
    if (this.#queue.length >= maxConcurrency * QUEUE_PER_SLOT) {
      return Promise.reject(new TrellisError('TRELLIS_OVERLOADED', `actor ${this.#spec.name} is at max concurrency (${maxConcurrency}) with ${this.#queue.length} waiting`));
    }
    return new Promise((resolve, reject) => {
      const deadlineAt = deadlineMs === undefined ? undefined : Date.now() + deadlineMs;
      this.#queue.push({ id: this.#nextId++, request, invocationId, deadlineAt, traceparent, queuedAt: performance.now(), resolve, reject });
      this.pump();
    });
  }

  /** Hand queued calls to free workers (ones holding a warm instance first), up to maxConcurrency. */
  pump(): void {
    const workers = this.#workers;
    const loaded = (s: WorkerSlot) => this.#on[s.index]!.added === s.generation;
    while (this.#queue.length > 0 && this.#running.size < this.#spec.policy.maxConcurrency) {
      let slot: WorkerSlot | undefined;
      let any: WorkerSlot | undefined;
      for (const s of workers.slots) {
        if (!s.ready || s.dead || !loaded(s) || s.posted.length > 0 || s.watch.busy()) continue;
        if (Atomics.load(this.#on[s.index]!.counts, 0) > 0) {
          slot = s;
          break;
        }
        any ??= s;
      }
      slot ??= any;
      if (!slot) {
        const b = workers.behind(Date.now());
        if (b && loaded(b)) slot = b;
      }
      if (!slot) break;
      const job = this.#queue.shift()!;
      if (job.deadlineAt !== undefined && job.deadlineAt <= Date.now()) {
        // Spent its deadline waiting in the queue: fail it without costing a worker.
        this.#counters.failures++;
        job.reject(new TrellisError('TRELLIS_DEADLINE_EXCEEDED', 'deadline exceeded while waiting for a free instance'));
        continue;
      }
      this.#running.set(job.id, job);
      slot.posted.push({ actor: this.#id, id: job.id });
      this.#spec.queueWait?.((performance.now() - job.queuedAt) / 1000);
      workers.post(slot, { type: 'invoke', actor: this.#id, id: job.id, request: job.request, invocationId: job.invocationId, deadlineAt: job.deadlineAt, traceparent: job.traceparent });
    }
    if (this.#queue.length > 0) workers.waiting.add(this);
    else workers.waiting.delete(this);
  }

  /** Run `iterations` cold instantiations or warm calls directly inside one worker (bench only). */
  async bench(request: ActorRequest, iterations: number, cold: boolean): Promise<number[]> {
    const slot = this.#workers.slots.find((s) => s.ready && !s.dead && this.#on[s.index]!.added === s.generation);
    if (!slot) throw new TrellisError('TRELLIS_NOT_FOUND', `actor ${this.#spec.name} is not loaded on any worker`);
    const on = this.#on[slot.index]!;
    return new Promise<number[]>((resolve, reject) => {
      const id = this.#nextId++;
      on.bench = { id, resolve, reject };
      this.#workers.post(slot, { type: 'bench', actor: this.#id, id, request, iterations, cold });
    });
  }

  stats(): ActorStats {
    let instances = 0;
    for (const o of this.#on) instances += Atomics.load(o.counts, 0);
    let busy = 0;
    for (const s of this.#workers.slots) if (!s.dead && s.watch.snapshot()?.actor === this.#id) busy++;
    return { ...this.#counters, instances, busy, queued: this.#queue.length };
  }

  /**
   * Change the warm placement and the concurrency limit in place, keeping warm instances;
   * resolves once the new placement is warm. No queue group changes: every worker serves.
   */
  async resize(minInstances: number, maxConcurrency: number): Promise<void> {
    this.#spec = { ...this.#spec, policy: { ...this.#spec.policy, minInstances, maxConcurrency } };
    await Promise.all(
      this.#workers.slots.map((slot) => {
        const on = this.#on[slot.index]!;
        if (slot.dead || on.added !== slot.generation) return undefined;
        return this.#bounded(new Promise<void>((resolve) => ((on.placed = resolve), this.#workers.post(slot, { type: 'place', actor: this.#id, place: this.#placement(slot.index) }))), 30_000);
      }),
    );
    this.pump();
  }

  #bounded(p: Promise<unknown>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([p, new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, ms))))]).then(() => clearTimeout(timer));
  }

  /**
   * Finish the calls already queued or running, then close: a pool replaced by a new load of
   * the same actor (a policy change) hands over without failing anyone's call.
   */
  async drain(): Promise<void> {
    const giveUpAt = performance.now() + this.#spec.policy.executionTimeoutMs * 2 + 1000;
    await this.#stopServing(giveUpAt);
    while ((this.#queue.length > 0 || this.#running.size > 0 || this.stats().busy > 0) && performance.now() < giveUpAt) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await this.close();
  }

  /**
   * Close: lattice calls the workers already received are answered first (their NATS
   * subscriptions drain); in-process calls still queued or running fail as unloaded.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#stopServing(performance.now() + this.#spec.policy.executionTimeoutMs * 2 + 1000);
    const unloaded = () => new TrellisError('TRELLIS_NOT_FOUND', `actor ${this.#spec.name} is unloaded`);
    for (const job of this.#queue.splice(0)) job.reject(unloaded());
    for (const job of this.#running.values()) job.reject(unloaded());
    this.#running.clear();
    this.#collectAll();
    for (const slot of this.#workers.slots) {
      slot.posted = slot.posted.filter((p) => p.actor !== this.#id);
      this.#workers.post(slot, { type: 'remove', actor: this.#id });
      this.#on[slot.index]!.settle();
      this.#on[slot.index]!.bench?.reject(unloaded());
    }
    this.#workers.unregister(this.#id);
  }

  /** Leave the lattice: every worker drains its subscription (bounded by `giveUpAt`). */
  async #stopServing(giveUpAt: number): Promise<void> {
    if (!this.#serving) return;
    this.#serving = false;
    const stops = this.#workers.slots.map((slot) => {
      const on = this.#on[slot.index]!;
      // Every worker that was sent the add, loaded or not: one still adding subscribes when
      // its add resolves, so it is told too and answers once that subscription is gone.
      if (slot.dead || !slot.ready) return undefined;
      return new Promise<void>((resolve) => {
        on.servingStopped = resolve;
        this.#workers.post(slot, { type: 'stop-serving', actor: this.#id });
      });
    });
    await this.#bounded(Promise.all(stops), giveUpAt - performance.now());
  }

  message(slot: WorkerSlot, msg: FromWorker): void {
    const on = this.#on[slot.index]!;
    switch (msg.type) {
      case 'added':
        if (!msg.error) on.added = slot.generation;
        on.settle(msg.error);
        if (!msg.error) this.pump();
        else if (on.added !== -1) this.#spec.logger.error({ worker: slot.index, err: msg.error }, 'actor failed to load on a replacement worker');
        return;
      case 'log': {
        const l = this.#spec.logger;
        const fn = msg.level === 'trace' || msg.level === 'debug' || msg.level === 'warn' || msg.level === 'error' ? msg.level : 'info';
        // Undefined ids are left out of the line (pino drops undefined values).
        l[fn]({ guest: msg.guest, invocationId: msg.invocationId, traceId: msg.traceId, code: msg.code }, msg.message);
        return;
      }
      case 'spans':
        this.#spec.spans?.(msg.spans);
        return;
      case 'serving-stopped':
        on.servingStopped?.();
        return;
      case 'placed':
        on.placed?.();
        return;
      case 'bench':
        if (on.bench?.id === msg.id) {
          if (msg.error) on.bench.reject(fromWire(msg.error));
          else on.bench.resolve(msg.samplesMs);
          on.bench = undefined;
        }
        return;
      case 'result': {
        const job = this.#running.get(msg.id);
        if (!job) return;
        this.#running.delete(msg.id);
        if (msg.cold) this.#counters.coldStarts++;
        else this.#counters.warmCalls++;
        if (msg.error) {
          this.#counters.failures++;
          job.reject(fromWire(msg.error));
        } else job.resolve(msg.response!);
        this.pump();
        return;
      }
    }
  }

  #collectAll(): void {
    for (const on of this.#on) {
      const b = on.stats.drain();
      if (!b) continue;
      this.#counters.coldStarts += b.coldStarts;
      this.#counters.warmCalls += b.warmCalls;
      for (const n of Object.values(b.errors)) this.#counters.failures += n;
      this.#spec.serve?.record(b);
    }
  }

  collect(): void {
    this.#collectAll();
  }

  progress(reply: string): void {
    this.#spec.serve?.progress(reply);
  }

  overrun(slot: WorkerSlot, call: CallSnapshot): void {
    const code: ErrorCode = call.kind === LimitKind.Deadline ? 'TRELLIS_DEADLINE_EXCEEDED' : 'TRELLIS_TIME_LIMIT';
    const error = new TrellisError(code, code === 'TRELLIS_TIME_LIMIT' ? 'time limit exceeded' : 'deadline exceeded');
    this.#spec.logger.warn({ limitMs: this.#spec.policy.executionTimeoutMs, latticeCall: call.jobId === 0, worker: slot.index }, 'invocation overran: terminating its worker');
    this.#counters.failures++;
    // Its next calls leave the queue groups while they run (the same score a worker sets).
    Atomics.store(this.#flags, 0, LONG_CALL_SCORE);
    if (call.jobId < 0) {
      // Instantiation (a start function) overran: the load fails.
      this.#on[slot.index]!.settle({ code: 'TRELLIS_LOAD_FAILED', message: `failed to load module: instantiation did not finish within ${this.#spec.policy.executionTimeoutMs} ms` });
    } else if (call.jobId === 0) {
      if (call.reply) this.#spec.serve?.fail(call.reply, error.toJSON());
      this.#spec.serve?.record({ ok: 0, serverErrors: 0, unserved: 0, errors: { [code]: 1 }, seconds: [(Date.now() - call.startedAt) / 1000], coldStarts: 0, warmCalls: 0 });
    } else {
      const job = this.#running.get(call.jobId);
      this.#running.delete(call.jobId);
      job?.reject(error);
    }
  }

  lost(slot: WorkerSlot, running: Posted | undefined, queued: Posted[], error: TrellisError): void {
    const on = this.#on[slot.index]!;
    // Its subscriptions go with it: another worker must not pause on its account.
    new Subscribers(this.#subscribers, slot.index).retire();
    if (on.added === slot.generation) this.#counters.workersReplaced++;
    if (running) {
      const job = this.#running.get(running.id);
      this.#running.delete(running.id);
      if (job) {
        this.#counters.failures++;
        job.reject(error);
      }
    }
    // Posted behind, never started: back to the front of the queue, for another worker.
    for (const p of queued.reverse()) {
      const job = this.#running.get(p.id);
      this.#running.delete(p.id);
      if (job) this.#queue.unshift(job);
    }
    on.bench?.reject(error);
    on.bench = undefined;
    on.servingStopped?.();
    on.placed?.();
    this.pump();
  }

  hostCall(call: HostCall): Promise<HostReply> {
    const { capabilities, actor, version, policy, caps } = this.#spec;
    return runHostCall(capabilities, { actor, version, invocationId: call.invocationId, seq: call.seq, allowedHosts: policy.allowedHosts, traceparent: call.traceparent, ...(caps ? { caps } : {}) }, call, policy.executionTimeoutMs);
  }
}
