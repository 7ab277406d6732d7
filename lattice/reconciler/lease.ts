/**
 * The leader lease: one document in the lattice's `leader` bucket, whose TTL is the lease's.
 * A candidate creates it (a put that expects no document); the holder renews it at the
 * revision it holds, well inside the TTL; a holder that stops deletes it, so a successor need
 * not wait. A holder that dies stops renewing, the document expires with the bucket's TTL, and
 * the next candidate's create succeeds: a SIGKILLed leader is replaced within the TTL.
 *
 * The holder acts only while its lease is surely valid: until the last renewal's send time
 * plus the TTL, less a margin for clock drift and late expiry. A renewal that fails (a lost
 * race or an unreachable server) ends the leadership at once.
 */
import type { NatsConnection } from 'nats';
import { openDocuments, type DocumentKind, type DocumentStore } from '../documents/index.ts';
import { TrellisError } from '../errors/index.ts';
import type { Subjects } from '../subjects/index.ts';
import { isRecord } from '../wire/index.ts';

/** The lease document. */
export interface LeaderLease {
  /** The holder's participant id. */
  holder: string;
  /** What the holder runs in (a host's name, `controller`...), for `get` commands and logs. */
  name: string;
  acquiredAt: string;
  renewedAt: string;
  ttlMs: number;
}

/** The one key of the lease. */
export const LEASE_KEY = 'reconciler';

/** The lease TTL unless configured: a dead leader is replaced within it. */
export const DEFAULT_LEASE_TTL_MS = 3000;

/** The lease as a document kind of the `leader` bucket, whose TTL is `ttlMs`. */
export function leaseKind(ttlMs: number): DocumentKind<LeaderLease> {
  return {
    name: 'leader lease',
    bucket: (subjects) => subjects.buckets.leader,
    ttlMs,
    key: () => LEASE_KEY,
    decode(value) {
      if (!isRecord(value) || typeof value.holder !== 'string' || typeof value.name !== 'string' || typeof value.acquiredAt !== 'string' || typeof value.renewedAt !== 'string' || !Number.isSafeInteger(value.ttlMs)) {
        throw new TrellisError('TRELLIS_BAD_REQUEST', 'leader lease must hold holder, name, acquiredAt, renewedAt and ttlMs');
      }
      return { holder: value.holder, name: value.name, acquiredAt: value.acquiredAt, renewedAt: value.renewedAt, ttlMs: value.ttlMs as number };
    },
  };
}

/** One candidate's hold on the lease. */
export interface Lease {
  /** True while this candidate surely holds the lease. */
  held(): boolean;
  /** The lease document's revision while held: a term's fencing token (see the control contract). */
  revision(): number | undefined;
  /** Try to take or renew the lease once; resolves to whether it is held after. */
  tick(): Promise<boolean>;
  /** Let go (delete the document if held), so a successor need not wait for the TTL. */
  release(): Promise<void>;
  /** Who holds it now, as the bucket says (any candidate may ask). */
  holder(): Promise<LeaderLease | undefined>;
}

/** Open the lease of a lattice for one candidate. */
export async function openLease(nc: NatsConnection, subjects: Subjects, candidate: { id: string; name: string; ttlMs: number }): Promise<Lease> {
  const docs: DocumentStore<LeaderLease> = await openDocuments(nc, subjects, leaseKind(candidate.ttlMs));
  // The bucket keeps the TTL of whoever created it (opening an existing bucket does not change
  // it), and the server expires the lease by that TTL: a candidate with a longer one of its own
  // must not believe it leads past it, or two leaders would run at once.
  const bucketTtlMs = await docs.ttlMs();
  const ttlMs = bucketTtlMs > 0 ? Math.min(candidate.ttlMs, bucketTtlMs) : candidate.ttlMs;
  // A quarter of the TTL: expiry on the server is not to the millisecond, and our clock runs on.
  const marginMs = Math.max(100, Math.floor(ttlMs / 4));
  let revision: number | undefined;
  let acquiredAt = '';
  let validUntil = 0;
  return {
    held: () => revision !== undefined && Date.now() < validUntil,
    revision: () => revision,
    async tick() {
      const sentAt = Date.now();
      const now = new Date(sentAt).toISOString();
      try {
        if (revision === undefined) {
          acquiredAt = now;
          revision = (await docs.put({ holder: candidate.id, name: candidate.name, acquiredAt, renewedAt: now, ttlMs: candidate.ttlMs }, { expectRevision: 0 })).revision;
        } else {
          // Even when this renewal is late (a busy event loop), the document still at our revision
          // means nobody took over meanwhile: we lead on. (We did not act while it was late.)
          revision = (await docs.put({ holder: candidate.id, name: candidate.name, acquiredAt, renewedAt: now, ttlMs: candidate.ttlMs }, { expectRevision: revision })).revision;
        }
        validUntil = sentAt + ttlMs - marginMs;
        return true;
      } catch {
        // Someone else holds it (TRELLIS_CONFLICT), or we cannot tell: either way, not us.
        revision = undefined;
        validUntil = 0;
        return false;
      }
    },
    async release() {
      const held = revision;
      revision = undefined;
      validUntil = 0;
      if (held === undefined) return;
      await docs.delete(LEASE_KEY, { expectRevision: held }).catch(() => false);
    },
    async holder() {
      return (await docs.get(LEASE_KEY))?.value;
    },
  };
}
