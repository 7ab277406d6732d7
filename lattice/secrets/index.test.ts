import { createCurve } from 'nkeys.js';
import { describe, expect, it } from 'vitest';
import { linkKind } from '../links/index.ts';
import { isSealed, maskSecrets, openBound, openSecret, sealSecret, secretHosts, unsealBound, unsealInto } from './index.ts';

const lattice = createCurve();
const context = { actor: 'fetcher', provider: 'http-client', name: 'password' };

describe('secrets - sealing', () => {
  it('secrets - a sealed value holds no plaintext and opens only with the lattice key, for its own link', () => {
    const sealed = sealSecret('hunter2-correct-horse', context, lattice.getPublicKey());
    expect(isSealed(sealed)).toBe(true);
    expect(sealed).not.toContain('hunter2');
    expect(Buffer.from(sealed.split('.').at(-1)!, 'base64url').toString('latin1')).not.toContain('hunter2');
    // Two seals of the same value differ (fresh sender key and nonce): equal secrets do not show.
    expect(sealSecret('hunter2-correct-horse', context, lattice.getPublicKey())).not.toBe(sealed);
    expect(openSecret(sealed, context, lattice)).toBe('hunter2-correct-horse');
    expect(() => openSecret(sealed, context, createCurve())).toThrow(expect.objectContaining({ code: 'TRELLIS_SECRET_UNSEALABLE' }));
    // Copied into another actor's link, or renamed, it does not open.
    expect(() => openSecret(sealed, { ...context, actor: 'thief' }, lattice)).toThrow(/sealed for secret password of the fetcher → http-client link/);
    expect(() => openSecret(sealed, { ...context, name: 'token' }, lattice)).toThrow(/put it again/);
    // A changed byte of the box: refused, and the message never holds the value.
    const box = sealed.split('.');
    const raw = Buffer.from(box.at(-1)!, 'base64url');
    raw[raw.length - 1] ^= 1;
    const forged = [...box.slice(0, -1), raw.toString('base64url')].join('.');
    expect(() => openSecret(forged, context, lattice)).toThrow(/corrupt or forged/);
    expect(() => sealSecret('x', context, 'not-a-key')).toThrow(/not a public curve key/);
  });

  it('secrets - unsealing lays secrets over the config; with secrets but no key, the call fails clearly', () => {
    const secrets = { password: sealSecret('pw', context, lattice.getPublicKey()) };
    expect(unsealInto({ user: 'app' }, secrets, context, lattice)).toEqual({ user: 'app', password: 'pw' });
    expect(unsealInto({ user: 'app' }, undefined, context, undefined)).toEqual({ user: 'app' });
    expect(() => unsealInto({}, secrets, context, undefined)).toThrow(/no secrets key; start it with --secrets-key/);
    expect(maskSecrets(secrets)).toEqual({ password: '***' });
  });

  it('links - a keyvalue link may not name one of Trellis\'s own buckets', () => {
    const base = { actor: 'counter', provider: 'keyvalue-nats', updatedAt: new Date().toISOString() };
    expect(linkKind.decode({ ...base, config: { bucket: 'counters' } }).config.bucket).toBe('counters');
    for (const bucket of ['trellis-prod-config', 'trellis-other-links', 'TRELLIS-prod-apps']) {
      expect(() => linkKind.decode({ ...base, config: { bucket } }), bucket).toThrow(expect.objectContaining({ code: 'TRELLIS_RESERVED_BUCKET' }));
    }
  });

  it('secrets - a link stores only sealed values, each name once', () => {
    const base = { actor: 'fetcher', provider: 'http-client', config: {}, updatedAt: new Date().toISOString() };
    const sealed = sealSecret('pw', context, lattice.getPublicKey());
    expect(linkKind.decode({ ...base, secrets: { password: sealed } }).secrets).toEqual({ password: sealed });
    expect(() => linkKind.decode({ ...base, secrets: { password: 'plain' } })).toThrow(/not a sealed value/);
    expect(() => linkKind.decode({ ...base, config: { password: 'x' }, secrets: { password: sealed } })).toThrow(/both a config value and a secret/);
  });

  it('secrets - destinations sealed with a secret come back only from the provider opening it', () => {
    const sealed = sealSecret('pw', context, lattice.getPublicKey(), ['API.example.com', '127.0.0.1:8443']);
    expect(openBound(sealed, context, lattice)).toEqual({ value: 'pw', hosts: ['api.example.com', '127.0.0.1:8443'] });
    expect(openBound(sealSecret('pw', context, lattice.getPublicKey()), context, lattice)).toEqual({ value: 'pw' });
    expect(unsealBound({}, { token: sealSecret('t', { ...context, name: 'token' }, lattice.getPublicKey(), ['*.example.com']) }, context, lattice)).toEqual({ config: { token: 't' }, hosts: { token: ['*.example.com'] } });
    expect(() => secretHosts(['https://evil.example/'])).toThrow(expect.objectContaining({ code: 'TRELLIS_BAD_OPTION' }));
    expect(() => sealSecret('pw', context, lattice.getPublicKey(), ['a b'])).toThrow(/not a destination host/);
  });

  it('secrets - a malformed sealed value (truncated box, bad sender key) is TRELLIS_SECRET_UNSEALABLE, not internal', () => {
    const parts = sealSecret('pw', context, lattice.getPublicKey()).split('.');
    const truncated = [...parts.slice(0, 4), 'AA'].join('.');
    const badSender = [parts[0], parts[1], parts[2], `X${'A'.repeat(55)}`, parts[4]].join('.');
    for (const bad of [truncated, badSender]) {
      expect(() => openSecret(bad, context, lattice)).toThrow(expect.objectContaining({ code: 'TRELLIS_SECRET_UNSEALABLE', message: expect.stringContaining('corrupt or forged') }));
    }
  });
});
