/**
 * The host registry: every host keeps a small entry in a KV bucket with a TTL, refreshed with
 * each heartbeat and deleted when it stops. A client that lists it knows which hosts to expect,
 * so `get hosts` stops as soon as they have all answered instead of waiting for silence.
 */
import type { KV, NatsConnection } from 'nats';
import { openKv } from '../state/index.ts';
import type { Subjects } from '../subjects/index.ts';
import { encodeJson } from '../wire/index.ts';

/** Longest heartbeat period a host may have; entries outlive three missed beats of it. */
export const REGISTRY_TTL_MS = 15_000;

/** What a host writes about itself. */
export interface RegistryEntry {
  id: string;
  name: string;
  heartbeatMs: number;
}

/**
 * Open the host registry of a lattice: hosts create it on first use; readers (`get hosts`) only
 * bind, so listing hosts never creates a stream. Neither waits long for JetStream to settle: a
 * lattice without JetStream simply has no registry.
 */
export function openRegistry(nc: NatsConnection, subjects: Subjects, options: { bindOnly?: boolean } = {}): Promise<KV> {
  return openKv(nc, subjects.buckets.hosts, { ttlMs: REGISTRY_TTL_MS, bindOnly: options.bindOnly, settleMs: 500 });
}

/** Write (or refresh) a host's entry. */
export async function registerHost(kv: KV, entry: RegistryEntry): Promise<void> {
  await kv.put(entry.id, encodeJson(entry));
}

/** The ids of every host registered now. */
export async function registeredHosts(kv: KV): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const key of await kv.keys()) ids.add(key);
  return ids;
}
