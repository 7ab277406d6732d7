/**
 * Component claims: who vouches for a component (the issuer's nkey), what it is (subject key,
 * name, the sha256 of its bytes without the claims) and what it may use (capabilities), valid
 * from `nbf` to `exp`. They travel as a JWT signed the way NATS signs its JWTs (header alg
 * `ed25519-nkey`, Ed25519 over `header.payload` by the issuer's nkey), so the NATS tooling an
 * operator already keeps for accounts and users also keeps the keys that sign code.
 *
 * Signing goes through nkeys.js. Verification decodes the issuer key with nkeys.js too, but
 * checks the signature with Node's native Ed25519: nkeys.js verifies in pure JavaScript
 * (tweetnacl, several ms per call), and a host checks a signature on every actor start.
 */
import { createHash, createPublicKey, verify as verifyEd25519, type KeyObject } from 'node:crypto';
import { Prefix, fromPublic, type KeyPair } from 'nkeys.js';
import { TrellisError } from '../errors/index.ts';

/** What a signed component may be granted; everything else is denied by its claims. */
export const Capabilities = {
  keyvalue: 'a keyvalue link (keyvalue-nats)',
  'http-client': 'an http-client link and allowedHosts in its policy',
  'actor-call': 'calling other actors through the lattice',
  env: 'allowedEnvVars in its policy',
  filesystem: 'allowedDirs in its policy',
} as const;
export type Capability = keyof typeof Capabilities;

/** The claims of a signed component, as decoded (times in seconds since the epoch, as JWTs keep them). */
export interface ComponentClaims {
  /** Unique id of this token: hex sha256 of the unsigned payload. */
  jti: string;
  /** Issued at. */
  iat: number;
  /** Issuer: the public nkey that signed (account, operator or user key). */
  iss: string;
  /** Subject: the component's own public nkey, stable across its versions. */
  sub: string;
  name?: string;
  /** Not valid from this time on. */
  exp?: number;
  /** Not valid before this time. */
  nbf?: number;
  trellis: {
    type: 'component';
    /** `sha256:<hex>` of the component without its claims section. */
    hash: string;
    caps: Capability[];
    /** Claims format version. */
    ver: 1;
  };
}

/** The JWT header NATS uses; `typ` and `alg` are checked on the way in. */
const HEADER = { typ: 'JWT', alg: 'ed25519-nkey' } as const;
const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url');
const unb64url = (text: string) => Buffer.from(text, 'base64url');
const B64URL = /^[A-Za-z0-9_-]*$/;
export const MAX_JWT_CHARS = 64 * 1024;
/** Above this, a timestamp is surely milliseconds, not the seconds JWTs use (1e11 s is the year 5138). */
const MAX_SECONDS = 1e11;

/** Check a capability list; throws TRELLIS_BAD_OPTION naming the unknown one. */
export function capabilityList(caps: readonly string[]): Capability[] {
  for (const cap of caps) {
    if (!Object.hasOwn(Capabilities, cap)) throw new TrellisError('TRELLIS_BAD_OPTION', `unknown capability "${cap}" (known: ${Object.keys(Capabilities).join(', ')})`);
  }
  return [...new Set(caps as Capability[])].sort();
}

/** Sign claims (without `jti`, which is derived here) with the issuer's key pair; returns the JWT. */
export function signClaims(claims: Omit<ComponentClaims, 'jti' | 'iss'>, issuer: KeyPair): string {
  const iss = issuer.getPublicKey();
  const body = { ...claims, iss };
  const jti = createHash('sha256').update(JSON.stringify(body)).digest('hex');
  const signingInput = `${b64url(JSON.stringify(HEADER))}.${b64url(JSON.stringify({ jti, ...body }))}`;
  const signature = issuer.sign(new TextEncoder().encode(signingInput));
  return `${signingInput}.${b64url(signature)}`;
}

/** Issuer keys the claims may name: the kinds NATS signs with. */
const ISSUER_PREFIXES: Record<string, Prefix> = { A: Prefix.Account, O: Prefix.Operator, U: Prefix.User };

/** Is `key` a public nkey that may issue claims (account, operator or user)? */
export function isIssuerKey(key: unknown): key is string {
  if (typeof key !== 'string' || !Object.hasOwn(ISSUER_PREFIXES, key[0] ?? '')) return false;
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

/** Native Ed25519 public keys by nkey: decoding and wrapping costs more than the check itself. */
const keyObjects = new Map<string, KeyObject>();
/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): 32 raw key bytes follow. */
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * The 32 raw Ed25519 bytes of a public nkey (checked with fromPublic first): base32 of a prefix
 * byte, the key and a CRC16. Decoded here rather than through nkeys.js internals, which are not
 * part of its public API.
 */
function rawPublicKey(publicKey: string): Buffer {
  fromPublic(publicKey);
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of publicKey) {
    value = (value << 5) | BASE32.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out.slice(1, 33));
}

function keyObjectOf(publicKey: string): KeyObject {
  let key = keyObjects.get(publicKey);
  if (!key) {
    const raw = rawPublicKey(publicKey);
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' });
    if (keyObjects.size > 1000) keyObjects.clear();
    keyObjects.set(publicKey, key);
  }
  return key;
}

/** A JWT taken apart: the claims as they claim to be, and whether the issuer's signature holds. */
export interface DecodedClaims {
  claims: ComponentClaims;
  signatureValid: boolean;
}

function bad(what: string): never {
  throw new TrellisError('TRELLIS_BAD_SIGNATURE', `the claims are not a valid component JWT: ${what}`);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Decode a claims JWT and check its issuer's signature. Throws TRELLIS_BAD_SIGNATURE when it is
 * not a well-formed Trellis component JWT; a well-formed one with a wrong signature returns
 * `signatureValid: false` (so `trellis inspect` can still show what it claims).
 */
export function decodeClaims(jwt: string): DecodedClaims {
  // Real claims are well under 2 KiB; a huge one is an attempt to make every host parse it.
  if (jwt.length > MAX_JWT_CHARS) bad(`longer than ${MAX_JWT_CHARS} characters`);
  const parts = jwt.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) bad('expected three base64url parts');
  const [h, p, s] = parts as [string, string, string];
  let header: unknown;
  let payload: unknown;
  try {
    header = JSON.parse(unb64url(h).toString('utf8'));
    payload = JSON.parse(unb64url(p).toString('utf8'));
  } catch {
    bad('header or payload is not JSON');
  }
  const hd = header as Record<string, unknown>;
  if (typeof hd !== 'object' || hd === null || hd.typ !== HEADER.typ || hd.alg !== HEADER.alg) bad(`header must be ${JSON.stringify(HEADER)}`);
  const c = payload as Record<string, unknown>;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) bad('payload must be an object');
  if (!isIssuerKey(c.iss)) bad('iss must be an account, operator or user public nkey');
  if (typeof c.sub !== 'string' || c.sub === '') bad('sub must be a key');
  if (typeof c.jti !== 'string' || !isInt(c.iat)) bad('jti and iat are required');
  for (const t of ['exp', 'nbf'] as const) if (c[t] !== undefined && !isInt(c[t])) bad(`${t} must be seconds since the epoch`);
  for (const t of ['iat', 'exp', 'nbf'] as const) if (c[t] !== undefined && (c[t] as number) > MAX_SECONDS) bad(`${t} ${String(c[t])} looks like milliseconds; claims use seconds since the epoch`);
  if (c.name !== undefined && typeof c.name !== 'string') bad('name must be a string');
  const t = c.trellis as Record<string, unknown> | undefined;
  if (typeof t !== 'object' || t === null || t.type !== 'component' || t.ver !== 1) bad('trellis claims must be { type: "component", ver: 1, ... }');
  if (typeof t.hash !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(t.hash)) bad('trellis.hash must be sha256:<64 hex>');
  if (!Array.isArray(t.caps) || !t.caps.every((cap) => typeof cap === 'string' && Object.hasOwn(Capabilities, cap))) bad('trellis.caps must list known capabilities');
  const signature = unb64url(s);
  const signatureValid = signature.length === 64 && verifyEd25519(null, Buffer.from(`${h}.${p}`), keyObjectOf(c.iss as string), signature);
  return { claims: c as unknown as ComponentClaims, signatureValid };
}
