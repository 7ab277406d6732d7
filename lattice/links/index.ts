/**
 * Links connect an actor to a capability provider with config (e.g. counter → keyvalue-nats,
 * bucket=counters). They live in a KV bucket of the lattice, keyed `<actor>.<interface>`, and
 * hosts watch them, so an actor's imports resolve through its current links everywhere.
 */
import type { KV, NatsConnection } from 'nats';
import { TrellisError } from '../errors/index.ts';
import { checkBucketName, followKv, kvEntries, openKv } from '../state/index.ts';
import { token, type Subjects } from '../subjects/index.ts';
import { decodeJson, encodeJson, isRecord } from '../wire/index.ts';

/** Capability interfaces an actor can import, and the provider kinds that implement them. */
export const ProviderKinds = {
  'keyvalue-nats': { interface: 'keyvalue' },
  'http-client': { interface: 'http-client' },
} as const;
export type ProviderKind = keyof typeof ProviderKinds;
export type CapabilityInterface = (typeof ProviderKinds)[ProviderKind]['interface'];

/** Check a provider name; throws TRELLIS_BAD_REQUEST listing the known ones. */
export function providerKind(name: string): ProviderKind {
  if (!Object.hasOwn(ProviderKinds, name)) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `unknown provider "${name}" (known: ${Object.keys(ProviderKinds).join(', ')})`);
  }
  return name as ProviderKind;
}

/** One link. */
export interface Link {
  actor: string;
  provider: ProviderKind;
  interface: CapabilityInterface;
  config: Record<string, string>;
  updatedAt: string;
}

/** Read, write and watch links. */
export interface LinkStore {
  put(actor: string, provider: string, config: Record<string, string>): Promise<Link>;
  get(actor: string, iface: CapabilityInterface): Promise<Link | undefined>;
  list(actor?: string): Promise<Link[]>;
  delete(actor: string, provider: string): Promise<void>;
  /** Keep `cache` (actor → interface → link) current; returns a stop function. */
  follow(cache: Map<string, Link>): Promise<() => void>;
}

/** The cache key of a link. */
export function linkKey(actor: string, iface: string): string {
  return `${actor}.${iface}`;
}

function decodeLink(bytes: Uint8Array): Link | undefined {
  try {
    const v = decodeJson<unknown>(bytes, 'link');
    return isRecord(v) && typeof v.actor === 'string' && typeof v.provider === 'string' ? (v as unknown as Link) : undefined;
  } catch {
    return undefined;
  }
}

/** Open the link store of a lattice. */
export async function openLinks(nc: NatsConnection, subjects: Subjects): Promise<LinkStore> {
  const kv: KV = await openKv(nc, subjects.buckets.links);
  return {
    async put(actor, provider, config) {
      token(actor, 'actor name');
      const kind = providerKind(provider);
      if (kind === 'keyvalue-nats' && config.bucket !== undefined) checkBucketName(config.bucket);
      const link: Link = { actor, provider: kind, interface: ProviderKinds[kind].interface, config, updatedAt: new Date().toISOString() };
      await kv.put(linkKey(actor, link.interface), encodeJson(link));
      return link;
    },
    async get(actor, iface) {
      const entry = await kv.get(linkKey(token(actor, 'actor name'), iface));
      return entry && entry.operation === 'PUT' ? decodeLink(entry.value) : undefined;
    },
    async list(actor) {
      const prefix = actor ? `${token(actor, 'actor name')}.` : '';
      const links = (await kvEntries(kv)).filter(([key]) => key.startsWith(prefix)).map(([, value]) => decodeLink(value));
      return links.filter((l): l is Link => l !== undefined).sort((a, b) => a.actor.localeCompare(b.actor) || a.interface.localeCompare(b.interface));
    },
    async delete(actor, provider) {
      const kind = providerKind(provider);
      const key = linkKey(token(actor, 'actor name'), ProviderKinds[kind].interface);
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT') throw new TrellisError('TRELLIS_NOT_FOUND', `actor ${actor} has no ${provider} link`);
      await kv.delete(key);
    },
    follow: (cache) =>
      followKv(kv, (key, value) => {
        const link = value && decodeLink(value);
        if (link) cache.set(key, link);
        else cache.delete(key);
      }),
  };
}
