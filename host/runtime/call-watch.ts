/**
 * The shared-memory record of the call an actor worker is running, written by the worker and
 * read by the main thread's watchdog. Workers serve lattice calls straight from their own NATS
 * connection, so the main thread hears nothing when a call starts or ends: this record is how
 * it still terminates an overrunning call (a synchronous Wasm loop cannot be stopped from inside
 * its thread), sends progress replies for a long call, and knows whether a worker is free.
 *
 * Consistency is a sequence lock on one Int32: even = idle, odd = a call runs. The worker
 * writes the call's fields while the sequence is even, then makes it odd; the watchdog reads
 * the fields between two reads of the same odd sequence. A watchdog that decides to terminate
 * the call first claims it (compare-and-exchange to CLAIMED); the worker ends a call with the
 * opposite exchange, so exactly one of them answers the caller.
 */

/** How the watchdog should fail a call that overruns its end time. */
export const LimitKind = { TimeLimit: 0, Deadline: 1 } as const;
export type LimitKind = (typeof LimitKind)[keyof typeof LimitKind];

/** The watchdog owns the call: the worker must not answer it and takes no more work. */
const CLAIMED = -1;
/** Sequences wrap below 2^30, keeping their parity and never reaching CLAIMED. */
const next = (seq: number) => (seq + 1) & 0x3fffffff;
const REPLY_BYTES = 512;
// Layout (bytes): 0 seq (i32) | 8 startedAt (f64, epoch ms) | 16 endBy (f64) | 24 kind (i32)
// | 28 job id (i32, 0 = a lattice call) | 32 reply length (i32) | 36 waiting on the host (i32)
// | 40 actor (i32, the runtime's number of the actor) | 44.. reply subject (UTF-8).
const SIZE = 44 + REPLY_BYTES;

/** What the watchdog sees of a running call. */
export interface CallSnapshot {
  seq: number;
  startedAt: number;
  endBy: number;
  kind: LimitKind;
  /** The runtime job id for a call posted by the main thread; 0 for a lattice call. */
  jobId: number;
  /** Which actor runs (a worker holds many). */
  actor: number;
  /** Reply subject of a lattice call ('' when the caller wants no reply or it did not fit). */
  reply: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class CallWatch {
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #bytes: Uint8Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SIZE)) {
    this.buffer = buffer;
    this.#i32 = new Int32Array(buffer);
    this.#f64 = new Float64Array(buffer, 0, 3);
    this.#bytes = new Uint8Array(buffer, 44, REPLY_BYTES);
  }

  // Worker side.

  /** Record the call about to run. */
  begin(jobId: number, endBy: number, kind: LimitKind, reply = '', actor = 0): void {
    const seq = Atomics.load(this.#i32, 0);
    this.#i32[10] = actor;
    this.#f64[1] = Date.now();
    this.#f64[2] = endBy;
    this.#i32[6] = kind;
    this.#i32[7] = jobId;
    let length = 0;
    if (reply) {
      const { read, written } = encoder.encodeInto(reply, this.#bytes);
      if (read === reply.length) length = written;
    }
    this.#i32[8] = length;
    Atomics.store(this.#i32, 0, next(seq));
  }

  /** Mark the running call as blocked on a host call (capability, another actor) or not. */
  waitingOnHost(waiting: boolean): void {
    Atomics.store(this.#i32, 9, waiting ? 1 : 0);
  }

  /** End the running call; false when the watchdog claimed it (it answers, this worker stops). */
  end(): boolean {
    const seq = Atomics.load(this.#i32, 0);
    return seq !== CLAIMED && Atomics.compareExchange(this.#i32, 0, seq, next(seq)) === seq;
  }

  // Main-thread side.

  /** Whether a call is running (or was claimed and the worker is going away). */
  busy(): boolean {
    const seq = Atomics.load(this.#i32, 0);
    return seq === CLAIMED || (seq & 1) === 1;
  }

  /**
   * Whether the running call waits for the host: a call posted behind it could be the very
   * call it waits for (an actor calling itself, or back), so none may be.
   */
  blockedOnHost(): boolean {
    return this.busy() && Atomics.load(this.#i32, 9) === 1;
  }

  /** A consistent view of the running call, or undefined when idle (or it changed meanwhile). */
  snapshot(): CallSnapshot | undefined {
    const seq = Atomics.load(this.#i32, 0);
    if (seq === CLAIMED || (seq & 1) === 0) return undefined;
    const startedAt = this.#f64[1]!;
    const endBy = this.#f64[2]!;
    const kind = this.#i32[6] as LimitKind;
    const jobId = this.#i32[7]!;
    const actor = this.#i32[10]!;
    const length = this.#i32[8]!;
    const reply = length > 0 && length <= REPLY_BYTES ? decoder.decode(this.#bytes.slice(0, length)) : '';
    if (Atomics.load(this.#i32, 0) !== seq) return undefined;
    return { seq, startedAt, endBy, kind, jobId, actor, reply };
  }

  /** Take over the call seen in `snapshot`; false when it has ended since. */
  claim(snapshot: CallSnapshot): boolean {
    return Atomics.compareExchange(this.#i32, 0, snapshot.seq, CLAIMED) === snapshot.seq;
  }
}
