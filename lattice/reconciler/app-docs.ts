/**
 * STAND-IN until lattice/apps lands: the app revision and status document kinds, with the same
 * bucket, key and JSON as lattice/apps/documents.ts, so the reconciler and the tests share
 * documents with `trellis apply`. Replaced by lattice/apps's kinds at merge.
 */
import { TrellisError } from '../errors/index.ts';
import type { DocumentKind } from '../documents/index.ts';
import { isRecord, type AppRevision, type AppStatus } from '../wire/index.ts';

export const appRevisionKind: DocumentKind<AppRevision> = {
  name: 'app',
  bucket: (subjects) => subjects.buckets.apps,
  history: 16,
  key: (doc) => doc.name,
  decode(value) {
    if (!isRecord(value) || typeof value.name !== 'string' || !Number.isSafeInteger(value.revision) || !isRecord(value.spec)) throw new TrellisError('TRELLIS_BAD_REQUEST', 'app: bad revision');
    return value as unknown as AppRevision;
  },
};

export const appStatusKind: DocumentKind<AppStatus> = {
  name: 'app status',
  bucket: (subjects) => subjects.buckets.appStatus,
  key: (doc) => doc.name,
  decode(value) {
    if (!isRecord(value) || typeof value.name !== 'string') throw new TrellisError('TRELLIS_BAD_REQUEST', 'app status: bad');
    return value as unknown as AppStatus;
  },
};
