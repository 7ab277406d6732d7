/**
 * Which of a host's workers are in the queue group of one actor version: Int32 [count, flag of
 * worker 0, 1, ...], shared by the main thread and every worker (ActorInit.subscribers). A worker
 * raises its flag once the server has its subscription and lowers it when it pauses, stops
 * serving the version or loses its connection; a worker pauses only while every version it
 * holds keeps another subscriber here (`leaveAll`), so no version it serves is left with none.
 *
 * Counting per version matters: a worker still loading actors, one whose add failed, or one
 * reconnecting takes no calls of the versions it has not subscribed, so a host-wide count of
 * "taking" workers let another worker pause and leave a version with no subscriber (callers
 * then got no-responders).
 *
 * Flag values: 0 out, 1 in (counted), -1 retired by the main thread (the worker was replaced;
 * the old thread may still run a moment and must not join). Whoever changes a flag from or to 1
 * changes the count once, so the count is the number of flags at 1 once each step completes.
 */
export const OUT = 0;
export const IN = 1;
export const RETIRED = -1;

export class Subscribers {
  readonly #i32: Int32Array;
  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly index: number,
  ) {
    this.#i32 = new Int32Array(buffer);
  }

  static buffer(workers: number): SharedArrayBuffer {
    return new SharedArrayBuffer(4 * (workers + 1));
  }

  count(): number {
    return Atomics.load(this.#i32, 0);
  }

  /** Whether this worker is counted. */
  joined(): boolean {
    return Atomics.load(this.#i32, this.index + 1) === IN;
  }

  /** This worker subscribed the version (the server has it). False when retired. */
  join(): boolean {
    if (Atomics.compareExchange(this.#i32, this.index + 1, OUT, IN) !== OUT) return this.joined();
    Atomics.add(this.#i32, 0, 1);
    return true;
  }

  /** This worker no longer takes the version's calls (stop, disconnect), whatever the others do. */
  out(): void {
    if (Atomics.compareExchange(this.#i32, this.index + 1, IN, OUT) === IN) Atomics.sub(this.#i32, 0, 1);
  }

  /**
   * Leave for a pause, only while another worker stays subscribed; true when it left. The count
   * is taken first (from above 1 only), so two workers pausing at once never take it to 0.
   */
  leave(): boolean {
    for (;;) {
      const n = Atomics.load(this.#i32, 0);
      if (n <= 1 || !this.joined()) return false;
      if (Atomics.compareExchange(this.#i32, 0, n, n - 1) !== n) continue;
      if (Atomics.compareExchange(this.#i32, this.index + 1, IN, OUT) === IN) return true;
      // The main thread retired this worker meanwhile and took its count already: give ours back.
      Atomics.add(this.#i32, 0, 1);
      return false;
    }
  }

  /** Main thread: the worker of this index is gone; it is not counted and cannot join again. */
  retire(): void {
    for (;;) {
      const v = Atomics.load(this.#i32, this.index + 1);
      if (v === RETIRED) return;
      if (Atomics.compareExchange(this.#i32, this.index + 1, v, RETIRED) !== v) continue;
      if (v === IN) Atomics.sub(this.#i32, 0, 1);
      return;
    }
  }

  /** Main thread: a new worker of this index starts (out, free to join). */
  reset(): void {
    Atomics.compareExchange(this.#i32, this.index + 1, RETIRED, OUT);
  }
}

/**
 * Leave every version for a pause, or none: each must keep another subscriber. On a refusal the
 * versions already left are joined again. True when all were left.
 */
export function leaveAll(versions: Iterable<Subscribers>): boolean {
  const left: Subscribers[] = [];
  for (const v of versions) {
    if (v.leave()) {
      left.push(v);
      continue;
    }
    for (const l of left) l.join();
    return false;
  }
  return true;
}
