/**
 * Increments of one hot key, coalesced and idempotent per invocation.
 *
 * Every increment is a read and a compare-and-set on the key's last revision, so n concurrent
 * increments of one key, each on its own, cost O(n²) round trips: each round has one winner
 * and n-1 conflicts that read again. Here the increments of one key that arrive while a write
 * is under way wait, and go together as one batch: one read, one compare-and-set (retried as a
 * whole on a conflict with another provider process), each caller getting its own value
 * (the stored value plus the deltas before it in the batch, its own included).
 *
 * Idempotent per invocation: every increment carries the id of the invocation that made it and
 * its sequence number within that invocation (a retried invocation repeats both). The batch's
 * write records, in a header of the stored message, the (invocation, seq) refs it applied with
 * their results, keeping the most recent MAX_APPLIED of the key; an increment whose ref is
 * there, or in the batch under way, answers the recorded value and is not applied again. So a
 * retry after a host died mid-call (its increment applied, its reply lost) counts once, as long
 * as fewer than MAX_APPLIED other increments of that key came in between. JetStream's own
 * de-duplication (Nats-Msg-Id) cannot do this: a coalesced batch is one message for many ids.
 *
 * The value stays the plain decimal text in the message body, so `get` reads it as before.
 */
import { createHash } from 'node:crypto';
import { headers as natsHeaders, type JetStreamClient, type StoredMsg } from 'nats';
import { TrellisError, isJetStreamConflict } from '../../lattice/errors/index.ts';
import type { InvocationRef } from '../../lattice/wire/index.ts';

/** The header listing the refs the key's recent increments applied: `ref=value ref=value ...`, newest first. */
export const APPLIED_HEADER = 'Trellis-Applied';
/** How many applied refs a key remembers: the window in which a retried increment counts once. */
export const MAX_APPLIED = 512;
/** Compare-and-set rounds a batch may lose to other provider processes before it gives up. */
const MAX_ROUNDS = 1000;

/**
 * The compact, stable ref of an invocation's call: 60 bits of a hash of the invocation id
 * (fixed length whatever the id) and the sequence number.
 */
export function refOf(invocation: InvocationRef): string {
  return `${createHash('sha256').update(invocation.id).digest('base64url').slice(0, 10)}.${invocation.seq.toString(36)}`;
}

/** The applied refs in a header value, ref → value, in order (newest first). */
export function parseApplied(header: string | undefined): Map<string, string> {
  const applied = new Map<string, string>();
  if (!header) return applied;
  for (const item of header.split(' ')) {
    const eq = item.indexOf('=');
    if (eq > 0 && !applied.has(item.slice(0, eq))) applied.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return applied;
}

/** The header value for `added` (newest last, as applied) on top of `previous`, at most `max` refs. */
export function formatApplied(added: readonly [string, string][], previous: ReadonlyMap<string, string>, max = MAX_APPLIED): string {
  const out: string[] = [];
  for (let i = added.length - 1; i >= 0 && out.length < max; i--) out.push(`${added[i]![0]}=${added[i]![1]}`);
  for (const [ref, value] of previous) {
    if (out.length >= max) break;
    out.push(`${ref}=${value}`);
  }
  return out.join(' ');
}

/** One increment waiting for its batch. */
export interface Increment {
  delta: bigint;
  ref?: string;
}

/**
 * Apply a batch on top of `current`: each increment's result in order, the new value, and the
 * refs newly applied. An increment whose ref was applied already (recorded, or earlier in this
 * batch) gets its recorded value and changes nothing.
 */
export function applyBatch(current: bigint, applied: ReadonlyMap<string, string>, batch: readonly Increment[]): { results: string[]; next: bigint; added: [string, string][] } {
  let next = current;
  const results: string[] = [];
  const added: [string, string][] = [];
  const inBatch = new Map<string, string>();
  for (const inc of batch) {
    const seen = inc.ref === undefined ? undefined : (inBatch.get(inc.ref) ?? applied.get(inc.ref));
    if (seen !== undefined) {
      results.push(seen);
      continue;
    }
    next += inc.delta;
    const value = String(next);
    results.push(value);
    if (inc.ref !== undefined) {
      inBatch.set(inc.ref, value);
      added.push([inc.ref, value]);
    }
  }
  return { results, next, added };
}

interface Waiting extends Increment {
  resolve(value: string): void;
  reject(err: unknown): void;
}

/** Where one bucket's keys live in its stream. */
export interface BucketStream {
  js: JetStreamClient;
  /** Subject of a key: this prefix plus the key. */
  subjectPrefix: string;
  /** The last message on a subject (headers included); fails with code '404' when it has none. */
  lastMessage(subject: string): Promise<StoredMsg>;
}

const utf8 = new TextDecoder();
const INTEGER = /^-?\d+$/;

/** A key's state as this provider last wrote it: what the next batch builds on without a read. */
interface Known {
  seq: number;
  value: bigint;
  applied: Map<string, string>;
}

/** Keys whose last write this provider remembers (a hot key then costs one write per batch). */
const KNOWN_KEYS = 10_000;

/** Coalesces the increments of each key of one bucket (see the top of this file). */
export class IncrementBatcher {
  private readonly keys = new Map<string, { queue: Waiting[]; running: boolean }>();
  /**
   * The last write of each key, when it was this provider's: the next batch compares-and-sets
   * on it directly. Another writer (a second provider process, a set, a delete) makes that
   * write fail with wrong-last-sequence, and the batch reads the key and tries again, so a stale
   * entry costs one round trip and never a wrong value.
   */
  private readonly known = new Map<string, Known>();

  constructor(private readonly bucket: BucketStream) {}

  /** Add `delta` to `key` once per `invocation` (when given); resolves with the key's new value, decimal. */
  increment(key: string, delta: bigint, invocation?: InvocationRef): Promise<string> {
    let state = this.keys.get(key);
    if (!state) this.keys.set(key, (state = { queue: [], running: false }));
    const ref = invocation ? refOf(invocation) : undefined;
    const promise = new Promise<string>((resolve, reject) => state.queue.push({ delta, ref, resolve, reject }));
    if (!state.running) void this.drain(key, state);
    return promise;
  }

  private async drain(key: string, state: { queue: Waiting[]; running: boolean }): Promise<void> {
    state.running = true;
    while (state.queue.length > 0) {
      // At most MAX_APPLIED per batch: the applied list a write records keeps that many, and a
      // batch's own refs must all be in it, or their retries would apply twice.
      const batch = state.queue.splice(0, MAX_APPLIED);
      try {
        const results = await this.write(key, batch);
        batch.forEach((w, i) => w.resolve(results[i]!));
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    state.running = false;
    this.keys.delete(key);
  }

  /** One batch: read (unless known), apply, compare-and-set; again from a read when another writer won. */
  private async write(key: string, batch: Waiting[]): Promise<string[]> {
    const subject = this.bucket.subjectPrefix + key;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const state = this.known.get(key) ?? (await this.read(key, subject));
      const { results, next, added } = applyBatch(state.value, state.applied, batch);
      if (next === state.value && added.length === 0 && state.seq > 0) return results; // all retries: nothing to write
      const h = natsHeaders();
      const list = formatApplied(added, state.applied);
      if (list) h.set(APPLIED_HEADER, list);
      try {
        const ack = await this.bucket.js.publish(subject, new TextEncoder().encode(String(next)), { headers: h, expect: { lastSubjectSequence: state.seq } });
        this.remember(key, { seq: ack.seq, value: next, applied: parseApplied(list) });
        return results;
      } catch (err) {
        this.known.delete(key);
        if (!isJetStreamConflict(err)) throw err;
      }
    }
    throw new TrellisError('TRELLIS_OVERLOADED', `increment of ${key} lost ${MAX_ROUNDS} races in a row`);
  }

  /** The key's state as stored: a value (0 when missing or deleted) and its applied refs. */
  private async read(key: string, subject: string): Promise<Known> {
    const last = await this.last(subject);
    if (last === undefined) return { seq: 0, value: 0n, applied: new Map() };
    if ((last.header?.get('KV-Operation') || 'PUT') !== 'PUT') return { seq: last.seq, value: 0n, applied: new Map() };
    const text = utf8.decode(last.data);
    if (!INTEGER.test(text)) throw new TrellisError('TRELLIS_BAD_REQUEST', `value of ${key} is not an integer: ${JSON.stringify(text.slice(0, 40))}`);
    return { seq: last.seq, value: BigInt(text), applied: parseApplied(last.header?.get(APPLIED_HEADER)) };
  }

  private remember(key: string, state: Known): void {
    this.known.delete(key);
    if (this.known.size >= KNOWN_KEYS) this.known.delete(this.known.keys().next().value!);
    this.known.set(key, state);
  }

  /** The key's last message (value or delete marker), or undefined when it has none. */
  private async last(subject: string): Promise<StoredMsg | undefined> {
    try {
      return await this.bucket.lastMessage(subject);
    } catch (err) {
      if ((err as { code?: string }).code === '404') return undefined;
      throw err;
    }
  }
}
