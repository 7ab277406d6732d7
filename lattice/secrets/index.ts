/**
 * Sealed secrets: link values (a password, an API token) stored in KV sealed to the lattice's
 * curve key (an nkeys xkey: X25519 + XSalsa20-Poly1305), so whoever reads the links bucket, a
 * host included, sees only ciphertext. The CLI seals with a fresh sender key per value; only a
 * provider given the lattice's curve seed (`--secrets-key <file>`) opens them, at the moment it
 * uses them. Each plaintext is bound to its actor, provider and name: a sealed value copied into
 * another actor's link does not open there. A secret may also be bound to destinations (host
 * patterns, as in a policy's allowedHosts), chosen when it is sealed: a provider that sends it
 * over the network sends it only there. Whoever can publish provider requests (any host) can
 * name any actor, so the destination binding, not the actor name, is what keeps a secret from
 * being sent to a host of the requester's choosing.
 *
 * Everywhere a link is shown (link get, logs, events) its secrets read `***`.
 */
import type { NatsConnection } from 'nats';
import { createCurve, fromPublic, type KeyPair } from 'nkeys.js';
import { openDocuments, type DocumentKind } from '../documents/index.ts';
import { TrellisError } from '../errors/index.ts';
import type { Subjects } from '../subjects/index.ts';
import { isRecord } from '../wire/index.ts';

/** What every secret value shows as. */
export const SECRET_MASK = '***';

/** `sealed.v1.<recipient xkey>.<sender xkey>.<base64url box>`: the recipient names the key needed. */
const SEALED = /^sealed\.v1\.(X[A-Z2-7]{55})\.(X[A-Z2-7]{55})\.([A-Za-z0-9_-]+)$/;

/** Which link a secret belongs to: sealed into the plaintext and checked on opening. */
export interface SecretContext {
  actor: string;
  provider: string;
  name: string;
}

/** Is `value` a sealed secret (by its form; whether it opens is another matter)? */
export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && SEALED.test(value);
}

/** Is `key` a public curve key (X...)? */
export function isCurveKey(key: unknown): key is string {
  if (typeof key !== 'string' || !key.startsWith('X')) return false;
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

/** A destination pattern: `host`, `host:port` or `*.domain` (the allowedHosts syntax). */
const HOST_PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/i;

/** Check destination patterns; TRELLIS_BAD_OPTION naming the first that is not one. */
export function secretHosts(patterns: readonly string[]): string[] {
  for (const p of patterns) if (!HOST_PATTERN.test(p)) throw new TrellisError('TRELLIS_BAD_OPTION', `"${p}" is not a destination host (host, host:port or *.domain)`);
  return [...new Set(patterns.map((p) => p.toLowerCase()))];
}

/** An opened secret: its value and, when bound, the only hosts it may be sent to. */
export interface OpenedSecret {
  value: string;
  hosts?: string[];
}

/** Seal `value` for `context` to the lattice's public curve key, bound to `hosts` when given. */
export function sealSecret(value: string, context: SecretContext, recipient: string, hosts?: readonly string[]): string {
  if (!isCurveKey(recipient)) throw new TrellisError('TRELLIS_BAD_OPTION', `"${recipient}" is not a public curve key (X..., from \`trellis keys gen --kind curve\`)`);
  const bound = hosts && hosts.length > 0 ? secretHosts(hosts) : undefined;
  const sender = createCurve();
  try {
    const plain = new TextEncoder().encode(JSON.stringify({ actor: context.actor, provider: context.provider, name: context.name, value, ...(bound ? { hosts: bound } : {}) }));
    const box = sender.seal(plain, recipient);
    return `sealed.v1.${recipient}.${sender.getPublicKey()}.${Buffer.from(box).toString('base64url')}`;
  } finally {
    // The sender key is needed by nobody: the box opens with the recipient's seed alone.
    sender.clear();
  }
}

/** Open a sealed secret with the lattice's curve key; TRELLIS_SECRET_UNSEALABLE naming why (never the value). */
export function openSecret(sealed: string, context: SecretContext, key: KeyPair): string {
  return openBound(sealed, context, key).value;
}

/** Open a sealed secret with its destination binding (see openSecret). */
export function openBound(sealed: string, context: SecretContext, key: KeyPair): OpenedSecret {
  const what = `secret ${context.name} of the ${context.actor} → ${context.provider} link`;
  const match = SEALED.exec(sealed);
  if (!match) throw new TrellisError('TRELLIS_SECRET_UNSEALABLE', `${what} is not a sealed value`);
  const [, recipient, sender, box] = match as unknown as [string, string, string, string];
  if (recipient !== key.getPublicKey()) throw new TrellisError('TRELLIS_SECRET_UNSEALABLE', `${what} is sealed to ${recipient}, not to this provider's key ${key.getPublicKey()}`);
  let plain: Uint8Array | null;
  try {
    plain = key.open(Buffer.from(box, 'base64url'), sender);
  } catch {
    // nkeys throws on a box too short or a sender key that is not one: malformed, not a bug.
    plain = null;
  }
  if (!plain) throw new TrellisError('TRELLIS_SECRET_UNSEALABLE', `${what} does not open with this provider's key (corrupt or forged)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(plain));
  } catch {
    throw new TrellisError('TRELLIS_SECRET_UNSEALABLE', `${what} opened to something that is not a Trellis secret`);
  }
  if (!isRecord(parsed) || typeof parsed.value !== 'string') throw new TrellisError('TRELLIS_SECRET_UNSEALABLE', `${what} opened to something that is not a Trellis secret`);
  if (parsed.actor !== context.actor || parsed.provider !== context.provider || parsed.name !== context.name) {
    throw new TrellisError('TRELLIS_SECRET_UNSEALABLE', `${what} was sealed for secret ${String(parsed.name)} of the ${String(parsed.actor)} → ${String(parsed.provider)} link; put it again for this link`);
  }
  if (parsed.hosts === undefined) return { value: parsed.value };
  if (!Array.isArray(parsed.hosts) || !parsed.hosts.every((h) => typeof h === 'string')) throw new TrellisError('TRELLIS_SECRET_UNSEALABLE', `${what} opened to something that is not a Trellis secret`);
  return { value: parsed.value, hosts: parsed.hosts as string[] };
}

/** Every sealed value of a record shown as `***` (for link get, logs and events). */
export function maskSecrets(secrets: Record<string, string> | undefined): Record<string, string> | undefined {
  return secrets && Object.fromEntries(Object.keys(secrets).map((k) => [k, SECRET_MASK]));
}

/**
 * Open every secret of a provider request and lay them over its config (secrets win: a name
 * may be in only one of them anyway, `link put` refuses both). Without a key, a request that
 * carries secrets fails: running with a config missing its password would fail later and worse.
 */
export function unsealInto(config: Record<string, string>, secrets: Record<string, string> | undefined, context: Omit<SecretContext, 'name'>, key: KeyPair | undefined): Record<string, string> {
  return unsealBound(config, secrets, context, key).config;
}

/** unsealInto, also returning each opened secret's destination binding (undefined: unbound). */
export function unsealBound(config: Record<string, string>, secrets: Record<string, string> | undefined, context: Omit<SecretContext, 'name'>, key: KeyPair | undefined): { config: Record<string, string>; hosts: Record<string, string[] | undefined> } {
  if (!secrets || Object.keys(secrets).length === 0) return { config, hosts: {} };
  if (!key) throw new TrellisError('TRELLIS_SECRET_UNSEALABLE', `the ${context.actor} → ${context.provider} link has sealed secrets (${Object.keys(secrets).join(', ')}) but this provider has no secrets key; start it with --secrets-key <curve seed file>`);
  const out = { ...config };
  const hosts: Record<string, string[] | undefined> = {};
  for (const [name, sealed] of Object.entries(secrets)) {
    const opened = openBound(sealed, { ...context, name }, key);
    out[name] = opened.value;
    hosts[name] = opened.hosts;
  }
  return { config: out, hosts };
}

/** The lattice's public curve key, kept in the config bucket where `link put --secret` finds it. */
export interface SecretsKeyDoc {
  publicKey: string;
  updatedAt: string;
}

export const secretsKeyKind: DocumentKind<SecretsKeyDoc> = {
  name: 'secrets key',
  bucket: (subjects) => subjects.buckets.config,
  key: () => 'security.secrets-key',
  decode(value) {
    if (!isRecord(value) || !isCurveKey(value.publicKey) || typeof value.updatedAt !== 'string') {
      throw new TrellisError('TRELLIS_BAD_REQUEST', 'the secrets key must hold publicKey (a public curve key, X...) and updatedAt');
    }
    return { publicKey: value.publicKey, updatedAt: value.updatedAt };
  },
};

/** Read or set the lattice's public secrets key. */
export async function openSecretsKey(nc: NatsConnection, subjects: Subjects): Promise<{ get(): Promise<string | undefined>; set(publicKey: string): Promise<string> }> {
  const docs = await openDocuments(nc, subjects, secretsKeyKind);
  return {
    get: async () => (await docs.get(secretsKeyKind.key(undefined as never)))?.value.publicKey,
    set: async (publicKey) => {
      if (!isCurveKey(publicKey)) throw new TrellisError('TRELLIS_BAD_REQUEST', `"${publicKey}" is not a public curve key (X..., from \`trellis keys gen --kind curve\`)`);
      return (await docs.put({ publicKey, updatedAt: new Date().toISOString() })).value.publicKey;
    },
  };
}
