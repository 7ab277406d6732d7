/**
 * App documents on the lattice document store: revisions (`apps` bucket, key = app name, the
 * last 16 kept as KV history) and observed status (`appStatus` bucket, written by the
 * reconciler leader). A new revision is a put at the revision of the document read, so two
 * applies racing cannot both win (TRELLIS_CONFLICT for the loser).
 */
import type { NatsConnection } from 'nats';
import { openDocuments, type DocumentKind, type DocumentStore, type Stored } from '../documents/index.ts';
import { TrellisError } from '../errors/index.ts';
import type { Subjects } from '../subjects/index.ts';
import { AppPhases, type AppRevision, type AppSpec, type AppStatus } from '../wire/apps.ts';
import { isRecord } from '../wire/index.ts';
import { anyMap, boolean, integer, list, map, object, optional, string, type Check } from '../wire/schema.ts';
import { nameProblem } from './fields.ts';
import { specHash } from './spec.ts';

/** Revisions kept per app: `app history` and `app rollback --to` reach this far back. */
export const APP_HISTORY = 16;

const name: Check<string> = string({ minLength: 1, maxLength: 63, test: nameProblem });
const replicas: Check<number | 'all'> = (value, path) => (value === 'all' ? 'all' : integer(1, 1_000_000)(value, path));
const spread = list(object({ name, requirements: map(string()), weight: integer(1, 1_000_000) }), 100);
const iso = string({ maxLength: 64 });

/** The stored form of a spec, checked on every read and write. */
const appSpec: Check<AppSpec> = object({
  name,
  actors: list(
    object({
      name,
      version: string({ minLength: 1, maxLength: 128 }),
      digest: string({ test: (s) => (/^sha256:[0-9a-f]{64}$/.test(s) ? undefined : 'must be sha256:<64 hex digits>') }),
      replicas,
      spread,
      policy: anyMap,
      links: list(object({ provider: string({ minLength: 1 }), config: map(string()) }), 32),
      routes: list(object({ prefix: string({ minLength: 1 }), host: optional(string()) }), 64),
      canary: optional(anyMap),
    }),
    1000,
  ),
  providers: list(object({ kind: string({ minLength: 1 }), replicas, spread }), 100),
});

const appRevision: Check<AppRevision> = object({
  name,
  revision: integer(1, Number.MAX_SAFE_INTEGER),
  specHash: string(),
  spec: appSpec,
  createdAt: iso,
  deleting: optional(boolean),
});

/**
 * A status document, checked leniently: the reconciler writes it and may add fields this reader
 * does not know yet; those pass through instead of making the status unreadable.
 */
function appStatus(value: unknown): AppStatus {
  const bad = (why: string): never => {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `app status: ${why}`);
  };
  if (!isRecord(value)) return bad('must be a map');
  if (typeof value.name !== 'string' || nameProblem(value.name)) bad('name must be an app name');
  if (!Number.isSafeInteger(value.revision) || (value.revision as number) < 0) bad('revision must be an integer from 0');
  if (!(AppPhases as readonly unknown[]).includes(value.phase)) bad(`phase must be one of ${AppPhases.join(', ')}`);
  if (!Array.isArray(value.actors) || !value.actors.every((a) => isRecord(a) && typeof a.name === 'string' && typeof a.version === 'string' && Number.isSafeInteger(a.desired) && Number.isSafeInteger(a.running) && Array.isArray(a.spreads))) {
    bad('actors must be a list of { name, version, desired, running, spreads }');
  }
  if (value.reasons !== undefined && !(Array.isArray(value.reasons) && value.reasons.every((r) => typeof r === 'string'))) bad('reasons must be a list of strings');
  if (typeof value.observedAt !== 'string') bad('observedAt must be a time');
  return { ...(value as unknown as AppStatus), reasons: (value.reasons as string[] | undefined) ?? [] };
}

/** App revisions as a document kind: one key per app, with history. */
export const appRevisionKind: DocumentKind<AppRevision> = {
  name: 'app',
  bucket: (subjects) => subjects.buckets.apps,
  history: APP_HISTORY,
  key: (doc) => doc.name,
  decode: (value) => {
    const doc = appRevision(value, 'app');
    if (doc.spec.name !== doc.name) throw new TrellisError('TRELLIS_BAD_REQUEST', `app ${doc.name} holds the spec of app ${doc.spec.name}`);
    return doc;
  },
};

/** App status as a document kind, written by the reconciler leader. */
export const appStatusKind: DocumentKind<AppStatus> = {
  name: 'app status',
  bucket: (subjects) => subjects.buckets.appStatus,
  key: (doc) => doc.name,
  decode: appStatus,
};

/** Revisions and status of the apps of a lattice. */
export interface AppStore {
  readonly revisions: DocumentStore<AppRevision>;
  readonly statuses: DocumentStore<AppStatus>;
  /** The current revision of an app (a deleting one too), or undefined. */
  current(app: string): Promise<Stored<AppRevision> | undefined>;
  /** Every app's current revision, by name. */
  list(): Promise<Stored<AppRevision>[]>;
  /** The revisions still kept, oldest first (at most APP_HISTORY). */
  history(app: string): Promise<AppRevision[]>;
  /**
   * Store `spec` as the next revision, at the revision of `current` (the document read before:
   * undefined when there was none); TRELLIS_CONFLICT when another write came first.
   */
  putNext(spec: AppSpec, current: Stored<AppRevision> | undefined): Promise<Stored<AppRevision>>;
  /** Mark the current revision deleting (the reconciler then removes the app); false when it already was. */
  markDeleting(app: string): Promise<{ doc: Stored<AppRevision>; changed: boolean }>;
  /** The status the leader last wrote, or undefined. */
  status(app: string): Promise<Stored<AppStatus> | undefined>;
}

/** Open (creating on first use) the app buckets of a lattice. */
export async function openApps(nc: NatsConnection, subjects: Subjects): Promise<AppStore> {
  const revisions = await openDocuments(nc, subjects, appRevisionKind);
  const statuses = await openDocuments(nc, subjects, appStatusKind);
  const notFound = (app: string) => new TrellisError('TRELLIS_NOT_FOUND', `no app ${app} (list them with \`trellis get apps\`)`);
  return {
    revisions,
    statuses,
    current: (app) => revisions.get(app),
    list: () => revisions.list(),
    async history(app) {
      return (await revisions.history(app)).map((d) => d.value);
    },
    async putNext(spec, current) {
      // The counter goes on from the highest revision kept, so an app deleted and applied
      // again does not reuse revision numbers its old instances may still carry as owners.
      const kept = current ? [] : await revisions.history(spec.name);
      const last = current?.value.revision ?? Math.max(0, ...kept.map((d) => d.value.revision));
      const doc: AppRevision = { name: spec.name, revision: last + 1, specHash: specHash(spec), spec, createdAt: new Date().toISOString() };
      return revisions.put(doc, { expectRevision: current?.revision ?? 0 });
    },
    async markDeleting(app) {
      const doc = await revisions.get(app);
      if (!doc) throw notFound(app);
      if (doc.value.deleting) return { doc, changed: false };
      return { doc: await revisions.put({ ...doc.value, deleting: true }, { expectRevision: doc.revision }), changed: true };
    },
    status: (app) => statuses.get(app),
  };
}
