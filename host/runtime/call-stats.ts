/**
 * What a worker served from the lattice, in shared memory: cumulative counters plus a ring of
 * per-call timings, written by the worker and drained by the main thread's watchdog tick.
 *
 * Why not messages: on these machines waking another thread costs more CPU than a whole call,
 * so a report per call (or per burst) would undo the point of serving from the workers; a
 * timed report would lose what a worker served just before the watchdog terminated it. Shared
 * memory costs the worker a few stores per call and survives the worker.
 */
import { ErrorCodes } from '../../lattice/errors/index.ts';

/** A drained slice of what a worker served. */
export interface ServedBatch {
  /** Calls answered with a response. */
  ok: number;
  /** Of `ok`: responses with an HTTP status of 500 or more (failures for canary analysis). */
  serverErrors: number;
  /**
   * Of `errors`: calls whose caller had given up before they ran (the attempt or the deadline
   * had passed); the caller retried or counted them, so the canary window leaves them out.
   */
  unserved: number;
  /** Calls answered with an error, by error code. */
  errors: Record<string, number>;
  /** Receive-to-reply seconds of the calls (all of them unless the ring overflowed). */
  seconds: number[];
  coldStarts: number;
  warmCalls: number;
}

const CODES = Object.keys(ErrorCodes);
const INTERNAL = CODES.indexOf('TRELLIS_INTERNAL');
/**
 * Timings a worker can hold undrained per actor (the watchdog drains every 5-50 ms); power of
 * two. One record per actor and worker, so it is sized for a busy actor, not for thousands of
 * them: 1024 timings = 8 KiB.
 */
const RING = 1024;
// Int32 header: 0 head (worker) | 1 tail (main) | 2 ok | 3 cold | 4 warm | 5 5xx | 6 unserved
// | 7 calls recorded (so an idle record drains in one load) | 8.. one per error code.
const CALLS = 7;
const FIRST_CODE = 8;
const HEADER = FIRST_CODE + CODES.length;
const HEADER_BYTES = Math.ceil((HEADER * 4) / 8) * 8;
const SIZE = HEADER_BYTES + RING * 8;

export class CallStats {
  readonly buffer: SharedArrayBuffer;
  readonly #i32: Int32Array;
  readonly #seconds: Float64Array;
  /** Counter values at the last drain (main thread). */
  readonly #seen: Int32Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(SIZE)) {
    this.buffer = buffer;
    this.#i32 = new Int32Array(buffer, 0, HEADER);
    this.#seconds = new Float64Array(buffer, HEADER_BYTES, RING);
    this.#seen = new Int32Array(HEADER);
  }

  /**
   * Worker: count one answered call. `code` undefined = a response, with `serverError` when its
   * status is 500 or more; `cold` undefined = the actor never ran (bad request, deadline already
   * passed); `unserved` = an error for a call its caller had already given up on.
   */
  record(code: string | undefined, seconds: number, cold: boolean | undefined, serverError = false, unserved = false): void {
    const i32 = this.#i32;
    if (code === undefined) {
      Atomics.add(i32, 2, 1);
      if (serverError) Atomics.add(i32, 5, 1);
    } else {
      const index = CODES.indexOf(code);
      Atomics.add(i32, FIRST_CODE + (index < 0 ? INTERNAL : index), 1);
      if (unserved) Atomics.add(i32, 6, 1);
    }
    if (cold !== undefined) Atomics.add(i32, cold ? 3 : 4, 1);
    Atomics.add(i32, CALLS, 1);
    const head = Atomics.load(i32, 0);
    // A full ring (the main thread stalled) drops the timing; the counters above still count.
    if (((head - Atomics.load(i32, 1)) | 0) >= RING) return;
    const at = head & (RING - 1);
    this.#seconds[at] = seconds;
    Atomics.store(i32, 0, (head + 1) | 0);
  }

  /** Main thread: what was recorded since the last drain, or undefined when nothing was. */
  drain(): ServedBatch | undefined {
    const i32 = this.#i32;
    const seen = this.#seen;
    // Nothing recorded since the last drain: the common case for most actors of a large host.
    const calls = Atomics.load(i32, CALLS);
    if (calls === seen[CALLS]) return undefined;
    seen[CALLS] = calls;
    const head = Atomics.load(i32, 0);
    const tail = Atomics.load(i32, 1);
    const delta = (i: number) => {
      const now = Atomics.load(i32, i);
      const d = (now - seen[i]!) | 0;
      seen[i] = now;
      return d;
    };
    const ok = delta(2);
    const coldStarts = delta(3);
    const warmCalls = delta(4);
    const serverErrors = delta(5);
    const unserved = delta(6);
    const errors: Record<string, number> = {};
    let failed = 0;
    for (let c = 0; c < CODES.length; c++) {
      const d = delta(FIRST_CODE + c);
      if (d > 0) {
        errors[CODES[c]!] = d;
        failed += d;
      }
    }
    if (ok === 0 && failed === 0 && head === tail) return undefined;
    const seconds: number[] = [];
    for (let i = tail; i !== head; i = (i + 1) | 0) seconds.push(this.#seconds[i & (RING - 1)]!);
    Atomics.store(i32, 1, head);
    return { ok, serverErrors, unserved, errors, seconds, coldStarts, warmCalls };
  }
}
