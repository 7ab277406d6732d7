/**
 * Signed components: the claims JWT lives in one custom section, `trellis-claims`, appended last,
 * and covers the sha256 of everything else. Changing any byte, or adding a section after signing,
 * changes that hash (a section added after the claims is refused outright: nothing may follow
 * them). Re-signing replaces the section.
 *
 * Verification is a pure function of (bytes, allowed issuers, now); the host runs it at every
 * actor start when it has allowed issuers. Its cost beyond the sha256 the host computes anyway
 * for the artifact digest is a walk over the top-level section headers and one native Ed25519
 * check: `componentHashes` computes the digest and the claims hash in one pass over the bytes.
 */
import { createHash } from 'node:crypto';
import type { KeyPair } from 'nkeys.js';
import { TrellisError, type ErrorCode } from '../errors/index.ts';
import { MAX_JWT_CHARS, capabilityList, decodeClaims, signClaims, type Capability, type ComponentClaims } from './claims.ts';
import { customPayload, replaceCustom, sections, withoutCustom, type Section } from './wasm.ts';

/** Name of the custom section that holds the claims JWT. */
export const CLAIMS_SECTION = 'trellis-claims';

/** Clock skew between the signer's and a host's clocks tolerated at nbf and exp (default). */
export const CLOCK_LEEWAY_MS = 60_000;

/** The claims JWT of a section, refusing an oversized one before decoding it. */
function claimsText(bytes: Uint8Array, section: Section): string {
  // The section also holds its name (a few bytes): anything much longer than a JWT may be is refused unread.
  if (section.end - section.start > MAX_JWT_CHARS + 64) throw new TrellisError('TRELLIS_BAD_SIGNATURE', `the ${CLAIMS_SECTION} section is ${section.end - section.start} bytes, more than claims may be (${MAX_JWT_CHARS})`);
  return new TextDecoder().decode(customPayload(bytes, section));
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Where the claims of a component are (if anywhere), or why their layout is wrong. */
interface ClaimsLayout {
  sections: Section[];
  claims: Section[];
}

function layoutOf(bytes: Uint8Array): ClaimsLayout {
  const all = sections(bytes);
  return { sections: all, claims: all.filter((s) => s.id === 0 && s.name === CLAIMS_SECTION) };
}

/**
 * The artifact digest (sha256 of all bytes) and, for a signed component, the hash its claims
 * cover (sha256 without the claims section), in one pass: when the claims come last, as signing
 * puts them, the covered bytes are a prefix, and the hash state after the prefix is copied.
 */
export function componentHashes(bytes: Uint8Array): { digest: string; unsignedHash?: string } {
  let claims: Section[] = [];
  try {
    claims = layoutOf(bytes).claims;
  } catch {
    // Not parseable: no claims hash; verification says why.
  }
  const last = claims.length === 1 && claims[0]!.end === bytes.length ? claims[0]! : undefined;
  if (!last) return { digest: sha256(bytes), ...(claims.length > 0 ? { unsignedHash: sha256(withoutCustom(bytes, CLAIMS_SECTION)) } : {}) };
  const hash = createHash('sha256').update(bytes.subarray(0, last.start));
  const unsignedHash = `sha256:${hash.copy().digest('hex')}`;
  return { digest: `sha256:${hash.update(bytes.subarray(last.start)).digest('hex')}`, unsignedHash };
}

/** What `signComponent` puts in the claims. */
export interface SignOptions {
  issuer: KeyPair;
  /** The component's public nkey. Default: the subject of the claims being replaced, else required. */
  subject?: string;
  name?: string;
  caps?: readonly string[];
  /** Issued-at, ms since the epoch. Default: now. */
  nowMs?: number;
  /** Expiry, ms since the epoch. Default: none. */
  expiresAtMs?: number;
  /** Not valid before, ms since the epoch. Default: valid at once. */
  notBeforeMs?: number;
}

/** Sign a component: its bytes with a (new or replaced) claims section, and the claims. */
export function signComponent(bytes: Uint8Array, options: SignOptions): { bytes: Uint8Array; claims: ComponentClaims; jwt: string } {
  const unsigned = withoutCustom(bytes, CLAIMS_SECTION);
  const subject = options.subject ?? previousSubject(bytes);
  if (!subject) throw new TrellisError('TRELLIS_BAD_OPTION', 'a subject key is required for a component signed for the first time');
  const seconds = (ms: number) => Math.floor(ms / 1000);
  const nowMs = options.nowMs ?? Date.now();
  if (options.expiresAtMs !== undefined && options.notBeforeMs !== undefined && options.expiresAtMs <= options.notBeforeMs) {
    throw new TrellisError('TRELLIS_BAD_OPTION', '--expires must be later than --not-before');
  }
  const claims: Omit<ComponentClaims, 'jti' | 'iss'> = {
    iat: seconds(nowMs),
    sub: subject,
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(options.expiresAtMs !== undefined ? { exp: seconds(options.expiresAtMs) } : {}),
    ...(options.notBeforeMs !== undefined ? { nbf: seconds(options.notBeforeMs) } : {}),
    trellis: { type: 'component', hash: sha256(unsigned), caps: capabilityList(options.caps ?? []), ver: 1 },
  };
  const jwt = signClaims(claims, options.issuer);
  const signed = replaceCustom(unsigned, CLAIMS_SECTION, new TextEncoder().encode(jwt));
  return { bytes: signed, claims: decodeClaims(jwt).claims, jwt };
}

/** The subject of the claims a component already carries (kept when signing again), if readable. */
export function previousSubject(bytes: Uint8Array): string | undefined {
  try {
    return readClaims(bytes)?.claims.sub;
  } catch {
    return undefined; // unreadable claims are replaced, not continued
  }
}

/** Everything `trellis inspect` shows: the claims as they claim to be, and every check's result. */
export interface ClaimsReport {
  claims: ComponentClaims;
  jwt: string;
  signatureValid: boolean;
  /** Does the hash in the claims match the bytes? */
  hashValid: boolean;
  /** Does a section follow the claims (added after signing)? */
  sectionsAfterClaims: number;
}

/** Read the claims of a component without trusting them; undefined when it has none. */
export function readClaims(bytes: Uint8Array): ClaimsReport | undefined {
  const layout = layoutOf(bytes);
  const { claims } = layout;
  if (claims.length === 0) return undefined;
  if (claims.length > 1) throw new TrellisError('TRELLIS_BAD_SIGNATURE', `the component has ${claims.length} ${CLAIMS_SECTION} sections; signing leaves exactly one`);
  const section = claims[0]!;
  const jwt = claimsText(bytes, section);
  const decoded = decodeClaims(jwt);
  const { unsignedHash } = componentHashes(bytes);
  const after = layout.sections.filter((s) => s.start >= section.end).length;
  return { claims: decoded.claims, jwt, signatureValid: decoded.signatureValid, hashValid: unsignedHash === decoded.claims.trellis.hash, sectionsAfterClaims: after };
}

/** A refusal: one of the signing codes and why. */
export interface Refusal {
  ok: false;
  code: Extract<ErrorCode, 'TRELLIS_UNSIGNED' | 'TRELLIS_BAD_SIGNATURE' | 'TRELLIS_EXPIRED' | 'TRELLIS_NOT_YET_VALID' | 'TRELLIS_UNTRUSTED_ISSUER'>;
  message: string;
}

/** What verification decides. */
export type Verdict = { ok: true; claims: ComponentClaims; caps: ReadonlySet<Capability> } | Refusal;

/**
 * Decide whether a host may run `bytes`: signed by an allowed issuer, unchanged since, and valid
 * at `nowMs`. `unsignedHash` is the claims hash if the caller already computed it (see
 * componentHashes); otherwise it is computed here. The checks run in the order that makes the
 * answer truthful: the signature and hash first (so the claims are the issuer's), then who the
 * issuer is, then the validity window, with `leewayMs` of clock skew either side.
 */
export function verifyComponent(bytes: Uint8Array, allowedIssuers: ReadonlySet<string>, nowMs: number, unsignedHash?: string, leewayMs = CLOCK_LEEWAY_MS): Verdict {
  const refuse = (code: Refusal['code'], message: string): Refusal => ({ ok: false, code, message });
  let layout: ClaimsLayout;
  try {
    layout = layoutOf(bytes);
  } catch (err) {
    return refuse('TRELLIS_BAD_SIGNATURE', `the component cannot be checked: ${(err as Error).message}`);
  }
  if (layout.claims.length === 0) return refuse('TRELLIS_UNSIGNED', `the component is not signed (no ${CLAIMS_SECTION} section); this host runs only components signed by an allowed issuer`);
  if (layout.claims.length > 1) return refuse('TRELLIS_BAD_SIGNATURE', `the component has ${layout.claims.length} ${CLAIMS_SECTION} sections; signing leaves exactly one`);
  const section = layout.claims[0]!;
  if (section.end !== bytes.length) return refuse('TRELLIS_BAD_SIGNATURE', 'a section was added after the claims (the component changed after signing)');
  let claims: ComponentClaims;
  try {
    const decoded = decodeClaims(claimsText(bytes, section));
    if (!decoded.signatureValid) return refuse('TRELLIS_BAD_SIGNATURE', `the claims signature does not verify with issuer ${decoded.claims.iss}`);
    claims = decoded.claims;
  } catch (err) {
    return refuse('TRELLIS_BAD_SIGNATURE', (err as Error).message);
  }
  const hash = unsignedHash ?? sha256(bytes.subarray(0, section.start));
  if (hash !== claims.trellis.hash) return refuse('TRELLIS_BAD_SIGNATURE', `the component changed after signing: its hash is ${hash}, the claims say ${claims.trellis.hash}`);
  if (!allowedIssuers.has(claims.iss)) return refuse('TRELLIS_UNTRUSTED_ISSUER', `issuer ${claims.iss} is not an allowed issuer of this host or lattice`);
  const leeway = Math.floor(leewayMs / 1000);
  const now = Math.floor(nowMs / 1000);
  if (claims.nbf !== undefined && now + leeway < claims.nbf) return refuse('TRELLIS_NOT_YET_VALID', `the claims are not valid before ${new Date(claims.nbf * 1000).toISOString()}`);
  if (claims.exp !== undefined && now - leeway >= claims.exp) return refuse('TRELLIS_EXPIRED', `the claims expired at ${new Date(claims.exp * 1000).toISOString()}`);
  return { ok: true, claims, caps: new Set(claims.trellis.caps) };
}

/** verifyComponent, throwing the refusal as a TrellisError. */
export function requireSigned(bytes: Uint8Array, allowedIssuers: ReadonlySet<string>, nowMs: number, unsignedHash?: string): { claims: ComponentClaims; caps: ReadonlySet<Capability> } {
  const verdict = verifyComponent(bytes, allowedIssuers, nowMs, unsignedHash);
  if (!verdict.ok) throw new TrellisError(verdict.code, verdict.message);
  return verdict;
}
