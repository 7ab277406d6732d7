/**
 * The lattice-wide allowed issuers: one document in the lattice's config bucket that the
 * operator edits (`trellis issuers add|remove|list`) and every host follows. A host's own
 * `--allowed-issuer` keys add to it; with none anywhere a host runs unsigned components as
 * before (a development lattice), so a production lattice sets issuers.
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
  updatedAt: string;
}

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
    if (!isRecord(value) || !Array.isArray(value.issuers) || typeof value.updatedAt !== 'string') {
      throw new TrellisError('TRELLIS_BAD_REQUEST', 'allowed issuers must hold issuers (a list of public keys) and updatedAt');
    }
    return { issuers: [...new Set(value.issuers.map((k) => issuerKey(String(k))))].sort(), updatedAt: value.updatedAt };
  },
};

/** Read, change and follow the lattice's allowed issuers. */
export interface IssuerStore {
  list(): Promise<string[]>;
  /** Add keys (idempotent); returns the list after. */
  add(keys: string[]): Promise<string[]>;
  /** Remove keys; TRELLIS_NOT_FOUND for a key not in the list. Returns the list after. */
  remove(keys: string[]): Promise<string[]>;
  /**
   * Call `onChange` with the current list, then with every change; resolves with a stop function.
   * A document that does not decode is reported as `unreadable`, not as an empty list: a
   * corrupt document must close the lattice, not open it to unsigned code.
   */
  follow(onChange: (issuers: ReadonlySet<string> | 'unreadable') => void): Promise<() => void>;
}

/** Open the allowed-issuers document of a lattice. */
export async function openIssuers(nc: NatsConnection, subjects: Subjects): Promise<IssuerStore> {
  const docs: DocumentStore<IssuerList> = await openDocuments(nc, subjects, issuerListKind);
  // Read-modify-write at the revision read: two operators adding at once both land.
  const change = async (edit: (current: string[]) => string[]): Promise<string[]> => {
    for (let attempt = 0; ; attempt++) {
      const stored = await docs.get(KEY);
      const next = edit(stored?.value.issuers ?? []);
      // Absent, or present but unreadable (a create then conflicts): on a second pass over an
      // unreadable document, replace it; that is how an operator repairs one.
      const expectRevision = stored?.revision ?? (attempt === 0 ? 0 : undefined);
      try {
        return (await docs.put({ issuers: next, updatedAt: new Date().toISOString() }, { expectRevision })).value.issuers;
      } catch (err) {
        if (!(err instanceof TrellisError && err.code === 'TRELLIS_CONFLICT') || attempt >= 10) throw err;
      }
    }
  };
  return {
    list: async () => (await docs.get(KEY))?.value.issuers ?? [],
    add: (keys) => {
      keys.forEach(issuerKey);
      return change((current) => [...current, ...keys]);
    },
    remove: (keys) =>
      change((current) => {
        for (const key of keys) if (!current.includes(key)) throw new TrellisError('TRELLIS_NOT_FOUND', `${key} is not an allowed issuer of lattice ${subjects.lattice}`);
        return current.filter((k) => !keys.includes(k));
      }),
    async follow(onChange) {
      const kv = await openKv(nc, subjects.buckets.config);
      return followKv(kv, ({ value }) => {
        if (value === undefined) return onChange(new Set());
        try {
          onChange(new Set(issuerListKind.decode(decodeJson(value, 'allowed issuers')).issuers));
        } catch {
          onChange('unreadable');
        }
      }, { key: KEY });
    },
  };
}
