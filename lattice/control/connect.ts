/**
 * The one place a Trellis connection to NATS is opened: compiled connection settings
 * (lattice/options NatsConnect) become nats.js options — an authenticator for the one
 * credential, TLS, the user's reply-inbox prefix — and a failed connect becomes a TrellisError
 * whose code says whether the credential (TRELLIS_NATS_AUTH) or the network (TRELLIS_NATS_UNAVAILABLE)
 * is at fault. No message here carries a secret: they name servers, files and codes only.
 */
import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from 'nats';
import { TrellisError } from '../errors/index.ts';
import type { NatsConnect } from '../options/index.ts';

/** nats.js connection options for compiled settings (plus the caller's reconnect policy). */
export function natsConnectionOptions(c: NatsConnect, name: string, extra: Partial<ConnectionOptions> = {}): ConnectionOptions {
  const options: ConnectionOptions = { ...extra, servers: c.servers, name, inboxPrefix: c.inboxPrefix };
  const encoder = new TextEncoder();
  switch (c.auth.kind) {
    case 'creds':
      options.authenticator = credsAuthenticator(encoder.encode(c.auth.creds));
      break;
    case 'nkey':
      options.authenticator = nkeyAuthenticator(encoder.encode(c.auth.seed));
      break;
    case 'user':
      options.user = c.auth.user;
      options.pass = c.auth.password;
      break;
    case 'token':
      options.token = c.auth.token;
      break;
  }
  if (c.tls) {
    // Only the PEM text crosses into nats.js (the files were read once, at start).
    options.tls = { ...(c.tls.ca ? { ca: c.tls.ca } : {}), ...(c.tls.cert ? { cert: c.tls.cert, key: c.tls.key } : {}) };
  }
  return options;
}

/** nats.js error codes that mean the server refused who we are. */
const AUTH_CODES = new Set(['AUTHORIZATION_VIOLATION', 'AUTHENTICATION_EXPIRED', 'AUTHENTICATION_TIMEOUT', 'ACCOUNT_EXPIRED', 'BAD_AUTHENTICATION', 'BAD_CREDS']);

/**
 * Node's codes for a TLS peer that could not be trusted (or would not trust us): a certificate
 * problem is a credential problem, never worth retrying as if the network were down.
 */
function isTlsTrustFailure(err: { code?: unknown; message?: unknown }): boolean {
  const code = String(err.code ?? '');
  const message = String(err.message ?? '');
  return /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL|HOSTNAME/.test(code) || /certificate|alert|handshake|tls/i.test(message);
}

/** How long a connect may take: a few seconds, never nats.js's 20 s (see the TLS note below). */
export const CONNECT_TIMEOUT_MS = 5000;

/**
 * Classify a failed connect (or a connection closed with an error) by nats.js / Node code.
 * `tls`: the connection used TLS. Under TLS 1.3 the client's handshake completes before the
 * server checks the client's certificate; a server that refuses it (or its absence) then only
 * closes the socket, and nats.js waits out its connect time-out. A TLS connect that timed out is
 * therefore reported as a TLS credential failure, naming both possible causes.
 */
export function classifyConnectError(err: unknown, servers: string[], tls = false): TrellisError {
  if (err instanceof TrellisError) return err;
  const e = (err ?? {}) as { code?: unknown; message?: unknown };
  const where = servers.join(',');
  const code = String(e.code ?? '');
  if (tls && code === 'TIMEOUT') {
    return new TrellisError('TRELLIS_NATS_AUTH', `TLS with NATS at ${where} was set up but the server never answered within ${CONNECT_TIMEOUT_MS} ms: it most likely refused the client certificate (missing, or not signed by its CA); check --tls-cert/--tls-key`, { cause: err });
  }
  if (AUTH_CODES.has(code)) return new TrellisError('TRELLIS_NATS_AUTH', `NATS at ${where} refused the credentials (${code})`, { cause: err });
  if (isTlsTrustFailure(e)) return new TrellisError('TRELLIS_NATS_AUTH', `TLS with NATS at ${where} failed (${code || 'handshake'}: ${String(e.message ?? '')})`, { cause: err });
  return new TrellisError('TRELLIS_NATS_UNAVAILABLE', `cannot connect to NATS at ${where}: ${String(e.message ?? e)}`, { cause: err });
}

/** Open a connection with compiled settings (or bare servers: no credential). */
export async function connectNats(target: string[] | NatsConnect, name: string, extra: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  const c: NatsConnect = Array.isArray(target) ? { servers: target, auth: { kind: 'none' }, inboxPrefix: '_INBOX', inboxUser: '' } : target;
  try {
    return await connect(natsConnectionOptions(c, name, { timeout: CONNECT_TIMEOUT_MS, ...extra }));
  } catch (err) {
    throw classifyConnectError(err, c.servers, c.tls !== undefined);
  }
}
