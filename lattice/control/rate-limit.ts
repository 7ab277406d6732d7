/**
 * Per-caller rate limiting and fair scheduling of control commands (pure: the clock is passed in).
 *
 * Who is the caller? NATS does not tell a subscriber who published, and any header can be forged.
 * What the server does enforce is subscribe permission: each lattice user may subscribe only under
 * its own reply-inbox prefix, `_INBOX.<lattice>.<user>.>` (subjects.inboxPrefix, granted by the
 * role permissions), and clients connect with that `inboxPrefix`. So the reply subject of a request
 * names a caller who can *receive* the answer. A request whose reply subject has no such prefix
 * (an unauthenticated lattice, a client without `inboxPrefix`, no reply at all) counts as one
 * caller, ANONYMOUS.
 *
 * What a forger (any credential allowed to publish on control subjects) can and cannot do:
 * - It can put a victim's prefix on its requests. It never receives the replies (it cannot
 *   subscribe there), so it learns nothing and cannot drive a request/reply conversation; but it
 *   does spend the victim's bucket. Such a victim can be starved: it gets TRELLIS_RATE_LIMITED
 *   (quickly, never silence, never a half-done command), and the refusals are counted per caller in
 *   host metrics. Nothing at this layer can tell the two apart; the remedy is NATS permissions:
 *   only the operator and controller roles may publish control commands, so a forger is already
 *   an insider, and its credential can be revoked.
 * - It can invent users (`_INBOX.<lattice>.<made-up>.x`). Each made-up caller gets a bucket, so
 *   the table is bounded (maxCallers); a bucket that has refilled holds no state and is dropped,
 *   and callers beyond the bound share the ANONYMOUS bucket. Callers already in the table (an
 *   active operator) keep their own bucket. What made-up callers get admitted is bounded by
 *   (maxCallers + 1) buckets; what they hold at once by perCaller slots each. With more than
 *   (concurrency / 2) / perCaller (64 by default) made-up callers all holding slow commands,
 *   they can occupy every slot the anonymous caller leaves: other callers' commands then wait for a slot (up to their time-out)
 *   instead of running at once. That is the limit of what a server-vouched but forgeable
 *   identity buys; permissions are the remedy.
 * - It cannot starve another user by flooding under its own (or the anonymous) identity: each
 *   caller's bucket limits what it gets admitted, and admitted commands run through a fair queue,
 *   round-robin over callers with bounded concurrency overall and per caller, so one caller's
 *   slow commands (actor starts of missing artifacts wait seconds) cannot hold every slot while
 *   another's wait.
 * - Malformed messages are not charged: checking one (bounded by the wire limits) costs about
 *   what refusing it would, so the limit guards the work valid commands do. A flood of garbage
 *   costs the host CPU in proportion to its volume, which only NATS permissions (who may publish
 *   on control subjects at all) and the server's own limits bound.
 */
import { TrellisError } from '../errors/index.ts';
import { intOption } from '../options/index.ts';

/** The caller of requests without a per-user reply prefix. */
export const ANONYMOUS = '(anonymous)';

/**
 * The caller a reply subject names: `<user>` for `_INBOX.<lattice>.<user>.<more>`, else ANONYMOUS.
 * At least one token must follow the user: the user may subscribe only below its prefix.
 */
export function callerOf(reply: string | undefined, lattice: string): string {
  if (!reply) return ANONYMOUS;
  const prefix = `_INBOX.${lattice}.`;
  if (!reply.startsWith(prefix)) return ANONYMOUS;
  const end = reply.indexOf('.', prefix.length);
  if (end <= prefix.length || end === reply.length - 1) return ANONYMOUS;
  const user = reply.slice(prefix.length, end);
  return user.length > 128 || /[*>\s]/.test(user) ? ANONYMOUS : user;
}

/** A token bucket: `tokens` left at time `at` (ms). */
export interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Take one token from `bucket` (refilled at `ratePerSec` up to `burst` since its last use), or
 * say how long until one is there. Mutates the bucket.
 */
export function takeToken(bucket: Bucket, now: number, ratePerSec: number, burst: number): { ok: true } | { ok: false; retryAfterMs: number } {
  const elapsed = Math.max(0, now - bucket.at);
  bucket.tokens = Math.min(burst, bucket.tokens + (elapsed * ratePerSec) / 1000);
  bucket.at = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return { ok: true };
  }
  return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) * 1000) / ratePerSec) };
}

/** Rate-limit options as users give them (flags, host options). */
export interface RateLimitOptions {
  /** Commands per second each caller is admitted, sustained. Default 100; 0 turns limiting off. */
  ratePerSec?: number;
  /** Commands a caller may send at once after being idle. Default 200. */
  burst?: number;
  /** Admitted commands of one caller waiting for a slot; more are refused. Default 256. */
  maxPending?: number;
  /** Commands running at once on a host, over all callers (a backstop: per-caller caps bind first). Default 1024. */
  concurrency?: number;
  /** Commands of one caller running at once. Default 8. */
  perCaller?: number;
  /** Callers with their own bucket; more share the anonymous one. Default 1024. */
  maxCallers?: number;
  /**
   * The anonymous caller's rate and burst. In a lattice without per-user inboxes it is every
   * participant at once (controllers, CLIs, views), so by default it gets ten times a user's
   * budget (1000/s, burst 2000), and may hold up to half of `concurrency` slots.
   */
  anonymousRatePerSec?: number;
  anonymousBurst?: number;
}

export type CompiledRateLimit = Required<RateLimitOptions>;

/** Validate rate-limit options into their complete form (once, at start). */
export function compileRateLimit(input: RateLimitOptions = {}): CompiledRateLimit {
  return {
    ratePerSec: intOption('--control-rate', input.ratePerSec ?? 100, 0, 1_000_000),
    burst: intOption('--control-burst', input.burst ?? 200, 1, 1_000_000),
    maxPending: intOption('maxPending', input.maxPending ?? 256, 1, 1_000_000),
    concurrency: intOption('concurrency', input.concurrency ?? 1024, 1, 100_000),
    perCaller: intOption('perCaller', input.perCaller ?? 8, 1, 10_000),
    maxCallers: intOption('maxCallers', input.maxCallers ?? 1024, 1, 10_000_000),
    anonymousRatePerSec: intOption('anonymousRatePerSec', input.anonymousRatePerSec ?? 10 * (input.ratePerSec ?? 100), 0, 10_000_000),
    anonymousBurst: intOption('anonymousBurst', input.anonymousBurst ?? 10 * (input.burst ?? 200), 1, 10_000_000),
  };
}

/** The stable refusal of an over-limit command. */
export function rateLimited(caller: string, retryAfterMs: number, why = 'sends commands faster than its limit'): TrellisError {
  return new TrellisError('TRELLIS_RATE_LIMITED', `caller ${caller} ${why}; retry in ${retryAfterMs} ms`, { retryAfterMs });
}

/** Token buckets per caller, bounded in number. */
export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  #sweptAt = 0;

  constructor(private readonly options: CompiledRateLimit) {}

  /** Callers holding a bucket now (for tests and metrics). */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Charge one command to `caller`: undefined when admitted, else a TRELLIS_RATE_LIMITED error to
   * answer with. Returns the caller it was charged to as well (ANONYMOUS when the table is full).
   */
  take(caller: string, now: number): { charged: string; refused?: TrellisError } {
    const { maxCallers } = this.options;
    if (this.options.ratePerSec === 0) return { charged: caller };
    let bucket = this.#buckets.get(caller);
    if (!bucket && caller !== ANONYMOUS) {
      // A sweep walks the table: under a flood of made-up callers, at most ten a second.
      if (this.#buckets.size >= maxCallers && now - this.#sweptAt >= 100) this.sweep(now);
      if (this.#buckets.size >= maxCallers) caller = ANONYMOUS;
      bucket = this.#buckets.get(caller);
    }
    const [ratePerSec, burst] = this.#budget(caller);
    if (!bucket) this.#buckets.set(caller, (bucket = { tokens: burst, at: now }));
    const taken = ratePerSec === 0 ? { ok: true as const } : takeToken(bucket, now, ratePerSec, burst);
    // Refilled buckets carry no state: drop them now and then, so idle callers cost nothing.
    if (now - this.#sweptAt > 10_000) this.sweep(now);
    return taken.ok ? { charged: caller } : { charged: caller, refused: rateLimited(caller, taken.retryAfterMs) };
  }

  /** Rate and burst of a caller. */
  #budget(caller: string): [ratePerSec: number, burst: number] {
    return caller === ANONYMOUS ? [this.options.anonymousRatePerSec, this.options.anonymousBurst] : [this.options.ratePerSec, this.options.burst];
  }

  /** Drop every bucket that has refilled (nothing is lost: a new bucket starts full). */
  sweep(now: number): void {
    this.#sweptAt = now;
    for (const [caller, b] of this.#buckets) {
      const [ratePerSec, burst] = this.#budget(caller);
      if (ratePerSec > 0 && b.tokens + ((now - b.at) * ratePerSec) / 1000 >= burst) this.#buckets.delete(caller);
    }
  }
}

/**
 * Runs admitted commands fairly: at most `concurrency` at once, at most `perCaller` of them for
 * one caller, and when a slot frees, the next caller in turn (round-robin) runs its oldest
 * command. So a caller with many slow commands (an actor start waiting for an artifact that is
 * not there holds its slot for seconds) waits behind everyone else's next one, and can never hold
 * every slot. A caller may have `maxPending` commands waiting.
 */
export class FairQueue {
  readonly #waiting = new Map<string, (() => Promise<void>)[]>();
  readonly #active = new Map<string, number>();
  /** Callers with waiting work and a free slot of their own, in turn order (no duplicates). */
  readonly #turns: string[] = [];
  readonly #inTurns = new Set<string>();
  #running = 0;

  constructor(private readonly options: Pick<CompiledRateLimit, 'concurrency' | 'maxPending' | 'perCaller'>) {}

  get running(): number {
    return this.#running;
  }

  /** Commands waiting, over all callers. */
  get waiting(): number {
    let n = 0;
    for (const q of this.#waiting.values()) n += q.length;
    return n;
  }

  /** Queue `work` for `caller`; false (nothing queued) when the caller already has maxPending waiting. */
  push(caller: string, work: () => Promise<void>): boolean {
    let queue = this.#waiting.get(caller);
    if (queue && queue.length >= this.options.maxPending) return false;
    if (!queue) this.#waiting.set(caller, (queue = []));
    queue.push(work);
    this.#offer(caller);
    this.#next();
    return true;
  }

  /** Give `caller` a turn if it has waiting work and a free slot of its own. */
  #offer(caller: string): void {
    // The anonymous caller may be every participant of the lattice: it may hold up to half of
    // all slots, and the other half stays for callers with their own identity.
    const cap = caller === ANONYMOUS ? Math.max(this.options.perCaller, this.options.concurrency >> 1) : this.options.perCaller;
    if (this.#inTurns.has(caller) || !this.#waiting.has(caller) || (this.#active.get(caller) ?? 0) >= cap) return;
    this.#inTurns.add(caller);
    this.#turns.push(caller);
  }

  #next(): void {
    while (this.#running < this.options.concurrency && this.#turns.length > 0) {
      const caller = this.#turns.shift()!;
      this.#inTurns.delete(caller);
      const queue = this.#waiting.get(caller)!;
      const work = queue.shift()!;
      if (queue.length === 0) this.#waiting.delete(caller);
      this.#active.set(caller, (this.#active.get(caller) ?? 0) + 1);
      this.#running++;
      // Back of the line while it has more: everyone else's next command goes first.
      this.#offer(caller);
      void work()
        .catch(() => {}) // work answers its own failures; the queue only schedules
        .finally(() => {
          this.#running--;
          const active = this.#active.get(caller)! - 1;
          if (active === 0) this.#active.delete(caller);
          else this.#active.set(caller, active);
          this.#offer(caller);
          this.#next();
        });
    }
  }
}
