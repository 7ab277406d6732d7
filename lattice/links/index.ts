/**
 * Links connect an actor to a capability provider with config (e.g. counter → keyvalue-nats,
 * bucket=counters). They live in a KV bucket of the lattice, keyed `<actor>.<interface>`, and
 * hosts watch them, so an actor's imports resolve through its current links everywhere.
 */
import type { NatsConnection } from 'nats';
import { openDocuments, type DocumentKind } from '../documents/index.ts';
import { TrellisError } from '../errors/index.ts';
import { checkActorBucket } from '../state/index.ts';
import { token, type Subjects } from '../subjects/index.ts';
import { isRecord } from '../wire/index.ts';
import { isSealed } from '../secrets/index.ts';

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
  /**
   * Secret values sealed to the lattice's curve key (lattice/secrets); only the provider opens
   * them, and every display shows them as `***`. Absent when the link has none.
   */
  secrets?: Record<string, string>;
  updatedAt: string;
  /** The app that declared it (its reconciler removes it with the app); absent when made by hand. */
  app?: string;
}

/** Read, write and watch links. */
export interface LinkStore {
  /** Write a link; `secrets` are already sealed (lattice/secrets sealSecret). */
  put(actor: string, provider: string, config: Record<string, string>, secrets?: Record<string, string>): Promise<Link>;
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

/** Links as a document kind, keyed by actor and interface (an actor has one link per interface). */
export const linkKind: DocumentKind<Link> = {
  name: 'link',
  bucket: (subjects) => subjects.buckets.links,
  key: (link) => linkKey(link.actor, link.interface),
  decode(value) {
    if (!isRecord(value) || typeof value.provider !== 'string' || !isRecord(value.config) || typeof value.updatedAt !== 'string') {
      throw new TrellisError('TRELLIS_BAD_REQUEST', 'link must hold actor, provider, config and updatedAt');
    }
    const provider = providerKind(value.provider);
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(value.config)) {
      if (typeof v !== 'string') throw new TrellisError('TRELLIS_BAD_REQUEST', `link config ${k} must be a string`);
      config[k] = v;
    }
    if (provider === 'keyvalue-nats' && config.bucket !== undefined) checkActorBucket(config.bucket);
    const link: Link = { actor: token(value.actor as string, 'actor name'), provider, interface: ProviderKinds[provider].interface, config, updatedAt: value.updatedAt };
    if (value.secrets !== undefined) {
      if (!isRecord(value.secrets)) throw new TrellisError('TRELLIS_BAD_REQUEST', 'link secrets must be a map of sealed values');
      // Plaintext must never reach the bucket: only sealed values are stored.
      for (const [k, v] of Object.entries(value.secrets)) {
        if (!isSealed(v)) throw new TrellisError('TRELLIS_BAD_REQUEST', `link secret ${k} is not a sealed value (seal it with \`trellis link put --secret\`)`);
        if (Object.hasOwn(config, k)) throw new TrellisError('TRELLIS_BAD_REQUEST', `link ${k} is both a config value and a secret; give it once`);
      }
      if (Object.keys(value.secrets).length > 0) link.secrets = { ...(value.secrets as Record<string, string>) };
    }
    return typeof value.app === 'string' ? { ...link, app: token(value.app, 'app name') } : link;
  },
};

/** Open the link store of a lattice. */
export async function openLinks(nc: NatsConnection, subjects: Subjects): Promise<LinkStore> {
  const docs = await openDocuments(nc, subjects, linkKind);
  return {
    async put(actor, provider, config, secrets) {
      const kind = providerKind(provider);
      return (await docs.put({ actor, provider: kind, interface: ProviderKinds[kind].interface, config, ...(secrets ? { secrets } : {}), updatedAt: new Date().toISOString() })).value;
    },
    async get(actor, iface) {
      return (await docs.get(linkKey(token(actor, 'actor name'), iface)))?.value;
    },
    async list(actor) {
      const links = (await docs.list(actor ? `${token(actor, 'actor name')}.*` : undefined)).map((d) => d.value);
      return links.sort((a, b) => a.actor.localeCompare(b.actor) || a.interface.localeCompare(b.interface));
    },
    async delete(actor, provider) {
      const kind = providerKind(provider);
      const deleted = await docs.delete(linkKey(token(actor, 'actor name'), ProviderKinds[kind].interface));
      if (!deleted) throw new TrellisError('TRELLIS_NOT_FOUND', `actor ${actor} has no ${provider} link`);
    },
    follow: (cache) =>
      docs.follow(({ key, value }) => {
        if (value) cache.set(key, value);
        else cache.delete(key);
      }),
  };
}
