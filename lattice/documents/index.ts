/**
 * One typed document store on JetStream KV: every piece of desired state in a lattice (links,
 * weights, HTTP routes; next app manifests, leases, canary states) is a kind of document with a
 * bucket, a key function and a decoder, read and written here, and nowhere else.
 *
 * Every read returns the revision it saw and every write can require one (optimistic
 * concurrency): `put(doc, { expectRevision: r })` writes only if the key is still at `r`,
 * `expectRevision: 0` only if it does not exist, and `delete(key, { expectRevision: r })`
 * likewise. A lost race is TRELLIS_CONFLICT, by the JetStream error code, never message text.
 * That is the one primitive the coming documents need: a leader lease is a create-only put and
 * a renewal at its revision; a canary step is a put at the revision of the state it read.
 */
import type { KV, NatsConnection } from 'nats';
import { TrellisError, isJetStreamConflict } from '../errors/index.ts';
import { followKv, openKv } from '../state/index.ts';
import type { Subjects } from '../subjects/index.ts';
import { decodeJson, encodeJson } from '../wire/index.ts';

/** How one kind of document is named, stored, keyed and checked. */
export interface DocumentKind<T> {
  /** What one document is called in messages ("link", "http route"). */
  readonly name: string;
  /** The bucket of this kind in a lattice (bucket names are built in lattice/subjects). */
  bucket(subjects: Subjects): string;
  /** Revisions kept per key. Default 1; a kind with history (app manifests) keeps more. */
  readonly history?: number;
  /** Documents expire this long after their last write (a bucket TTL: leases). Default: never. */
  readonly ttlMs?: number;
  /** The KV key of a document: letters, digits and `-_/=`, in tokens joined by `.`. */
  key(doc: T): string;
  /**
   * Check a value (parsed JSON, from the bucket or from a caller) and return it as a T; throw a
   * TrellisError naming what is wrong. It runs on every write too, so nothing unreadable is stored.
   */
  decode(value: unknown): T;
}

/** A document as stored: its key, its value and the revision it was read or written at. */
export interface Stored<T> {
  readonly key: string;
  readonly value: T;
  readonly revision: number;
}

/** A change seen by a follower; `value` undefined when the document was deleted. */
export interface DocumentChange<T> {
  readonly key: string;
  readonly value: T | undefined;
  readonly revision: number;
}

/** Condition of a write. */
export interface WriteOptions {
  /**
   * Write only if the document is at this revision; `0`: only if it does not exist. A key at
   * another revision fails with TRELLIS_CONFLICT. Absent: write whatever is there.
   */
  expectRevision?: number;
}

/** Read, write and follow the documents of one kind. */
export interface DocumentStore<T> {
  readonly kind: DocumentKind<T>;
  /** The bucket's entry TTL as the server keeps it (ms; 0: none), whatever this kind asked for. */
  ttlMs(): Promise<number>;
  /** The document at `key`, or undefined when there is none (or it is unreadable). */
  get(key: string): Promise<Stored<T> | undefined>;
  /** Every document (or those whose key matches `pattern`, a KV pattern with `*` and `>`), in key order. */
  list(pattern?: string): Promise<Stored<T>[]>;
  /**
   * The revisions of `key` the bucket still keeps (its kind's `history`), oldest first; deletes
   * and unreadable values are left out. Empty when the key never existed.
   */
  history(key: string): Promise<Stored<T>[]>;
  /** Store a document under its key; TRELLIS_CONFLICT when `expectRevision` does not hold. */
  put(doc: T, options?: WriteOptions): Promise<Stored<T>>;
  /**
   * Delete a document; false when there was none. With `expectRevision` (1 or more) only if it
   * is still at that revision, else TRELLIS_CONFLICT.
   */
  delete(key: string, options?: WriteOptions): Promise<boolean>;
  /**
   * Call `onChange` for every current document, then for every change, until stopped. Resolves
   * (with the stop function) once the current documents were delivered.
   */
  follow(onChange: (change: DocumentChange<T>) => void, pattern?: string): Promise<() => void>;
}

/** KV keys: tokens of letters, digits and `-_/=` joined by single dots. */
const KEY = /^[-/_=a-zA-Z0-9]+(?:\.[-/_=a-zA-Z0-9]+)*$/;

/** Check a document key; TRELLIS_BAD_REQUEST instead of the client library's bare "invalid key". */
function checkKey(what: string, key: string): string {
  if (typeof key !== 'string' || !KEY.test(key)) throw new TrellisError('TRELLIS_BAD_REQUEST', `${what} key ${JSON.stringify(key)} is not valid: use letters, digits and - / _ = in dot-separated tokens`);
  return key;
}

/** Check an expected revision: an integer from `min` on (0 means "absent" for a put only). */
function checkRevision(revision: number | undefined, min: number): number | undefined {
  if (revision !== undefined && !(Number.isSafeInteger(revision) && revision >= min)) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `expected revision must be an integer from ${min}, got ${revision}`);
  }
  return revision;
}

/** Open (creating on first use) the store of one kind of document in a lattice. */
export async function openDocuments<T>(nc: NatsConnection, subjects: Subjects, kind: DocumentKind<T>): Promise<DocumentStore<T>> {
  const kv: KV = await openKv(nc, kind.bucket(subjects), { history: kind.history ?? 1, ...(kind.ttlMs ? { ttlMs: kind.ttlMs } : {}) });
  // A stored value that no longer decodes (written by a newer version, or by hand) reads as
  // absent instead of breaking every reader; an unconditional put replaces it.
  const read = (bytes: Uint8Array): T | undefined => {
    try {
      return kind.decode(decodeJson(bytes, kind.name));
    } catch {
      return undefined;
    }
  };
  const conflict = (err: unknown, key: string, expected: number | undefined) =>
    expected !== undefined && isJetStreamConflict(err)
      ? new TrellisError('TRELLIS_CONFLICT', expected === 0 ? `${kind.name} ${key} already exists` : `${kind.name} ${key} is no longer at revision ${expected}`, { cause: err })
      : err;
  const follow = (onChange: (change: DocumentChange<T>) => void, pattern?: string) =>
    followKv(kv, ({ key, value, revision }) => onChange({ key, value: value && read(value), revision }), { key: pattern });

  return {
    kind,
    ttlMs: async () => (await kv.status()).ttl,
    async get(key) {
      const entry = await kv.get(checkKey(kind.name, key));
      const value = entry && entry.operation === 'PUT' ? read(entry.value) : undefined;
      return value === undefined ? undefined : { key, value, revision: entry!.revision };
    },
    async list(pattern) {
      // One watch delivers every current entry with its value: one round of messages instead
      // of listing the keys and reading each.
      const docs = new Map<string, Stored<T>>();
      const stop = await follow(({ key, value, revision }) => (value === undefined ? docs.delete(key) : docs.set(key, { key, value, revision })), pattern);
      stop();
      return [...docs.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },
    async history(key) {
      const entries = await kv.history({ key: checkKey(kind.name, key) });
      const out: Stored<T>[] = [];
      for await (const entry of entries) {
        const value = entry.operation === 'PUT' ? read(entry.value) : undefined;
        if (value !== undefined) out.push({ key, value, revision: entry.revision });
      }
      return out.sort((a, b) => a.revision - b.revision);
    },
    async put(doc, options = {}) {
      const value = kind.decode(doc);
      const key = checkKey(kind.name, kind.key(value));
      const bytes = encodeJson(value);
      const expected = checkRevision(options.expectRevision, 0);
      try {
        // create() also succeeds over a deleted key (at the delete marker's revision).
        const revision = expected === undefined ? await kv.put(key, bytes) : expected === 0 ? await kv.create(key, bytes) : await kv.update(key, bytes, expected);
        return { key, value, revision };
      } catch (err) {
        throw conflict(err, key, expected);
      }
    },
    async delete(key, options = {}) {
      checkKey(kind.name, key);
      const expected = checkRevision(options.expectRevision, 1);
      if (expected === undefined) {
        const entry = await kv.get(key);
        if (!entry || entry.operation !== 'PUT') return false;
        await kv.delete(key);
        return true;
      }
      try {
        // The server compares the key's last revision: a key deleted or rewritten since is a conflict.
        await kv.delete(key, { previousSeq: expected });
        return true;
      } catch (err) {
        throw conflict(err, key, expected);
      }
    },
    follow,
  };
}
