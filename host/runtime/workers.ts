/**
 * The shared worker threads of one runtime: a fixed set (default one per CPU core), each
 * holding instances of every loaded actor and, for actors served to the lattice, one NATS
 * connection subscribed to all their queue groups. Threads are the unit of preemption: a
 * watchdog reads what every worker runs from shared memory (call-watch.ts) and terminates the
 * worker of a call that overruns (a synchronous Wasm loop cannot be interrupted from inside its
 * thread), answers that call, sends progress replies for long lattice calls, and starts a
 * replacement that loads every actor again. In-process calls posted to the lost worker that
 * had not started go back to their actor's queue; lattice calls still in its socket were not
 * taken, so their callers send them again.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { TrellisError } from '../../lattice/errors/index.ts';
import { PROGRESS_EVERY_MS, PROGRESS_FIRST_MS } from '../../lattice/wire/index.ts';
import { CallWatch, type CallSnapshot } from './call-watch.ts';
import type { ActorInit, FromWorker, HostCall, HostReply, ToWorker, WorkerInit } from './protocol.ts';

/** An in-process call posted to a worker. */
export interface Posted {
  actor: number;
  id: number;
}

/** One worker thread (replaced in place, keeping its index). */
export interface WorkerSlot {
  readonly index: number;
  worker: Worker;
  hostPort: MessagePort;
  hostSignal: Int32Array;
  /** What the worker runs right now (any call, in-process or lattice). */
  watch: CallWatch;
  /** Loaded and listening (every actor added). */
  ready: boolean;
  /** In-process calls posted to it, in order (the first may be running). */
  posted: Posted[];
  /** The lattice call that last got a progress reply, and when. */
  progressSeq: number;
  progressAt: number;
  dead: boolean;
  /** Counts the replacements of this index (messages of an old thread are ignored). */
  generation: number;
}

/** What the worker pool asks of each loaded actor (an ActorPool). */
export interface ActorClient {
  readonly executionTimeoutMs: number;
  /** What to send a (new) worker to load the actor there. */
  init(slot: WorkerSlot): ActorInit;
  message(slot: WorkerSlot, msg: FromWorker): void;
  hostCall(call: HostCall): Promise<HostReply>;
  /** Drain what the workers served (metrics). */
  collect(): void;
  /** A lattice call of this actor on `slot` has run past PROGRESS_FIRST_MS. */
  progress(reply: string): void;
  /** The watchdog claimed `call` on `slot`: answer it (the worker is being terminated). */
  overrun(slot: WorkerSlot, call: CallSnapshot): void;
  /** `slot` died: fail `running` (the in-process call it ran) with `error`; re-queue `queued`. */
  lost(slot: WorkerSlot, running: Posted | undefined, queued: Posted[], error: TrellisError): void;
  /** A worker became free (or was replaced): place waiting calls. */
  pump(): void;
}

export class WorkerPool {
  readonly slots: WorkerSlot[] = [];
  readonly #actors = new Map<number, ActorClient>();
  #nextActor = 1;
  #timer?: NodeJS.Timeout;
  #periodMs = 0;
  #closed = false;
  /** Actors with in-process calls waiting, pumped when a worker frees up. */
  readonly waiting = new Set<ActorClient>();

  constructor(
    readonly size: number,
    readonly workerUrl: URL,
    readonly logger: Logger,
    readonly onCrashError: (err: Error) => TrellisError,
  ) {
    for (let i = 0; i < size; i++) this.slots.push(this.#spawn(i, 0));
  }

  /** Register an actor; returns its number (what every message about it carries). */
  register(client: ActorClient): number {
    const id = this.#nextActor++;
    this.#actors.set(id, client);
    this.#restartTimer();
    return id;
  }

  unregister(id: number): void {
    const client = this.#actors.get(id);
    if (client) this.waiting.delete(client);
    this.#actors.delete(id);
    this.#restartTimer();
  }

  post(slot: WorkerSlot, msg: ToWorker): void {
    if (!slot.dead) slot.worker.postMessage(msg);
  }

  /**
   * When no worker is free: one busy with a short lattice call and nothing posted, so a call
   * can wait there without a wake-up from the watchdog (the main thread is not told when a
   * lattice call ends). Never one waiting on the host: it may wait for this very call.
   */
  behind(now: number): WorkerSlot | undefined {
    for (const s of this.slots) {
      if (!s.ready || s.dead || s.posted.length > 0 || s.watch.blockedOnHost()) continue;
      const call = s.watch.snapshot();
      if (call && call.jobId === 0 && now - call.startedAt < 2) return s;
    }
    return undefined;
  }

  #pumpWaiting(): void {
    for (const client of [...this.waiting]) client.pump();
  }

  /** Start the worker thread of `index`; it loads every registered actor before taking calls. */
  #spawn(index: number, generation: number): WorkerSlot {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const watch = new CallWatch();
    const init: WorkerInit = { hostPort: port2, hostSignal: signal, watch: watch.buffer, index };
    // An empty env: nothing inside the worker (guest bindings included) can read the host's.
    const worker = new Worker(this.workerUrl, { workerData: init, transferList: [port2], env: {}, stdout: false, stderr: false });
    const slot: WorkerSlot = { index, worker, hostPort: port1, hostSignal: new Int32Array(signal), watch, ready: false, posted: [], progressSeq: -1, progressAt: 0, dead: false, generation };
    worker.on('message', (msg: FromWorker) => this.#onMessage(slot, msg));
    worker.on('error', (err) => this.#replace(slot, err));
    worker.on('exit', (code) => this.#replace(slot, new Error(`worker exited with code ${code}`)));
    port1.on('message', (call: HostCall) => void this.#hostCall(slot, call));
    return slot;
  }

  #onMessage(slot: WorkerSlot, msg: FromWorker): void {
    if (slot.dead) return;
    if (msg.type === 'ready') {
      // A replacement loads every actor again (their placements, their queue groups).
      for (const [id, client] of this.#actors) this.post(slot, { type: 'add', actor: id, spec: client.init(slot) });
      slot.ready = true;
      this.#pumpWaiting();
      return;
    }
    if (msg.type === 'connection-lost') {
      this.#replace(slot, new Error('its lattice connection closed'));
      return;
    }
    if (msg.type === 'log' && msg.actor === 0) {
      const fn = msg.level === 'warn' || msg.level === 'error' ? msg.level : 'info';
      this.logger[fn]({ worker: slot.index }, msg.message);
      return;
    }
    const client = this.#actors.get(msg.actor);
    if (msg.type === 'result') {
      const i = slot.posted.findIndex((p) => p.actor === msg.actor && p.id === msg.id);
      if (i >= 0) slot.posted.splice(i, 1);
    }
    client?.message(slot, msg);
    if (msg.type === 'result') this.#pumpWaiting();
  }

  async #hostCall(slot: WorkerSlot, call: HostCall): Promise<void> {
    const client = this.#actors.get(call.actor);
    const reply: HostReply = client ? await client.hostCall(call) : { ok: false, error: 'TRELLIS_NOT_FOUND: actor is unloaded' };
    if (slot.dead) return;
    slot.hostPort.postMessage(reply);
    Atomics.store(slot.hostSignal, 0, 1);
    Atomics.notify(slot.hostSignal, 0);
  }

  /** Terminate the worker of `slot` (if it still runs) and start its replacement. */
  #replace(slot: WorkerSlot, err: Error, claimed = false): void {
    if (slot.dead) return;
    slot.dead = true;
    // The in-process call it was running, if any (a claimed one was answered already).
    const now = claimed ? undefined : slot.watch.snapshot();
    const running = now && now.jobId !== 0 ? slot.posted.find((p) => p.actor === now.actor && p.id === now.jobId) : undefined;
    const queued = slot.posted.filter((p) => p !== running);
    slot.posted = [];
    // An overrun was logged by its actor already; a crash was not.
    if (!this.#closed && !claimed) this.logger.error({ err, worker: slot.index }, 'actor worker lost: replacing it');
    const error = this.onCrashError(err);
    // Its shared memory outlives the worker: nothing it served goes uncounted.
    for (const client of this.#actors.values()) client.collect();
    const byActor = new Map<number, Posted[]>();
    for (const p of [...(running ? [running] : []), ...queued]) byActor.set(p.actor, [...(byActor.get(p.actor) ?? []), p]);
    for (const [id, client] of this.#actors) {
      const mine = byActor.get(id) ?? [];
      client.lost(
        slot,
        mine.find((p) => p === running),
        mine.filter((p) => p !== running),
        error,
      );
    }
    slot.hostPort.close();
    void slot.worker.terminate();
    if (this.#closed) return;
    this.slots[slot.index] = this.#spawn(slot.index, slot.generation + 1);
    this.#pumpWaiting();
  }

  /**
   * One timer for every actor, ticking while any is loaded: every 50 ms (first progress replies
   * go out 50-100 ms into a call, well inside a caller's 500 ms minimum attempt, and an overrun
   * ends at most 50 ms late), finer for short time limits. An idle host pays for 20 wake-ups a
   * second, not for anything per call.
   */
  #restartTimer(): void {
    let period = 0;
    for (const c of this.#actors.values()) {
      const p = Math.min(50, Math.max(5, Math.floor(c.executionTimeoutMs / 20)));
      period = period === 0 ? p : Math.min(period, p);
    }
    if (period === this.#periodMs) return;
    clearInterval(this.#timer);
    this.#periodMs = period;
    this.#timer = undefined;
    if (period === 0) return;
    this.#timer = setInterval(() => this.tick(Date.now()), period);
    this.#timer.unref();
  }

  /** Collect what the workers served, end overruns, keep long lattice calls' callers informed. */
  tick(now: number): void {
    for (const client of this.#actors.values()) client.collect();
    for (const slot of this.slots) {
      if (slot.dead) continue;
      const call = slot.watch.snapshot();
      if (!call) continue;
      const client = this.#actors.get(call.actor);
      if (now >= call.endBy) {
        if (!slot.watch.claim(call)) continue;
        client?.overrun(slot, call);
        // Answered: the posted call that ran is not failed again.
        slot.posted = slot.posted.filter((p) => !(p.actor === call.actor && p.id === call.jobId && call.jobId !== 0));
        this.#replace(slot, new Error('its call overran'), true);
      } else if (call.reply && client && now - call.startedAt >= PROGRESS_FIRST_MS) {
        if (slot.progressSeq !== call.seq || now - slot.progressAt >= PROGRESS_EVERY_MS) {
          slot.progressSeq = call.seq;
          slot.progressAt = now;
          client.progress(call.reply);
        }
      }
    }
    if (this.waiting.size > 0) this.#pumpWaiting();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.all(
      this.slots.map(async (s) => {
        s.dead = true;
        s.hostPort.close();
        await s.worker.terminate();
      }),
    );
  }
}
