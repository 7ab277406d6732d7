import { createHash } from 'node:crypto';
import { createAccount, createUser } from 'nkeys.js';
import { describe, expect, it } from 'vitest';
import { TrellisError } from '../errors/index.ts';
import { decodeClaims, signClaims } from './claims.ts';
import { CLAIMS_SECTION, componentHashes, readClaims, requireSigned, signComponent, verifyComponent } from './verify.ts';
import { customSection, sections } from './wasm.ts';

const COMPONENT = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);
const NOW = Date.parse('2026-06-01T00:00:00Z');
const DAY = 86_400_000;
const issuer = createAccount();
const subject = createUser().getPublicKey();
const allowed = new Set([issuer.getPublicKey()]);
const sign = (bytes: Uint8Array = COMPONENT, extra: Partial<Parameters<typeof signComponent>[1]> = {}) => signComponent(bytes, { issuer, subject, nowMs: NOW, caps: ['keyvalue'], ...extra }).bytes;
const concat = (a: Uint8Array, b: Uint8Array) => Uint8Array.from([...a, ...b]);
const refusal = (bytes: Uint8Array, issuers = allowed, now = NOW) => {
  const v = verifyComponent(bytes, issuers, now);
  return v.ok ? 'ok' : v.code;
};

describe('signing - claims and verification', () => {
  it('signing - a signed component verifies and gives its claims, capabilities and a NATS-style JWT', () => {
    const signed = sign(COMPONENT, { name: 'echo', expiresAtMs: NOW + 90 * DAY });
    const verdict = verifyComponent(signed, allowed, NOW);
    expect(verdict.ok).toBe(true);
    if (!verdict.ok) return;
    expect(verdict.claims).toMatchObject({ iss: issuer.getPublicKey(), sub: subject, name: 'echo', iat: NOW / 1000, exp: (NOW + 90 * DAY) / 1000 });
    expect(verdict.claims.trellis.hash).toBe(`sha256:${createHash('sha256').update(COMPONENT).digest('hex')}`);
    expect([...verdict.caps]).toEqual(['keyvalue']);
    // The claims are the last section; everything before them is the original, untouched.
    const last = sections(signed).at(-1)!;
    expect(last.name).toBe(CLAIMS_SECTION);
    expect(signed.subarray(0, last.start)).toEqual(COMPONENT);
    const report = readClaims(signed)!;
    expect(JSON.parse(Buffer.from(report.jwt.split('.')[0]!, 'base64url').toString())).toEqual({ typ: 'JWT', alg: 'ed25519-nkey' });
    // The signature is the issuer's nkey signature over header.payload (what nkeys verifies too).
    const [h, p, s] = report.jwt.split('.') as [string, string, string];
    expect(issuer.verify(new TextEncoder().encode(`${h}.${p}`), Buffer.from(s, 'base64url'))).toBe(true);
  });

  it('signing - unsigned is TRELLIS_UNSIGNED', () => {
    expect(refusal(COMPONENT)).toBe('TRELLIS_UNSIGNED');
    expect(() => requireSigned(COMPONENT, allowed, NOW)).toThrow(TrellisError);
  });

  it('signing - any byte changed anywhere is TRELLIS_BAD_SIGNATURE', () => {
    const signed = sign();
    const claimsStart = sections(signed).at(-1)!.start;
    // A byte of the component, and a byte inside the JWT's payload and signature.
    for (const at of [9, 12, claimsStart + 30, signed.length - 70, signed.length - 5]) {
      const tampered = Uint8Array.from(signed);
      // Base64url stays base64url: swap one letter for another.
      tampered[at] = tampered[at] === 0x41 ? 0x42 : 0x41;
      expect(refusal(tampered), `byte ${at}`).toBe('TRELLIS_BAD_SIGNATURE');
    }
  });

  it('signing - a section added after signing is TRELLIS_BAD_SIGNATURE, before or after the claims', () => {
    const signed = sign();
    expect(refusal(concat(signed, customSection('extra', Uint8Array.from([1]))))).toBe('TRELLIS_BAD_SIGNATURE');
    const last = sections(signed).at(-1)!;
    const inserted = Uint8Array.from([...signed.subarray(0, last.start), ...customSection('extra', Uint8Array.from([1])), ...signed.subarray(last.start)]);
    const v = verifyComponent(inserted, allowed, NOW);
    expect(v.ok ? '' : v.message).toMatch(/changed after signing/);
    // Two claims sections (one copied in) are refused too.
    expect(refusal(concat(COMPONENT, concat(customSection(CLAIMS_SECTION, Uint8Array.from([1])), signed.subarray(last.start))))).toBe('TRELLIS_BAD_SIGNATURE');
    // Truncated.
    expect(refusal(signed.subarray(0, signed.length - 1))).toBe('TRELLIS_BAD_SIGNATURE');
  });

  it('signing - claims signed by another key than the one they name are TRELLIS_BAD_SIGNATURE', () => {
    const signed = sign();
    const report = readClaims(signed)!;
    const forger = createAccount();
    const [h, p] = report.jwt.split('.') as [string, string];
    const forged = `${h}.${p}.${Buffer.from(forger.sign(new TextEncoder().encode(`${h}.${p}`))).toString('base64url')}`;
    const bytes = concat(COMPONENT, customSection(CLAIMS_SECTION, new TextEncoder().encode(forged)));
    expect(refusal(bytes)).toBe('TRELLIS_BAD_SIGNATURE');
    expect(decodeClaims(forged).signatureValid).toBe(false);
    expect(refusal(concat(COMPONENT, customSection(CLAIMS_SECTION, new TextEncoder().encode('not.a.jwt'))))).toBe('TRELLIS_BAD_SIGNATURE');
    const huge = verifyComponent(concat(COMPONENT, customSection(CLAIMS_SECTION, new TextEncoder().encode('a'.repeat(100_000)))), allowed, NOW);
    expect(huge.ok ? '' : huge.message).toMatch(/longer than|more than claims may be/);
  });

  it('signing - an issuer not allowed is TRELLIS_UNTRUSTED_ISSUER', () => {
    expect(refusal(sign(), new Set([createAccount().getPublicKey()]))).toBe('TRELLIS_UNTRUSTED_ISSUER');
    expect(refusal(sign(), new Set())).toBe('TRELLIS_UNTRUSTED_ISSUER');
  });

  it('signing - expired at exp, not valid before nbf, valid in between', () => {
    const signed = sign(COMPONENT, { notBeforeMs: NOW + DAY, expiresAtMs: NOW + 2 * DAY });
    expect(refusal(signed, allowed, NOW)).toBe('TRELLIS_NOT_YET_VALID');
    expect(refusal(signed, allowed, NOW + 1.5 * DAY)).toBe('ok');
    expect(refusal(signed, allowed, NOW + 2 * DAY + 61_000)).toBe('TRELLIS_EXPIRED');
    expect(() => sign(COMPONENT, { notBeforeMs: NOW + DAY, expiresAtMs: NOW })).toThrow(/later than/);
  });

  it('signing - a minute of clock skew is tolerated at nbf and exp, no more', () => {
    const signed = sign(COMPONENT, { notBeforeMs: NOW + 30_000, expiresAtMs: NOW + DAY });
    expect(refusal(signed, allowed, NOW)).toBe('ok');
    expect(refusal(sign(COMPONENT, { notBeforeMs: NOW + 90_000 }), allowed, NOW)).toBe('TRELLIS_NOT_YET_VALID');
    expect(refusal(signed, allowed, NOW + DAY + 30_000)).toBe('ok');
    expect(refusal(signed, allowed, NOW + DAY + 61_000)).toBe('TRELLIS_EXPIRED');
    expect(verifyComponent(signed, allowed, NOW + DAY + 30_000, undefined, 0).ok).toBe(false);
  });

  it('signing - millisecond timestamps and an oversized claims section are refused', () => {
    // Signed with exp in milliseconds (a common mistake): it would never expire.
    expect(() => signComponent(COMPONENT, { issuer, subject, nowMs: NOW, caps: [], expiresAtMs: NOW * 1000 })).toThrow(/looks like milliseconds/);
    const jwt = signClaims({ iat: NOW / 1000, exp: NOW * 1000, sub: subject, trellis: { type: 'component', hash: `sha256:${'0'.repeat(64)}`, caps: [], ver: 1 } }, issuer);
    expect(() => decodeClaims(jwt)).toThrow(expect.objectContaining({ code: 'TRELLIS_BAD_SIGNATURE', message: expect.stringContaining('exp 1780272000000000 looks like milliseconds') }));
    const huge = concat(COMPONENT, customSection(CLAIMS_SECTION, new Uint8Array(200_000).fill(0x41)));
    expect(verifyComponent(huge, allowed, NOW)).toMatchObject({ ok: false, code: 'TRELLIS_BAD_SIGNATURE', message: expect.stringContaining('more than claims may be') });
    expect(() => readClaims(huge)).toThrow(/more than claims may be/);
  });

  it('signing - re-signing replaces the claims and keeps the subject; the digest and claims hash come from one pass', () => {
    const first = sign();
    const other = createAccount();
    const again = signComponent(first, { issuer: other, nowMs: NOW, caps: ['http-client', 'keyvalue'] });
    expect(sections(again.bytes).filter((s) => s.name === CLAIMS_SECTION)).toHaveLength(1);
    expect(again.claims).toMatchObject({ sub: subject, iss: other.getPublicKey(), trellis: { caps: ['http-client', 'keyvalue'] } });
    expect(refusal(again.bytes, new Set([other.getPublicKey()]))).toBe('ok');
    const hashes = componentHashes(again.bytes);
    expect(hashes.digest).toBe(`sha256:${createHash('sha256').update(again.bytes).digest('hex')}`);
    expect(hashes.unsignedHash).toBe(again.claims.trellis.hash);
    expect(componentHashes(COMPONENT)).toEqual({ digest: `sha256:${createHash('sha256').update(COMPONENT).digest('hex')}` });
    // A precomputed claims hash is used as given (a wrong one refuses).
    expect(verifyComponent(again.bytes, new Set([other.getPublicKey()]), NOW, `sha256:${'0'.repeat(64)}`).ok).toBe(false);
    expect(() => signComponent(COMPONENT, { issuer, nowMs: NOW })).toThrow(/subject key is required/);
    expect(() => sign(COMPONENT, { caps: ['root'] })).toThrow(/unknown capability "root"/);
  });

  it('signing - inspect reports a tampered component without trusting it', () => {
    const signed = sign();
    const tampered = Uint8Array.from(signed);
    tampered[10] ^= 1;
    expect(readClaims(tampered)).toMatchObject({ signatureValid: true, hashValid: false, sectionsAfterClaims: 0 });
    expect(readClaims(concat(signed, customSection('x', Uint8Array.from([]))))).toMatchObject({ signatureValid: true, hashValid: false, sectionsAfterClaims: 1 });
    expect(readClaims(COMPONENT)).toBeUndefined();
  });
});
