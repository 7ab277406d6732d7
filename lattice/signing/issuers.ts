/**
 * The lattice-wide allowed issuers: one document in the lattice's config bucket that the
 * operator edits (`trellis issuers add|remove|disable|list`) and every host follows. A host's
 * own `--allowed-issuer` keys add to it. Enforcement is explicit: `issuers add` turns it on, and
 * only `issuers disable` turns it off; removing the last issuer (with --force) leaves it on, so
 * hosts refuse everything rather than run unsigned code. A document deleted while a host saw
 * enforcement on reads as unreadable (fail closed). With no document ever, hosts run unsigned
 * components (a development lattice) unless started with --require-signed.
 */
import type { NatsConnection } from 'nats';
import { openDocuments, type DocumentKind, type DocumentStore } from '../documents/index.ts';
import { TrellisError } from '../errors/index.ts';
import { followKv, openKv } from '../state/index.ts';
import type { Subjects } from '../subjects/index.ts';
import { decodeJson, isRecord } from '../wire/index.ts';
import { isIssuerKey } from './claims.ts';

/** The allowed-issuers document. */
export interface IssuerList {
  issuers: string[];
  /** Hosts check signatures (refusing everything while `issuers` is empty). Absent in old documents: on when there are issuers. */
  enforce: boolean;
  updatedAt: string;
}

/** What hosts follow: the lattice's issuers and whether they are enforced, or `unreadable`. */
export type IssuerState = { issuers: ReadonlySet<string>; enforce: boolean } | 'unreadable';

const KEY = 'security.issuers';

/** Check an issuer public key; TRELLIS_BAD_REQUEST when it is not one. */
export function issuerKey(key: string): string {
  if (!isIssuerKey(key)) throw new TrellisError('TRELLIS_BAD_REQUEST', `"${key}" is not an issuer public key (an account, operator or user nkey: A..., O... or U..., 56 characters)`);
  return key;
}

export const issuerListKind: DocumentKind<IssuerList> = {
  name: 'allowed issuers',
  bucket: (subjects) => subjects.buckets.config,
  key: () => KEY,
  decode(value) {
    if (!isRecord(value) || !Array.isArray(value.issuers) || typeof value.updatedAt !== 'string' || (value.enforce !== undefined && typeof value.enforce !== 'boolean')) {
      throw new TrellisError('TRELLIS_BAD_REQUEST', 'allowed issuers must hold issuers (a list of public keys), enforce (true or false) and updatedAt');
    }
    const issuers = [...new Set(value.issuers.map((k) => issuerKey(String(k))))].sort();
    return { issuers, enforce: typeof value.enforce === 'boolean' ? value.enforce : issuers.length > 0, updatedAt: value.updatedAt };
  },
};

/** Read, change and follow the lattice's allowed issuers. */
export interface IssuerStore {
  list(): Promise<string[]>;
  /** The document as hosts see it: absent (never set), unreadable, or its issuers and enforcement. */
  status(): Promise<{ issuers: string[]; enforce: boolean } | 'absent' | 'unreadable'>;
  /** Add keys (idempotent) and turn enforcement on; returns the list after. */
  add(keys: string[]): Promise<string[]>;
  /**
   * Remove keys; TRELLIS_NOT_FOUND for a key not in the list. Removing the last one needs
   * `force` (enforcement stays on: hosts then refuse every component). Returns the list after.
   */
  remove(keys: string[], options?: { force?: boolean }): Promise<string[]>;
  /** Turn enforcement off and clear the list: hosts without their own issuers run unsigned code. */
  disable(): Promise<void>;
  /**
   * Call `onChange` with the current state, then with every change; resolves with a stop
   * function. A document that does not decode, or is deleted after enforcement was seen on, is
   * reported as `unreadable`: a corrupt or deleted document must close the lattice, not open it.
   */
  follow(onChange: (state: IssuerState) => void): Promise<() => void>;
}

/** Open the allowed-issuers document of a lattice. */
export async function openIssuers(nc: NatsConnection, subjects: Subjects): Promise<IssuerStore> {
  const docs: DocumentStore<IssuerList> = await openDocuments(nc, subjects, issuerListKind);
  // Read-modify-write at the revision read: two operators adding at once both land.
  const change = async (edit: (current: string[]) => string[], enforce: boolean): Promise<string[]> => {
    for (let attempt = 0; ; attempt++) {
      const stored = await docs.get(KEY);
      const next = edit(stored?.value.issuers ?? []);
      // Absent, or present but unreadable (a create then conflicts): on a second pass over an
      // unreadable document, replace it; that is how an operator repairs one.
      const expectRevision = stored?.revision ?? (attempt === 0 ? 0 : undefined);
      try {
        return (await docs.put({ issuers: next, enforce, updatedAt: new Date().toISOString() }, { expectRevision })).value.issuers;
      } catch (err) {
        if (!(err instanceof TrellisError && err.code === 'TRELLIS_CONFLICT') || attempt >= 10) throw err;
      }
    }
  };
  return {
    list: async () => (await docs.get(KEY))?.value.issuers ?? [],
    async status() {
      const kv = await openKv(nc, subjects.buckets.config);
      const entry = await kv.get(KEY);
      if (!entry || entry.operation !== 'PUT') return 'absent';
      try {
        const { issuers, enforce } = issuerListKind.decode(decodeJson(entry.value, 'allowed issuers'));
        return { issuers, enforce };
      } catch {
        return 'unreadable';
      }
    },
    add: (keys) => {
      keys.forEach(issuerKey);
      return change((current) => [...current, ...keys], true);
    },
    remove: (keys, options = {}) =>
      change((current) => {
        for (const key of keys) if (!current.includes(key)) throw new TrellisError('TRELLIS_NOT_FOUND', `${key} is not an allowed issuer of lattice ${subjects.lattice}`);
        const left = current.filter((k) => !keys.includes(k));
        if (left.length === 0 && !options.force) {
          throw new TrellisError('TRELLIS_BAD_REQUEST', 'that removes the last allowed issuer: hosts would then refuse every component (enforcement stays on); pass --force to do so, or run `trellis issuers disable` to let unsigned components run');
        }
        return left;
      }, true),
    async disable() {
      await change(() => [], false);
    },
    async follow(onChange) {
      const kv = await openKv(nc, subjects.buckets.config);
      let enforced = false;
      let stopped = false;
      let stopWatch = () => {};
      let retry: NodeJS.Timeout | undefined;
      // A watch that ends leaves a list nobody updates: unreadable (fail closed) until a new
      // watch delivers the document again.
      const reopen = () => {
        if (stopped) return;
        onChange('unreadable');
        retry = setTimeout(() => void watch().then((stop) => (stopped ? stop() : (stopWatch = stop)), reopen), 1000);
        retry.unref();
      };
      const watch = () => followKv(kv, ({ value }) => {
        // Deleted (or purged) after this host saw enforcement on: not a way to turn it off.
        if (value === undefined) return onChange(enforced ? 'unreadable' : { issuers: new Set(), enforce: false });
        try {
          const list = issuerListKind.decode(decodeJson(value, 'allowed issuers'));
          // Only a deliberate `issuers disable` (enforce: false) ends what this host saw on.
          enforced = list.enforce;
          onChange({ issuers: new Set(list.issuers), enforce: list.enforce });
        } catch {
          onChange('unreadable');
        }
      }, { key: KEY, onEnd: reopen });
      stopWatch = await watch();
      return () => {
        stopped = true;
        clearTimeout(retry);
        stopWatch();
      };
    },
  };
}
