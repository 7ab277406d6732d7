/**
 * The key-value provider on NATS JetStream KV. The bucket comes from the actor's link config
 * (`bucket=counters`); increments are atomic by revision compare-and-set, so concurrent
 * increments from any number of actors and hosts never lose an update, coalesced per key (one
 * compare-and-set per batch) and applied once per invocation (see increments.ts).
 */
import type { JetStreamManager, KV, NatsConnection, StoredMsg } from 'nats';
import type { KeyPair } from 'nkeys.js';
import { TrellisError } from '../../lattice/errors/index.ts';
import type { Logger } from '../../lattice/log/index.ts';
import { checkActorBucket, openKv } from '../../lattice/state/index.ts';
import type { Subjects } from '../../lattice/subjects/index.ts';
import type { KeyValueOp, ProviderRequest } from '../../lattice/wire/index.ts';
import { serveProvider, type ProviderOps, type ProviderService } from '../service.ts';
import { IncrementBatcher } from './increments.ts';

const KEY = /^[-/_=.a-zA-Z0-9]+$/;

function key(value: unknown): string {
  if (typeof value !== 'string' || !KEY.test(value) || value.startsWith('.') || value.endsWith('.')) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `key ${JSON.stringify(value)} is not valid: use letters, digits and - / _ = . (not at the ends)`);
  }
  return value;
}

/** Start serving key-value operations; buckets are opened (created) on first use. */
export function startKeyValueProvider(nc: NatsConnection, subjects: Subjects, logger: Logger, secretsKey?: KeyPair): ProviderService {
  const buckets = new Map<string, Promise<KV>>();
  const batchers = new Map<string, Promise<IncrementBatcher>>();
  const bucketName = (request: ProviderRequest): string => {
    const name = request.config.bucket;
    if (!name) throw new TrellisError('TRELLIS_BAD_REQUEST', `the keyvalue link of ${request.actor} has no bucket; run: trellis link put ${request.actor} keyvalue-nats bucket=<name>`);
    // Again here: a provider request comes from any host, not only through a decoded link.
    checkActorBucket(name);
    return name;
  };
  const batcherOf = (request: ProviderRequest): Promise<IncrementBatcher> => {
    const name = bucketName(request);
    let batcher = batchers.get(name);
    if (!batcher) {
      batcher = (async () => {
        const kv = await bucketOf(request);
        // Where the bucket keeps its keys, from the stream itself: `<prefix>.>` (KV's layout).
        const { streamInfo } = await kv.status();
        const wildcard = streamInfo.config.subjects?.[0] ?? '';
        if (!wildcard.endsWith('>')) throw new TrellisError('TRELLIS_INTERNAL', `bucket ${name} has an unexpected stream layout: ${wildcard}`);
        const stream = streamInfo.config.name;
        const jsm = (await nc.jetstreamManager({ checkAPI: false })) as JetStreamManager & { direct?: { getMessage(stream: string, query: { last_by_subj: string }): Promise<StoredMsg> } };
        // Direct gets (any replica answers) when the bucket allows them, as KV's own get does.
        const direct = streamInfo.config.allow_direct === true ? jsm.direct : undefined;
        return new IncrementBatcher({
          js: nc.jetstream(),
          subjectPrefix: wildcard.slice(0, -1),
          lastMessage: (subject) => (direct ? direct.getMessage(stream, { last_by_subj: subject }) : jsm.streams.getMessage(stream, { last_by_subj: subject })),
        });
      })();
      batchers.set(name, batcher);
      batcher.catch(() => batchers.delete(name));
    }
    return batcher;
  };
  const bucketOf = (request: ProviderRequest): Promise<KV> => {
    const name = bucketName(request);
    let kv = buckets.get(name);
    if (!kv) {
      kv = openKv(nc, name);
      buckets.set(name, kv);
      kv.catch(() => buckets.delete(name));
    }
    return kv;
  };

  return serveProvider(nc, subjects, 'keyvalue-nats', {
    async get(r) {
      const entry = await (await bucketOf(r)).get(key(r.args[0]));
      return entry && entry.operation === 'PUT' ? entry.value : null;
    },
    async set(r) {
      const value = r.args[1];
      if (!(value instanceof Uint8Array)) throw new TrellisError('TRELLIS_BAD_REQUEST', 'set needs bytes');
      await (await bucketOf(r)).put(key(r.args[0]), value);
      return null;
    },
    async delete(r) {
      await (await bucketOf(r)).delete(key(r.args[0]));
      return null;
    },
    async exists(r) {
      const entry = await (await bucketOf(r)).get(key(r.args[0]));
      return Boolean(entry && entry.operation === 'PUT');
    },
    async keys(r) {
      const prefix = typeof r.args[0] === 'string' ? r.args[0] : '';
      const out: string[] = [];
      for await (const k of await (await bucketOf(r)).keys()) if (k.startsWith(prefix)) out.push(k);
      return out.sort();
    },
    async increment(r) {
      const k = key(r.args[0]);
      let delta: bigint;
      try {
        delta = BigInt(String(r.args[1]));
      } catch {
        throw new TrellisError('TRELLIS_BAD_REQUEST', `increment delta must be an integer, got ${String(r.args[1])}`);
      }
      return (await batcherOf(r)).increment(k, delta, r.invocation);
    },
  } satisfies Record<KeyValueOp, ProviderOps[string]>, logger.child({ provider: 'keyvalue-nats' }), secretsKey);
}
