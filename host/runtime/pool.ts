/**
 * The instance pool of one actor: up to `maxConcurrency` worker threads, each running one
 * invocation at a time on its own instance. Calls come from this process (invoke, below) and,
 * when the pool serves the lattice, straight from each worker's own NATS queue subscription.
 * A watchdog reads what every worker runs from shared memory (call-watch.ts): it terminates
 * the worker of a call that overruns (a synchronous Wasm loop cannot be interrupted from inside
 * its thread), answers that call, sends progress replies for long lattice calls, and starts a
 * replacement. In-process calls beyond `maxConcurrency` wait in a FIFO queue of at most
 * 64 x maxConcurrency entries; past that, invoke fails at once with TRELLIS_OVERLOADED.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { PROGRESS_EVERY_MS, PROGRESS_FIRST_MS, type ActorRequest, type ActorResponse } from '../../lattice/wire/index.ts';
import { TrellisError, isErrorCode, toTrellisError, type ErrorCode } from '../../lattice/errors/index.ts';
import type { World } from './compile.ts';
import type { ActorPolicy } from '../../lattice/policy/index.ts';
import { CallWatch, LimitKind, type CallSnapshot } from './call-watch.ts';
import { CallStats, type ServedBatch } from './call-stats.ts';
import type { FromWorker, HostCall, HostReply, ServeSpec, ToWorker, WireFailure, WorkerInit } from './protocol.ts';
import type { SandboxConfig } from './wasi/index.ts';
import type { WasmModule } from './wasm-api.ts';

/** Backing services of the trellis:actor capability imports, called on behalf of `actor`. */
export interface HostCapabilities {
  keyvalue: KeyValueCapability;
  /** Outbound HTTP; `allowedHosts` has already been checked. */
  httpSend(actor: string, request: HttpRequest): Promise<ActorResponse>;
  /** Invoke another actor through the lattice within `deadlineMs` (the caller's remaining budget). */
  callActor(caller: string, target: string, request: ActorRequest, deadlineMs?: number): Promise<ActorResponse>;
}

export interface KeyValueCapability {
  get(actor: string, key: string): Promise<Uint8Array | undefined>;
  set(actor: string, key: string, value: Uint8Array): Promise<void>;
  delete(actor: string, key: string): Promise<void>;
  exists(actor: string, key: string): Promise<boolean>;
  keys(actor: string, prefix: string): Promise<string[]>;
  increment(actor: string, key: string, delta: bigint): Promise<bigint>;
}

/** An outbound HTTP request of an actor (absolute URL). */
export interface HttpRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array;
}

function notLinked(what: string) {
  return (actor: string): never => {
    throw new TrellisError('TRELLIS_NOT_LINKED', `no link for ${what} on actor ${actor}`);
  };
}

/** Capabilities with every missing piece failing with TRELLIS_NOT_LINKED. */
export function completeCapabilities(partial: Partial<HostCapabilities> = {}): HostCapabilities {
  const kv = notLinked('keyvalue');
  return {
    keyvalue: partial.keyvalue ?? { get: kv, set: kv, delete: kv, exists: kv, keys: kv, increment: kv },
    httpSend: partial.httpSend ?? notLinked('http-client'),
    callActor: partial.callActor ?? notLinked('actors'),
  };
}

/** Counters and timings of one actor. */
export interface ActorStats {
  /** Invocations that had to create an instance (or a worker) first. */
  coldStarts: number;
  /** Invocations served by an existing instance. */
  warmCalls: number;
  failures: number;
  /** Live worker threads (each holds at most one instance). */
  instances: number;
  busy: number;
  queued: number;
  /** Workers terminated by the watchdog or lost to a crash, and replaced. */
  workersReplaced: number;
}

interface Job {
  id: number;
  request: ActorRequest;
  /** Epoch ms (shared with the worker's clock). */
  deadlineAt: number | undefined;
  resolve(r: ActorResponse): void;
  reject(e: TrellisError): void;
}

interface Slot {
  worker: Worker;
  hostPort: MessagePort;
  hostSignal: Int32Array;
  /** What the worker runs right now (any call, in-process or lattice). */
  watch: CallWatch;
  /** What the worker served from the lattice. */
  served: CallStats;
  ready: Promise<void>;
  /** The in-process call posted to this worker (it may wait behind a lattice call there). */
  job?: Job;
  /**
   * An in-process call posted behind `job` when every worker is busy: the worker starts it the
   * moment `job` ends, without sleeping and being woken again (waking a thread costs more than
   * a small call on these machines).
   */
  next?: Job;
  /** The lattice call that last got a progress reply, and when. */
  progressSeq: number;
  progressAt: number;
  /** Resolves when the worker has stopped serving the lattice. */
  servingStopped?: () => void;
  /** Being removed by a resize: takes no new in-process calls. */
  leaving?: boolean;
  /** The next job on this slot is a cold start (new worker). */
  fresh: boolean;
  /** Pending bench request. */
  bench?: { id: number; resolve(s: number[]): void; reject(e: TrellisError): void };
  dead: boolean;
}

/** What a pool needs to start workers. */
export interface PoolSpec {
  name: string;
  world: World;
  jsUrl: string;
  modules: Map<string, WasmModule>;
  policy: ActorPolicy;
  sandbox: SandboxConfig;
  capabilities: HostCapabilities;
  logger: Logger;
  /** The bundled worker script (see worker-script.ts). */
  workerUrl: URL;
  /** Serve this actor to the lattice from the workers themselves. */
  serve?: LatticeServing;
}

/** How a pool serves the lattice: the workers' NATS subscription and who answers for them. */
export interface LatticeServing extends ServeSpec {
  /** Tell a lattice caller its call is still running (the worker is busy and cannot). */
  progress(reply: string): void;
  /** Answer a lattice call the watchdog ended (the worker is being terminated). */
  fail(reply: string, error: WireFailure): void;
  /** What the workers served, reported in batches (metrics). */
  record(batch: ServedBatch): void;
}

/**
 * One timer for every pool of the process, ticking while any pool lives: every 50 ms (first
 * progress replies go out 50-100 ms into a call, well inside a caller's 500 ms minimum attempt,
 * and an overrun ends at most 50 ms late), finer for short time limits. An idle host pays for
 * 20 wake-ups a second, not for anything per call.
 */
class Watchdog {
  readonly #pools = new Map<ActorPool, number>();
  #timer?: NodeJS.Timeout;
  #periodMs = 0;

  add(pool: ActorPool, executionTimeoutMs: number): void {
    this.#pools.set(pool, Math.min(50, Math.max(5, Math.floor(executionTimeoutMs / 20))));
    this.#restart();
  }

  remove(pool: ActorPool): void {
    if (this.#pools.delete(pool)) this.#restart();
  }

  #restart(): void {
    const period = this.#pools.size === 0 ? 0 : Math.min(...this.#pools.values());
    if (period === this.#periodMs) return;
    clearInterval(this.#timer);
    this.#periodMs = period;
    this.#timer = undefined;
    if (period === 0) return;
    this.#timer = setInterval(() => {
      const now = Date.now();
      for (const pool of this.#pools.keys()) pool.tick(now);
    }, period);
    this.#timer.unref();
  }
}

const watchdog = new Watchdog();
/** Workers started by this process: numbers each one's NATS connection name uniquely. */
let workersStarted = 0;

/** Longest a new worker may take to load and instantiate the component. */
const INIT_TIMEOUT_MS = 30_000;
/** Invocations allowed to wait per unit of concurrency before TRELLIS_OVERLOADED. */
const QUEUE_PER_SLOT = 64;

function fail(f: WireFailure): TrellisError {
  return new TrellisError(isErrorCode(f.code) ? f.code : 'TRELLIS_INTERNAL', f.message);
}

/** The workers of one actor. */
export class ActorPool {
  #spec: PoolSpec;
  readonly #slots = new Set<Slot>();
  readonly #idle: Slot[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;
  /** Workers started now join the lattice (until the pool stops serving). */
  #serving: boolean;
  readonly #counters = { coldStarts: 0, warmCalls: 0, failures: 0, workersReplaced: 0 };

  constructor(spec: PoolSpec) {
    this.#spec = spec;
    this.#serving = spec.serve !== undefined;
  }

  /** Start the pre-warmed workers; fails (TRELLIS_LOAD_FAILED) when the component cannot instantiate. */
  async start(): Promise<void> {
    watchdog.add(this, this.#spec.policy.executionTimeoutMs);
    try {
      await this.#warmUp();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async #warmUp(): Promise<void> {
    // One worker first, so a broken component fails the load without starting the others.
    const first = this.#spawn();
    await first.ready;
    first.fresh = false;
    this.#idle.push(first);
    const more = Array.from({ length: Math.max(0, this.#floor() - 1) }, () => this.#spawn());
    await Promise.all(more.map((s) => s.ready));
    for (const s of more) {
      s.fresh = false;
      this.#idle.push(s);
    }
    if (this.#floor() === 0) await this.#retire(first);
  }

  invoke(request: ActorRequest, deadlineMs?: number): Promise<ActorResponse> {
    if (this.#closed) return Promise.reject(new TrellisError('TRELLIS_NOT_FOUND', `actor ${this.#spec.name} is unloaded`));
    const { maxConcurrency } = this.#spec.policy;
    const waiting = this.#waiting();
    if (waiting >= maxConcurrency * QUEUE_PER_SLOT) {
      return Promise.reject(new TrellisError('TRELLIS_OVERLOADED', `actor ${this.#spec.name} is at max concurrency (${maxConcurrency}) with ${waiting} waiting`));
    }
    return new Promise((resolve, reject) => {
      const deadlineAt = deadlineMs === undefined ? undefined : Date.now() + deadlineMs;
      this.#queue.push({ id: this.#nextId++, request, deadlineAt, resolve, reject });
      this.#pump();
    });
  }

  /** Run `iterations` cold instantiations or warm calls directly inside one worker (bench only). */
  async bench(request: ActorRequest, iterations: number, cold: boolean): Promise<number[]> {
    const slot = this.#idle.pop() ?? this.#spawn();
    await slot.ready;
    try {
      return await new Promise<number[]>((resolve, reject) => {
        const id = this.#nextId++;
        slot.bench = { id, resolve, reject };
        slot.worker.postMessage({ type: 'bench', id, request, iterations, cold } satisfies ToWorker);
      });
    } finally {
      slot.bench = undefined;
      slot.fresh = false;
      if (!slot.dead) this.#idle.push(slot);
      this.#pump();
    }
  }

  stats(): ActorStats {
    const busy = [...this.#slots].filter((s) => s.job || s.watch.busy()).length;
    return {
      ...this.#counters,
      instances: this.#slots.size,
      busy,
      queued: this.#waiting(),
    };
  }

  /**
   * Change how many instances this pool runs, keeping the ones that stay warm. New workers
   * join the lattice before this resolves; removed ones leave the queue group, finish what
   * NATS gave them and any in-process call, and go. Idle workers are removed first.
   */
  async resize(minInstances: number, maxConcurrency: number): Promise<void> {
    this.#spec = { ...this.#spec, policy: { ...this.#spec.policy, minInstances, maxConcurrency } };
    const added = this.#replenish();
    await Promise.all(added.map((s) => s.ready.catch(() => {})));
    const failed = added.find((s) => s.dead);
    if (failed) throw new TrellisError('TRELLIS_LOAD_FAILED', `actor ${this.#spec.name}: a new instance failed to start`);
    const staying = [...this.#slots].filter((s) => !s.leaving);
    // Serving: exactly one worker per instance; otherwise at most maxConcurrency.
    const keep = this.#serving ? maxConcurrency : Math.min(maxConcurrency, Math.max(minInstances, staying.length));
    const surplus = staying.length - keep;
    if (surplus <= 0) return;
    // Idle and free first, then idle, then the rest.
    const rank = (s: Slot) => (s.job ? 2 : s.watch.busy() ? 1 : 0);
    const leaving = staying.sort((a, b) => rank(a) - rank(b)).slice(0, surplus);
    const giveUpAt = performance.now() + this.#spec.policy.executionTimeoutMs * 2 + 1000;
    await Promise.all(leaving.map((slot) => this.#leave(slot, giveUpAt)));
  }

  #leavingCount(): number {
    let n = 0;
    for (const s of this.#slots) if (s.leaving) n++;
    return n;
  }

  /** Take one worker out: out of the queue group, then out of the pool once it is free. */
  async #leave(slot: Slot, giveUpAt: number): Promise<void> {
    slot.leaving = true;
    const i = this.#idle.indexOf(slot);
    if (i >= 0) this.#idle.splice(i, 1);
    await slot.ready.catch(() => {});
    if (this.#serving && !slot.dead) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          slot.servingStopped = resolve;
          slot.worker.postMessage({ type: 'stop-serving' } satisfies ToWorker);
        }),
        new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, giveUpAt - performance.now())))),
      ]);
      clearTimeout(timer);
    }
    while (!slot.dead && (slot.job || slot.next || slot.watch.busy()) && performance.now() < giveUpAt) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await this.#retire(slot, new TrellisError('TRELLIS_NOT_FOUND', `actor ${this.#spec.name}: instance removed by a resize`));
  }

  /**
   * Finish the calls already queued or running, then close: a pool replaced by a new load of
   * the same actor (a policy change) hands over without failing anyone's call.
   */
  async drain(): Promise<void> {
    const giveUpAt = performance.now() + this.#spec.policy.executionTimeoutMs * 2 + 1000;
    await this.#stopServing(giveUpAt);
    while ((this.#queue.length > 0 || [...this.#slots].some((s) => s.job || s.next || s.watch.busy())) && performance.now() < giveUpAt) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await this.close();
  }

  /**
   * Close: lattice calls the workers already received are answered first (their NATS
   * subscriptions drain); in-process calls still queued or running fail as unloaded.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#stopServing(performance.now() + this.#spec.policy.executionTimeoutMs * 2 + 1000);
    watchdog.remove(this);
    for (const job of this.#queue.splice(0)) job.reject(new TrellisError('TRELLIS_NOT_FOUND', `actor ${this.#spec.name} is unloaded`));
    await Promise.all([...this.#slots].map((s) => this.#retire(s, new TrellisError('TRELLIS_NOT_FOUND', `actor ${this.#spec.name} is unloaded`))));
  }

  /** Leave the lattice: every worker drains its subscription (bounded by `giveUpAt`). */
  async #stopServing(giveUpAt: number): Promise<void> {
    if (!this.#serving) return;
    this.#serving = false;
    const stops = [...this.#slots].map(
      (slot) =>
        new Promise<void>((resolve) => {
          slot.servingStopped = resolve;
          slot.ready.then(
            () => (slot.dead ? resolve() : slot.worker.postMessage({ type: 'stop-serving' } satisfies ToWorker)),
            () => resolve(),
          );
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(stops), new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, giveUpAt - performance.now()))))]);
    clearTimeout(timer);
  }

  /**
   * Hand queued calls to workers: a free one first, then a new one, then one busy with a lattice
   * call (the call waits there behind it rather than in this queue).
   */
  #pump(): void {
    while (this.#queue.length > 0) {
      let slot: Slot | undefined;
      for (let i = this.#idle.length - 1; i >= 0; i--) {
        if (!this.#idle[i]!.watch.busy()) {
          slot = this.#idle.splice(i, 1)[0];
          break;
        }
      }
      if (!slot && this.#slots.size - this.#leavingCount() < this.#spec.policy.maxConcurrency) slot = this.#spawn();
      // Behind a running call, but never one waiting on the host: it may wait for this call.
      if (!slot) {
        const i = this.#idle.findIndex((s) => !s.watch.blockedOnHost());
        if (i >= 0) slot = this.#idle.splice(i, 1)[0];
      }
      if (!slot) {
        let behind: Slot | undefined;
        for (const s of this.#slots) if (s.job && !s.next && !s.leaving && !s.dead && !s.watch.blockedOnHost()) behind ??= s;
        if (!behind) return; // the watchdog tick pumps again
        this.#post(behind, (behind.next = this.#queue.shift()!));
        continue;
      }
      this.#run(slot, this.#queue.shift()!);
    }
  }

  /** Calls not started yet: queued here, or prefetched behind a running call. */
  #waiting(): number {
    let n = this.#queue.length;
    for (const s of this.#slots) if (s.next) n++;
    return n;
  }

  /** Post `job` to the slot's worker once it is ready (its `job` or `next`). */
  #post(slot: Slot, job: Job): void {
    slot.ready.then(
      () => {
        if (slot.dead || (slot.job !== job && slot.next !== job)) return;
        slot.worker.postMessage({ type: 'invoke', id: job.id, request: job.request, deadlineAt: job.deadlineAt } satisfies ToWorker);
      },
      () => {}, // a worker that fails to start settles its calls in #retire
    );
  }

  /** The slot's current call has ended: its prefetched one (already posted) becomes current. */
  #advance(slot: Slot): void {
    slot.job = slot.next;
    slot.next = undefined;
    if (!slot.job && !slot.dead && !slot.leaving) this.#idle.push(slot);
  }

  #run(slot: Slot, job: Job): void {
    if (job.deadlineAt !== undefined && job.deadlineAt <= Date.now()) {
      // Spent its deadline waiting in the queue: fail it without costing the worker.
      this.#counters.failures++;
      job.reject(new TrellisError('TRELLIS_DEADLINE_EXCEEDED', 'deadline exceeded while waiting for a free instance'));
      if (!slot.dead && !slot.leaving) this.#idle.push(slot);
      return;
    }
    slot.job = job;
    this.#post(slot, job);
  }

  /** Take in what a worker served from the lattice (counters, stats, metrics). */
  #collect(slot: Slot): void {
    const b = slot.served.drain();
    if (!b) return;
    this.#counters.coldStarts += b.coldStarts;
    this.#counters.warmCalls += b.warmCalls;
    for (const n of Object.values(b.errors)) this.#counters.failures += n;
    this.#spec.serve?.record(b);
  }

  /**
   * Watchdog tick: collect what the workers served, end overruns, keep long lattice calls'
   * callers informed, place waiting calls.
   */
  tick(now: number): void {
    for (const slot of this.#slots) {
      if (slot.dead) continue;
      if (this.#spec.serve) this.#collect(slot);
      const call = slot.watch.snapshot();
      if (!call) continue;
      if (now >= call.endBy) {
        if (slot.watch.claim(call)) this.#overrun(slot, call);
      } else if (call.reply && this.#spec.serve && now - call.startedAt >= PROGRESS_FIRST_MS) {
        if (slot.progressSeq !== call.seq || now - slot.progressAt >= PROGRESS_EVERY_MS) {
          slot.progressSeq = call.seq;
          slot.progressAt = now;
          this.#spec.serve.progress(call.reply);
        }
      }
    }
    if (this.#queue.length > 0) this.#pump();
  }

  /** The watchdog claimed `call` from its worker: answer it, terminate the worker, replace it. */
  #overrun(slot: Slot, call: CallSnapshot): void {
    const code: ErrorCode = call.kind === LimitKind.Deadline ? 'TRELLIS_DEADLINE_EXCEEDED' : 'TRELLIS_TIME_LIMIT';
    const error = new TrellisError(code, code === 'TRELLIS_TIME_LIMIT' ? 'time limit exceeded' : 'deadline exceeded');
    this.#spec.logger.warn({ limitMs: this.#spec.policy.executionTimeoutMs, lattice: call.jobId === 0 }, `invocation overran: terminating its worker`);
    this.#counters.workersReplaced++;
    if (call.jobId === 0) {
      // A lattice call: answer its caller here. An in-process call posted behind it never ran.
      this.#counters.failures++;
      if (call.reply) this.#spec.serve?.fail(call.reply, error.toJSON());
      this.#spec.serve?.record({ ok: 0, errors: { [code]: 1 }, seconds: [(Date.now() - call.startedAt) / 1000], coldStarts: 0, warmCalls: 0 });
      // In-process calls posted behind it never ran: back to the front of the queue.
      for (const waiting of [slot.next, slot.job]) if (waiting) this.#queue.unshift(waiting);
      slot.job = slot.next = undefined;
    } else if (slot.next) {
      this.#queue.unshift(slot.next);
      slot.next = undefined;
    }
    void this.#retire(slot, error);
    this.#replenish();
  }

  /**
   * Workers to keep: `minInstances`, or every instance while serving the lattice, where only a
   * live worker is a member of the queue group (a call never starts a worker from NATS).
   */
  #floor(): number {
    return this.#serving ? this.#spec.policy.maxConcurrency : this.#spec.policy.minInstances;
  }

  /**
   * Start workers up to the floor (after a worker was lost, or a resize) and serve waiting
   * calls; returns the new workers, each idle and in the pool once its `ready` settles.
   */
  #replenish(): Slot[] {
    if (this.#closed) return [];
    const added: Slot[] = [];
    while (this.#slots.size - this.#leavingCount() < this.#floor()) {
      const s = this.#spawn();
      added.push(s);
      s.ready.then(
        () => {
          if (s.dead || s.job) return;
          s.fresh = false;
          this.#idle.push(s);
          this.#pump();
        },
        () => {},
      );
    }
    this.#pump();
    return added;
  }

  /** Remove a slot, failing its job with `err` if it has one. */
  async #retire(slot: Slot, err?: TrellisError): Promise<void> {
    if (slot.dead) return;
    slot.dead = true;
    slot.servingStopped?.();
    // Its shared memory outlives the worker: nothing it served goes uncounted.
    if (this.#spec.serve) this.#collect(slot);
    this.#slots.delete(slot);
    const i = this.#idle.indexOf(slot);
    if (i >= 0) this.#idle.splice(i, 1);
    if (slot.job && err) {
      this.#counters.failures++;
      slot.job.reject(err);
    }
    // A prefetched call never started: another worker takes it (or it fails with the pool).
    if (slot.next) {
      if (this.#closed && err) slot.next.reject(err);
      else this.#queue.unshift(slot.next);
    }
    slot.job = slot.next = undefined;
    if (slot.bench && err) slot.bench.reject(err);
    slot.hostPort.close();
    await slot.worker.terminate();
  }

  #spawn(): Slot {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const watch = new CallWatch();
    const served = new CallStats();
    const spec = this.#spec;
    const n = ++workersStarted;
    // Only the serving fields cross to the worker (the callbacks stay here).
    const serve: ServeSpec | undefined =
      this.#serving && spec.serve
        ? {
            servers: spec.serve.servers,
            connectionName: `${spec.serve.connectionName}#${n}`,
            subject: spec.serve.subject,
            queue: spec.serve.queue,
            hostId: spec.serve.hostId,
            version: spec.serve.version,
          }
        : undefined;
    const init: WorkerInit = {
      world: spec.world,
      jsUrl: spec.jsUrl,
      modules: Object.fromEntries(spec.modules),
      sandbox: spec.sandbox,
      maxMemoryPages: spec.policy.maxMemoryPages,
      instancePerRequest: spec.policy.instancePerRequest,
      hostPort: port2,
      hostSignal: signal,
      watch: watch.buffer,
      stats: served.buffer,
      executionTimeoutMs: spec.policy.executionTimeoutMs,
      serve,
    };
    // An empty env: nothing inside the worker (guest bindings included) can read the host's.
    const worker = new Worker(spec.workerUrl, { workerData: init, transferList: [port2], env: {}, stdout: false, stderr: false });
    let readyResolve!: () => void;
    let readyReject!: (e: TrellisError) => void;
    const slot: Slot = {
      worker,
      hostPort: port1,
      hostSignal: new Int32Array(signal),
      watch,
      served,
      progressSeq: -1,
      progressAt: 0,
      ready: new Promise<void>((res, rej) => ((readyResolve = res), (readyReject = rej))),
      fresh: true,
      dead: false,
    };
    slot.ready.catch(() => {});
    // A start function that never returns would otherwise hang the load (or the queued call).
    const initTimer = setTimeout(() => {
      const err = new TrellisError('TRELLIS_LOAD_FAILED', `failed to load module: instantiation did not finish within ${INIT_TIMEOUT_MS} ms`);
      readyReject(err);
      void this.#retire(slot, err);
    }, INIT_TIMEOUT_MS);
    slot.ready.then(
      () => clearTimeout(initTimer),
      () => clearTimeout(initTimer),
    );
    this.#slots.add(slot);
    worker.on('message', (msg: FromWorker) => this.#onMessage(slot, msg, readyResolve, readyReject));
    worker.on('error', (err) => this.#onCrash(slot, err, readyReject));
    worker.on('exit', (code) => this.#onCrash(slot, new Error(`worker exited with code ${code}`), readyReject));
    port1.on('message', (call: HostCall) => void this.#hostCall(slot, call));
    return slot;
  }

  #onCrash(slot: Slot, err: Error, readyReject: (e: TrellisError) => void): void {
    if (slot.dead) return;
    const oom = /memory/i.test(err.message) && /out of|allocation/i.test(err.message);
    const e = new TrellisError(oom ? 'TRELLIS_OUT_OF_MEMORY' : 'TRELLIS_WASM_TRAP', oom ? 'out of memory' : `wasm trap: worker crashed: ${err.message}`, { cause: err });
    readyReject(new TrellisError('TRELLIS_LOAD_FAILED', `failed to load module: ${err.message}`, { cause: err }));
    this.#spec.logger.error({ err }, 'actor worker crashed');
    this.#counters.workersReplaced++;
    void this.#retire(slot, e);
    this.#replenish();
  }

  #onMessage(slot: Slot, msg: FromWorker, readyResolve: () => void, readyReject: (e: TrellisError) => void): void {
    switch (msg.type) {
      case 'ready':
        readyResolve();
        return;
      case 'init-failed': {
        const err = fail(msg.error);
        readyReject(err);
        const job = slot.job;
        void this.#retire(slot, err);
        if (job) this.#replenish();
        return;
      }
      case 'log':
        this.#log(msg.level, msg.message, msg.guest);
        return;
      case 'serving-stopped':
        slot.servingStopped?.();
        return;
      case 'bench':
        if (slot.bench?.id === msg.id) {
          if (msg.error) slot.bench.reject(fail(msg.error));
          else slot.bench.resolve(msg.samplesMs);
        }
        return;
      case 'result': {
        const job = slot.job;
        if (!job || job.id !== msg.id) return;
        this.#advance(slot);
        if (msg.cold || slot.fresh) this.#counters.coldStarts++;
        else this.#counters.warmCalls++;
        slot.fresh = false;
        if (msg.error) {
          this.#counters.failures++;
          job.reject(fail(msg.error));
        } else job.resolve(msg.response!);
        this.#pump();
        return;
      }
    }
  }

  #log(level: string, message: string, guest: boolean): void {
    const l = this.#spec.logger;
    const fn = level === 'trace' || level === 'debug' || level === 'warn' || level === 'error' ? level : 'info';
    l[fn]({ guest }, message);
  }

  async #hostCall(slot: Slot, call: HostCall): Promise<void> {
    const { capabilities: caps, name } = this.#spec;
    let reply: HostReply;
    try {
      let value: unknown;
      if (call.op === 'keyvalue') {
        const kv = caps.keyvalue as unknown as Record<string, (actor: string, ...a: unknown[]) => Promise<unknown>>;
        const method = call.method!;
        if (!['get', 'set', 'delete', 'exists', 'keys', 'increment'].includes(method)) throw new TrellisError('TRELLIS_BAD_REQUEST', `unknown keyvalue op ${method}`);
        value = await kv[method]!.call(caps.keyvalue, name, ...call.args);
      } else if (call.op === 'httpSend') value = await caps.httpSend(name, call.args[0] as HttpRequest);
      else {
        // The callee gets what is left of the caller's own budget (its deadline or time limit).
        const remainingMs = call.remainingMs ?? this.#spec.policy.executionTimeoutMs;
        value = await caps.callActor(name, call.args[0] as string, call.args[1] as ActorRequest, remainingMs);
      }
      reply = { ok: true, value };
    } catch (err) {
      const e = toTrellisError(err);
      reply = { ok: false, error: `${e.code}: ${e.message}` };
    }
    if (slot.dead) return;
    slot.hostPort.postMessage(reply);
    Atomics.store(slot.hostSignal, 0, 1);
    Atomics.notify(slot.hostSignal, 0);
  }
}
