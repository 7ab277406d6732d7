/**
 * The key-value provider on NATS JetStream KV. The bucket comes from the actor's link config
 * (`bucket=counters`); increments are atomic by revision compare-and-set, so concurrent
 * increments from any number of actors and hosts never lose an update.
 */
import type { KV, NatsConnection } from 'nats';
import { TrellisError } from '../../lattice/errors/index.ts';
import type { Logger } from '../../lattice/log/index.ts';
import { checkBucketName, openKv } from '../../lattice/state/index.ts';
import type { Subjects } from '../../lattice/subjects/index.ts';
import type { ProviderRequest } from '../../lattice/wire/index.ts';
import { serveProvider, type ProviderService } from '../service.ts';

const KEY = /^[-/_=.a-zA-Z0-9]+$/;

function key(value: unknown): string {
  if (typeof value !== 'string' || !KEY.test(value) || value.startsWith('.') || value.endsWith('.')) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `key ${JSON.stringify(value)} is not valid: use letters, digits and - / _ = . (not at the ends)`);
  }
  return value;
}

function isConflict(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test((err as Error).message ?? '');
}

/** Start serving key-value operations; buckets are opened (created) on first use. */
export function startKeyValueProvider(nc: NatsConnection, subjects: Subjects, logger: Logger): ProviderService {
  const buckets = new Map<string, Promise<KV>>();
  const bucketOf = (request: ProviderRequest): Promise<KV> => {
    const name = request.config.bucket;
    if (!name) throw new TrellisError('TRELLIS_BAD_REQUEST', `the keyvalue link of ${request.actor} has no bucket; run: trellis link put ${request.actor} keyvalue-nats bucket=<name>`);
    checkBucketName(name);
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
      const kv = await bucketOf(r);
      const k = key(r.args[0]);
      let delta: bigint;
      try {
        delta = BigInt(String(r.args[1]));
      } catch {
        throw new TrellisError('TRELLIS_BAD_REQUEST', `increment delta must be an integer, got ${String(r.args[1])}`);
      }
      // Compare-and-set on the revision; a conflict means someone else won: read again.
      for (let attempt = 0; attempt < 1000; attempt++) {
        const entry = await kv.get(k);
        try {
          if (!entry || entry.operation !== 'PUT') {
            await kv.create(k, new TextEncoder().encode(String(delta)));
            return String(delta);
          }
          const text = new TextDecoder().decode(entry.value);
          if (!/^-?\d+$/.test(text)) throw new TrellisError('TRELLIS_BAD_REQUEST', `value of ${k} is not an integer: ${JSON.stringify(text.slice(0, 40))}`);
          const next = BigInt(text) + delta;
          await kv.update(k, new TextEncoder().encode(String(next)), entry.revision);
          return String(next);
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
      }
      throw new TrellisError('TRELLIS_OVERLOADED', `increment of ${k} lost 1000 races in a row`);
    },
  }, logger.child({ provider: 'keyvalue-nats' }));
}
