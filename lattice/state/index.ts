/**
 * Lattice state in JetStream: artifacts (component bytes by sha256 digest) in an object store,
 * and desired state (route weights; later links, config, HTTP routes) in KV buckets named per
 * lattice. Buckets are created on first use with 3 replicas where the cluster allows, else 1.
 */
import { createHash } from 'node:crypto';
import type { KV, KvEntry, NatsConnection, ObjectStore, QueuedIterator } from 'nats';
import { readUserFile, looksLikeWasm } from './files.ts';
import { JetStreamCodes, TrellisError, isJetStreamUnsettled, isTooFewServersForReplicas, jetStreamErrorCode } from '../errors/index.ts';
import type { Subjects } from '../subjects/index.ts';

export { readUserFile, looksLikeWasm } from './files.ts';

/** sha256 digest string of some bytes, `sha256:<hex>`. */
export function digestOf(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Validate a digest string; throws TRELLIS_BAD_REQUEST. */
export function checkDigest(digest: string): string {
  if (!DIGEST.test(digest)) throw new TrellisError('TRELLIS_BAD_REQUEST', `"${digest}" is not a digest (sha256:<64 hex>)`);
  return digest;
}

/**
 * Retry a JetStream operation through the failures that only mean "not settled yet": right after
 * a bucket is created (or a supercluster elected its meta leader), its stream may answer
 * "stream not found" or time out for a few hundred ms. Classified by code (lattice/errors).
 */
export async function whileStreamPropagates<T>(op: () => Promise<T>, budgetMs = 5000, unsettled: (err: unknown) => boolean = isJetStreamUnsettled): Promise<T> {
  const deadline = Date.now() + budgetMs;
  while (true) {
    try {
      return await op();
    } catch (err) {
      if (!unsettled(err) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 150));
    }
  }
}

/**
 * Open something on first use and share it after (a JetStream store, a client built on one).
 * A failed open is forgotten, so the next use tries again instead of failing for good.
 */
export function openOnce<T>(open: () => Promise<T>): { get(): Promise<T>; /** The open so far, if any. */ opened(): Promise<T> | undefined } {
  let pending: Promise<T> | undefined;
  return {
    get() {
      if (!pending) {
        const p = open();
        pending = p;
        p.catch(() => {
          if (pending === p) pending = undefined;
        });
      }
      return pending;
    },
    opened: () => pending,
  };
}

/** Validate a KV bucket name (JetStream allows letters, digits, '_' and '-'); TRELLIS_BAD_REQUEST. */
export function checkBucketName(name: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new TrellisError('TRELLIS_BAD_REQUEST', `bucket "${name}" may only hold letters, digits, '_' and '-'`);
  return name;
}

/** Trellis's own buckets (any lattice's): `trellis-<lattice>-<what>`, see subjects.buckets. */
const RESERVED_BUCKET = /^trellis-/i;

/**
 * Check the bucket an actor's keyvalue link names: a valid name, and none of Trellis's own
 * buckets, which hold the security documents (allowed issuers, the secrets key), links, apps and
 * routes; an actor that could write them could turn enforcement off or trust its own issuer.
 */
export function checkActorBucket(name: string): string {
  checkBucketName(name);
  if (RESERVED_BUCKET.test(name)) throw new TrellisError('TRELLIS_RESERVED_BUCKET', `bucket "${name}" is reserved for Trellis itself (names starting with "trellis-"); link the actor to a bucket of its own`);
  return name;
}

/** Run `create` with 3 replicas, and with 1 when the cluster is too small for 3. */
async function withReplicas<T>(create: (replicas: number) => Promise<T>): Promise<T> {
  try {
    return await create(3);
  } catch (err) {
    // Too few servers for 3 replicas. (A name in use means the bucket exists with another
    // replica count: opening it with 1 hits the same existing stream.)
    if (isTooFewServersForReplicas(err) || jetStreamErrorCode(err) === JetStreamCodes.streamNameInUse) return create(1);
    throw err;
  }
}

/** Open (or create) a KV bucket of this lattice. */
export async function openKv(nc: NatsConnection, bucket: string, options: { history?: number; ttlMs?: number; bindOnly?: boolean; settleMs?: number } = {}): Promise<KV> {
  const js = nc.jetstream();
  try {
    // bindOnly: a reader that must not create the bucket as a side effect (it fails if absent).
    if (options.bindOnly) return await whileStreamPropagates(() => js.views.kv(bucket, { bindOnly: true }), options.settleMs ?? 5000);
    return await whileStreamPropagates(
      () => withReplicas((replicas) => js.views.kv(bucket, { replicas, history: options.history ?? 1, ...(options.ttlMs ? { ttl: options.ttlMs } : {}) })),
      options.settleMs ?? 5000,
    );
  } catch (err) {
    // A credential without this bucket in its role is not an outage: say which it is.
    if ((err as { code?: unknown }).code === 'PERMISSIONS_VIOLATION') throw new TrellisError('TRELLIS_PERMISSION_DENIED', `cannot open KV bucket ${bucket}: ${(err as Error).message}`, { cause: err });
    throw new TrellisError('TRELLIS_NATS_UNAVAILABLE', `cannot open KV bucket ${bucket} (is JetStream enabled on the server?): ${(err as Error).message}`, { cause: err });
  }
}

/** One KV entry as a follower sees it: `value` undefined for a delete (or purge). */
export interface KvChange {
  key: string;
  value: Uint8Array | undefined;
  revision: number;
}

/**
 * Follow the keys of a bucket (all, or those matching `key`, a KV pattern with `*` and `>`):
 * `onChange` for each current entry and then for every change. Resolves once the current
 * entries were handed to `onChange`, so a caller's first lookup already sees them. Returns a
 * stop function. `onEnd` is called if the watch ends after that without being stopped (the
 * connection closed under it, the server ended it): what was followed is then no longer current.
 */
export async function followKv(kv: KV, onChange: (change: KvChange) => void, options: { key?: string; onEnd?: () => void } = {}): Promise<() => void> {
  // nats.js signals "initialized" in one of two ways: in order through the iterator (after the
  // entries before it were consumed), or at once inside watch() when every current entry had
  // already arrived, though the loop below has not consumed them yet. So readiness is a count:
  // the loop has handed on as many entries as had arrived when the signal came.
  let iter: QueuedIterator<KvEntry> | undefined;
  let applied = 0;
  let target = Infinity;
  let initializedEarly = false;
  let markReady!: () => void;
  let fail!: (err: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => ((markReady = resolve), (fail = reject)));
  let isReady = false;
  let stopped = false;
  const settle = () => applied >= target && ((isReady = true), markReady());
  iter = await whileStreamPropagates(() => {
    initializedEarly = false;
    return kv.watch({
      key: options.key ?? '>',
      initializedFn: () => {
        if (iter) (target = applied), settle();
        else initializedEarly = true;
      },
    });
  });
  if (initializedEarly) (target = iter.getReceived()), settle();
  const watching = iter;
  void (async () => {
    for await (const entry of watching) {
      onChange({ key: entry.key, value: entry.operation === 'PUT' ? entry.value : undefined, revision: entry.revision });
      applied++;
      settle();
    }
  })()
    .catch(() => undefined)
    // Ended (stopped, or the connection closed under it): a follow still waiting for the
    // current entries fails instead of hanging; after that, a rejection has no one to catch it.
    .then(() => {
      if (!isReady) return fail(new TrellisError('TRELLIS_NATS_UNAVAILABLE', 'the KV watch ended before it delivered the current entries'));
      if (!stopped) options.onEnd?.();
    });
  await ready;
  return () => {
    stopped = true;
    watching.stop();
  };
}

/** An artifact not (yet) in the store: retried for a while, then TRELLIS_DIGEST_NOT_FOUND. */
class NotVisibleYet extends Error {}

/** Component artifacts stored by digest. */
export interface ArtifactStore {
  /** Store bytes; returns their digest. Storing the same bytes twice is a no-op. */
  push(bytes: Uint8Array): Promise<{ digest: string; size: number; existed: boolean }>;
  /** Fetch bytes by digest and verify them; TRELLIS_DIGEST_NOT_FOUND or TRELLIS_DIGEST_MISMATCH on failure. */
  fetch(digest: string): Promise<Uint8Array>;
}

/** Open the artifact store of a lattice. */
export async function openArtifacts(nc: NatsConnection, subjects: Subjects): Promise<ArtifactStore> {
  const js = nc.jetstream();
  let store: ObjectStore;
  try {
    store = await whileStreamPropagates(() => withReplicas((replicas) => js.views.os(subjects.buckets.artifacts, { replicas, description: 'Trellis component artifacts by sha256' })));
  } catch (err) {
    throw new TrellisError('TRELLIS_NATS_UNAVAILABLE', `cannot open the artifact store (is JetStream enabled?): ${(err as Error).message}`, { cause: err });
  }
  // Object names may not contain ':' everywhere; the hex part is the name.
  const nameOf = (digest: string) => checkDigest(digest).slice('sha256:'.length);
  return {
    async push(bytes) {
      const digest = digestOf(bytes);
      const existing = await store.info(nameOf(digest));
      if (existing && !existing.deleted) return { digest, size: bytes.length, existed: true };
      await store.putBlob({ name: nameOf(digest), description: digest }, bytes);
      return { digest, size: bytes.length, existed: false };
    },
    async fetch(digest) {
      // A digest pushed a moment ago through another cluster may not be readable here yet.
      const bytes = await whileStreamPropagates(async () => {
        const blob = await store.getBlob(nameOf(digest));
        if (!blob) throw new NotVisibleYet();
        return blob;
      }, 3000, (err) => err instanceof NotVisibleYet || isJetStreamUnsettled(err)).catch((err: Error) => {
        if (err instanceof NotVisibleYet) return null;
        throw new TrellisError('TRELLIS_NATS_UNAVAILABLE', `cannot read artifact ${digest}: ${err.message}`, { cause: err });
      });
      if (!bytes) throw new TrellisError('TRELLIS_DIGEST_NOT_FOUND', `no artifact ${digest} in lattice ${subjects.lattice}`);
      const actual = digestOf(bytes);
      if (actual !== digest) throw new TrellisError('TRELLIS_DIGEST_MISMATCH', `artifact ${digest} has digest ${actual}`);
      return bytes;
    },
  };
}

/** Push a component file to the lattice artifact store; returns its digest. */
export async function pushFile(client: { nc: NatsConnection; subjects: Subjects }, file: string): Promise<{ digest: string; size: number; existed: boolean }> {
  const bytes = await readUserFile(file, 'component');
  if (!looksLikeWasm(bytes)) throw new TrellisError('TRELLIS_BAD_REQUEST', `${file} is not a WebAssembly file`);
  return (await openArtifacts(client.nc, client.subjects)).push(bytes);
}
