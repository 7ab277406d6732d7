import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fromSeed, createUser } from 'nkeys.js';
import { describe, expect, it } from 'vitest';
import { childConnectEnv, compileNatsConnect, describeConnect, natsAuthFromEnv } from './index.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'connect-opts-'));
const file = (name: string, text: string) => {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
};
const compile = (auth: Parameters<typeof compileNatsConnect>[0]['auth'], servers = ['nats://127.0.0.1:4222']) => compileNatsConnect({ servers, lattice: 'prod', role: 'host', auth });

describe('options - NATS connection settings', () => {
  it('connect - one credential at most, a password needs a user, a certificate needs its key, all named by flag', () => {
    expect(() => compile({ natsToken: 't', natsUser: 'u', natsPassword: 'p' })).toThrow(/option --nats-token: only one NATS credential/);
    expect(() => compile({ natsPassword: 'p' })).toThrow(/option --nats-password: needs --nats-user/);
    expect(() => compile({ natsUser: 'u' })).toThrow(/option --nats-user: needs --nats-password/);
    expect(() => compile({ tlsCert: file('c.pem', 'x') })).toThrow(/option --tls-cert: mutual TLS needs both/);
    expect(() => compile({ natsToken: '' })).toThrow(/--nats-token: may not be empty/);
  });

  it('connect - unreadable or malformed files fail at start naming the flag, never printing the content', () => {
    expect(() => compile({ natsCreds: path.join(dir, 'missing.creds') })).toThrow(expect.objectContaining({ code: 'TRELLIS_FILE_UNREADABLE', message: expect.stringMatching(/--nats-creds: cannot read .*missing\.creds \(ENOENT\)/) }));
    const junk = file('junk.nk', 'SECRET-NOT-A-SEED');
    let message = '';
    try {
      compile({ natsNkey: junk });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/--nats-nkey: .* does not hold an nkey user seed/);
    expect(message).not.toContain('SECRET');
    expect(() => compile({ natsCreds: junk })).toThrow(/--nats-creds: .* is not a NATS creds file/);
  });

  it('connect - the inbox user is the user name, the nkey\'s public key, or the role; explicit wins', () => {
    expect(compile({}).inboxPrefix).toBe('_INBOX.prod.host');
    expect(compile({ natsUser: 'alice', natsPassword: 'p' }).inboxPrefix).toBe('_INBOX.prod.alice');
    const user = createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const c = compile({ natsNkey: file('u.nk', `${seed}\n`) });
    expect(c.inboxUser).toBe(fromSeed(user.getSeed()).getPublicKey());
    expect(c.auth).toMatchObject({ kind: 'nkey', seed });
    expect(compile({ natsToken: 't', natsInboxUser: 'edge-1' }).inboxPrefix).toBe('_INBOX.prod.edge-1');
    expect(() => compile({ natsUser: 'a.b', natsPassword: 'p' })).toThrow(/--nats-user: inbox user "a\.b"/);
  });

  it('connect - tls:// URLs require TLS; files become PEM text; what may be shown carries no secret', () => {
    expect(compile({}, ['tls://n1:4222']).tls).toEqual({});
    expect(compile({}).tls).toBeUndefined();
    const ca = file('ca.pem', 'PEM-CA');
    const key = file('k.pem', 'PEM-KEY-SECRET');
    const c = compile({ tlsCa: ca, tlsCert: file('c.pem', 'PEM-CERT'), tlsKey: key, natsUser: 'u', natsPassword: 'hunter2' });
    expect(c.tls).toMatchObject({ ca: 'PEM-CA', cert: 'PEM-CERT', key: 'PEM-KEY-SECRET', keyFile: key });
    expect(JSON.stringify(describeConnect(c))).not.toMatch(/hunter2|PEM-KEY-SECRET/);
    expect(structuredClone(c)).toEqual(c);
  });

  it('connect - flags win over TRELLIS_NATS_* variables; a child gets the settings in its environment, none of the parent\'s', () => {
    expect(natsAuthFromEnv({ natsUser: 'flag' }, { TRELLIS_NATS_USER: 'env', TRELLIS_NATS_PASSWORD: 'pw', TRELLIS_NATS_TOKEN: '' })).toEqual({ natsUser: 'flag', natsPassword: 'pw' });
    const c = compile({ natsUser: 'prov', natsPassword: 'pw2' });
    const env = childConnectEnv(c, {
      PATH: '/bin',
      TRELLIS_NATS_CREDS: '/parent.creds',
      TRELLIS_NATS_TOKEN: 'parent',
      TRELLIS_CONTROLLER_PASSWORD: 'controller-secret',
      TRELLIS_PROVIDER_TOKEN: 'provider-token',
      TRELLIS_HOST_SEED: 'SUAHOSTSEED',
    });
    expect(env).toMatchObject({ PATH: '/bin', TRELLIS_NATS_URL: 'nats://127.0.0.1:4222', TRELLIS_NATS_USER: 'prov', TRELLIS_NATS_PASSWORD: 'pw2' });
    expect(env.TRELLIS_NATS_CREDS).toBeUndefined();
    expect(env.TRELLIS_NATS_TOKEN).toBeUndefined();
    // The host's other credentials and its seed stay with the host.
    expect(Object.keys(env).filter((k) => /CONTROLLER|PROVIDER|SEED/.test(k))).toEqual([]);
  });
});
