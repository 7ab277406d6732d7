import { createUser } from 'nkeys.js';
import { describe, expect, it } from 'vitest';
import type { NatsConnect } from '../options/index.ts';
import { classifyConnectError, natsConnectionOptions } from './connect.ts';

const base: NatsConnect = { servers: ['tls://n1:4222'], auth: { kind: 'none' }, inboxPrefix: '_INBOX.prod.host', inboxUser: 'host' };

describe('control - connecting to NATS', () => {
  it('connect - refused credentials and untrusted TLS peers are TRELLIS_NATS_AUTH; a network failure is TRELLIS_NATS_UNAVAILABLE', () => {
    for (const code of ['AUTHORIZATION_VIOLATION', 'AUTHENTICATION_EXPIRED', 'ACCOUNT_EXPIRED', 'BAD_CREDS']) {
      expect(classifyConnectError({ code, message: 'x' }, ['nats://a:1']).code, code).toBe('TRELLIS_NATS_AUTH');
    }
    expect(classifyConnectError({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', message: 'unable to verify the first certificate' }, ['tls://a:1']).code).toBe('TRELLIS_NATS_AUTH');
    expect(classifyConnectError({ code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', message: 'alert' }, ['tls://a:1']).code).toBe('TRELLIS_NATS_AUTH');
    // Under TLS 1.3 a refused client certificate shows only as a connect that never completes.
    expect(classifyConnectError({ code: 'TIMEOUT', message: 'TIMEOUT' }, ['tls://a:1'], true).message).toMatch(/client certificate/);
    expect(classifyConnectError({ code: 'TIMEOUT', message: 'TIMEOUT' }, ['nats://a:1']).code).toBe('TRELLIS_NATS_UNAVAILABLE');
    expect(classifyConnectError({ code: 'CONNECTION_REFUSED', message: 'refused' }, ['nats://a:1']).code).toBe('TRELLIS_NATS_UNAVAILABLE');
  });

  it('connect - nats.js options carry the one credential, the PEM text and the inbox prefix', () => {
    expect(natsConnectionOptions(base, 'n')).toMatchObject({ servers: ['tls://n1:4222'], name: 'n', inboxPrefix: '_INBOX.prod.host' });
    expect(natsConnectionOptions({ ...base, auth: { kind: 'user', user: 'u', password: 'p' } }, 'n')).toMatchObject({ user: 'u', pass: 'p' });
    expect(natsConnectionOptions({ ...base, auth: { kind: 'token', token: 't' } }, 'n')).toMatchObject({ token: 't' });
    const seed = new TextDecoder().decode(createUser().getSeed());
    expect(typeof natsConnectionOptions({ ...base, auth: { kind: 'nkey', file: 'f', seed, publicKey: 'U' } }, 'n').authenticator).toBe('function');
    const tls = natsConnectionOptions({ ...base, tls: { ca: 'CA', caFile: '/ca', cert: 'C', certFile: '/c', key: 'K', keyFile: '/k' } }, 'n').tls;
    expect(tls).toEqual({ ca: 'CA', cert: 'C', key: 'K' });
    expect(natsConnectionOptions({ ...base, tls: {} }, 'n').tls).toEqual({});
  });
});
