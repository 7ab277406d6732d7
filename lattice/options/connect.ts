/**
 * How a participant connects to NATS: servers, one credential (creds, nkey, user/password or
 * token), TLS files, and its reply-inbox prefix. Compiled once at start into `NatsConnect`, a
 * plain, structured-cloneable value (strings only) that a host hands to its worker threads and
 * turns back into environment variables for the provider processes it launches. Files are read
 * here, at start, so a missing file fails with the flag's name instead of at the first reconnect.
 *
 * Secrets (passwords, tokens, seeds, creds) live only in this value: never log it; `describeConnect`
 * is the form that may be shown.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { TrellisError } from '../errors/index.ts';
import { subjects, token as subjectToken } from '../subjects/index.ts';
import { badOption } from './index.ts';

/** The credential flags and the environment variable behind each (same names everywhere). */
export const NatsAuthEnv = {
  natsCreds: 'TRELLIS_NATS_CREDS',
  natsNkey: 'TRELLIS_NATS_NKEY',
  natsUser: 'TRELLIS_NATS_USER',
  natsPassword: 'TRELLIS_NATS_PASSWORD',
  natsToken: 'TRELLIS_NATS_TOKEN',
  tlsCa: 'TRELLIS_NATS_TLS_CA',
  tlsCert: 'TRELLIS_NATS_TLS_CERT',
  tlsKey: 'TRELLIS_NATS_TLS_KEY',
  natsInboxUser: 'TRELLIS_NATS_INBOX_USER',
} as const;

/** Credential and TLS options as a user gives them (flags, env, code); file options are paths. */
export interface NatsAuthOptions {
  /** Decentralized-JWT creds file (`nsc`/`nats` generated, JWT and seed). */
  natsCreds?: string;
  /** File holding an nkey user seed (SU...). */
  natsNkey?: string;
  natsUser?: string;
  natsPassword?: string;
  natsToken?: string;
  /** PEM file of the CA that signed the servers' certificates. */
  tlsCa?: string;
  /** PEM client certificate and key, for servers that verify clients (mutual TLS). */
  tlsCert?: string;
  tlsKey?: string;
  /** The user name in the reply-inbox prefix (default: the credential's user, see inboxUserOf). */
  natsInboxUser?: string;
}

/** The one credential a connection presents. */
export type NatsAuth =
  | { kind: 'none' }
  | { kind: 'creds'; file: string; creds: string; /** The user's public key (JWT `sub`). */ publicKey: string }
  | { kind: 'nkey'; file: string; seed: string; publicKey: string }
  | { kind: 'user'; user: string; password: string }
  | { kind: 'token'; token: string };

/** TLS material, PEM text plus the files it came from (for child processes). */
export interface NatsTls {
  ca?: string;
  caFile?: string;
  cert?: string;
  certFile?: string;
  key?: string;
  keyFile?: string;
}

/** The compiled, complete connection settings of one participant. Contains secrets: never log it. */
export interface NatsConnect {
  servers: string[];
  auth: NatsAuth;
  /** Present when TLS is required (`tls://` URLs or any TLS file). */
  tls?: NatsTls;
  /** nats.js `inboxPrefix`: `_INBOX.<lattice>.<user>`; the user's permissions allow subscribing only below it. */
  inboxPrefix: string;
  /** The user in the inbox prefix. */
  inboxUser: string;
  /** An explicit --nats-inbox-user, kept for child processes. */
  inboxUserGiven?: string;
}

/** Roles of lattice participants (see lattice/security for their permissions). */
export const Roles = ['host', 'gateway', 'provider', 'controller', 'operator'] as const;
export type Role = (typeof Roles)[number];

/** Which flag a field came from, for messages. */
const FLAG: Record<keyof NatsAuthOptions, string> = {
  natsCreds: '--nats-creds',
  natsNkey: '--nats-nkey',
  natsUser: '--nats-user',
  natsPassword: '--nats-password',
  natsToken: '--nats-token',
  tlsCa: '--tls-ca',
  tlsCert: '--tls-cert',
  tlsKey: '--tls-key',
  natsInboxUser: '--nats-inbox-user',
};

/** Read a file named by a flag; the message names the flag and the path, never the content. */
function readFlagFile(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new TrellisError('TRELLIS_FILE_UNREADABLE', `option ${flag}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}

/** The user JWT of a creds file, per the nats creds format (a `-----BEGIN NATS USER JWT-----` block). */
function credsParts(text: string): { jwt: string; seed: string } | undefined {
  const block = (name: string) => new RegExp(`-{3,}[^\\n]*BEGIN ${name}[^\\n]*-{3,}\\s*\\n\\s*([^\\s-][^\\n]*)\\n`).exec(text)?.[1]?.trim();
  const jwt = block('NATS USER JWT');
  const seed = block('USER NKEY SEED');
  return jwt && seed ? { jwt, seed } : undefined;
}

/** The `sub` claim (user public key) of a JWT, without verifying it (the server does). */
function jwtSubject(jwt: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof payload.sub === 'string' ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

/** Public key of an nkey user seed (SU...), or undefined when the text is not one. */
function userSeedPublicKey(seed: string): string | undefined {
  if (!/^SU[A-Z2-7]{56}$/.test(seed)) return undefined;
  try {
    // Loaded only here, when an nkey is given: every CLI command imports this module for its
    // flags, and `trellis --help` must load no dependency (test/dist.test.ts).
    const { fromSeed } = createRequire(import.meta.url)('nkeys.js') as typeof import('nkeys.js');
    return fromSeed(new TextEncoder().encode(seed)).getPublicKey();
  } catch {
    return undefined;
  }
}

/** Options read from flags or else the environment (the `TRELLIS_NATS_…` variables). */
export function natsAuthFromEnv(input: NatsAuthOptions, env: NodeJS.ProcessEnv = process.env): NatsAuthOptions {
  const out: NatsAuthOptions = {};
  for (const [key, name] of Object.entries(NatsAuthEnv) as [keyof NatsAuthOptions, string][]) {
    const value = input[key] ?? (env[name] === '' ? undefined : env[name]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/**
 * Compile the connection settings of a participant: servers, at most one credential, TLS, and
 * the reply-inbox prefix of its user in `lattice`. Fails with TRELLIS_BAD_OPTION naming the flag.
 */
export function compileNatsConnect(input: { servers: string[]; lattice: string; role: Role; auth: NatsAuthOptions }): NatsConnect {
  const a = input.auth;
  const given = (['natsCreds', 'natsNkey', 'natsUser', 'natsToken'] as const).filter((k) => a[k] !== undefined);
  if (given.length > 1) badOption(FLAG[given[1]!], `only one NATS credential may be given, and ${FLAG[given[0]!]} is given too`);
  if (a.natsPassword !== undefined && a.natsUser === undefined) badOption('--nats-password', 'needs --nats-user');
  if (a.natsUser !== undefined && a.natsPassword === undefined) badOption('--nats-user', 'needs --nats-password (or TRELLIS_NATS_PASSWORD)');
  for (const k of ['natsCreds', 'natsNkey', 'natsUser', 'natsPassword', 'natsToken', 'tlsCa', 'tlsCert', 'tlsKey', 'natsInboxUser'] as const) {
    if (a[k] !== undefined && a[k] === '') badOption(FLAG[k], 'may not be empty');
  }

  let auth: NatsAuth = { kind: 'none' };
  if (a.natsCreds !== undefined) {
    const creds = readFlagFile('--nats-creds', a.natsCreds);
    const parts = credsParts(creds);
    const publicKey = parts && jwtSubject(parts.jwt);
    if (!parts || !publicKey) badOption('--nats-creds', `${a.natsCreds} is not a NATS creds file (a user JWT and its nkey seed)`);
    auth = { kind: 'creds', file: a.natsCreds, creds, publicKey };
  } else if (a.natsNkey !== undefined) {
    const seed = readFlagFile('--nats-nkey', a.natsNkey).trim();
    const publicKey = userSeedPublicKey(seed);
    if (!publicKey) badOption('--nats-nkey', `${a.natsNkey} does not hold an nkey user seed (SU..., 58 characters)`);
    auth = { kind: 'nkey', file: a.natsNkey, seed, publicKey };
  } else if (a.natsUser !== undefined) {
    auth = { kind: 'user', user: a.natsUser, password: a.natsPassword! };
  } else if (a.natsToken !== undefined) {
    auth = { kind: 'token', token: a.natsToken };
  }

  if ((a.tlsCert === undefined) !== (a.tlsKey === undefined)) badOption(a.tlsCert === undefined ? '--tls-key' : '--tls-cert', 'mutual TLS needs both --tls-cert and --tls-key');
  let tls: NatsTls | undefined;
  if (a.tlsCa !== undefined || a.tlsCert !== undefined || input.servers.some((s) => s.startsWith('tls://'))) {
    tls = {};
    if (a.tlsCa !== undefined) Object.assign(tls, { ca: readFlagFile('--tls-ca', a.tlsCa), caFile: a.tlsCa });
    if (a.tlsCert !== undefined) Object.assign(tls, { cert: readFlagFile('--tls-cert', a.tlsCert), certFile: a.tlsCert, key: readFlagFile('--tls-key', a.tlsKey!), keyFile: a.tlsKey });
  }

  const inboxUser = inboxUserOf(auth, input.role, a.natsInboxUser);
  let inboxPrefix: string;
  try {
    subjectToken(inboxUser, 'inbox user');
    inboxPrefix = subjects(input.lattice).inboxPrefix(inboxUser);
  } catch (err) {
    return badOption(a.natsInboxUser !== undefined ? '--nats-inbox-user' : '--nats-user', `${(err as Error).message}; give --nats-inbox-user <name>`);
  }
  return { servers: input.servers, auth, ...(tls ? { tls } : {}), inboxPrefix, inboxUser, ...(a.natsInboxUser !== undefined ? { inboxUserGiven: a.natsInboxUser } : {}) };
}

/**
 * The user named in a participant's reply-inbox prefix, the one `trellis nats permissions --user`
 * must be given: --nats-inbox-user if set, else the identity the server knows — the user name,
 * the public key of the nkey or of the creds' user — else (token or no credential) the role.
 */
export function inboxUserOf(auth: NatsAuth, role: Role, explicit?: string): string {
  if (explicit !== undefined) return explicit;
  switch (auth.kind) {
    case 'user':
      return auth.user;
    case 'creds':
    case 'nkey':
      return auth.publicKey;
    default:
      return role;
  }
}

/** What may be shown of the settings: servers, the credential's kind and public identity, TLS files. */
export function describeConnect(c: NatsConnect): Record<string, unknown> {
  const auth = c.auth.kind === 'user' ? { kind: 'user', user: c.auth.user } : c.auth.kind === 'creds' || c.auth.kind === 'nkey' ? { kind: c.auth.kind, file: c.auth.file, publicKey: c.auth.publicKey } : { kind: c.auth.kind };
  return { servers: c.servers, auth, tls: c.tls ? { caFile: c.tls.caFile, certFile: c.tls.certFile } : undefined, inboxPrefix: c.inboxPrefix };
}

/**
 * Variables of the parent a child must never see: the host's other role credentials (a provider
 * holding the controller's would be a controller) and the host's identity seed.
 */
const PARENT_ONLY_ENV = /^TRELLIS_(CONTROLLER|PROVIDER)_|^TRELLIS_HOST_SEED$/;

/**
 * The environment a child process (a provider a host launches) needs to connect the same way:
 * every `TRELLIS_NATS_…` credential variable of `base` is dropped first, so a credential of the
 * parent's never leaks into a child meant to use another, and so are the parent's other role
 * credentials and its seed. Values, not argv: argv is public in `ps`.
 */
export function childConnectEnv(c: NatsConnect, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const name of Object.values(NatsAuthEnv)) delete env[name];
  for (const name of Object.keys(env)) if (PARENT_ONLY_ENV.test(name)) delete env[name];
  env.TRELLIS_NATS_URL = c.servers.join(',');
  if (c.auth.kind === 'creds') env.TRELLIS_NATS_CREDS = c.auth.file;
  if (c.auth.kind === 'nkey') env.TRELLIS_NATS_NKEY = c.auth.file;
  if (c.auth.kind === 'user') (env.TRELLIS_NATS_USER = c.auth.user), (env.TRELLIS_NATS_PASSWORD = c.auth.password);
  if (c.auth.kind === 'token') env.TRELLIS_NATS_TOKEN = c.auth.token;
  if (c.tls?.caFile) env.TRELLIS_NATS_TLS_CA = c.tls.caFile;
  if (c.tls?.certFile) (env.TRELLIS_NATS_TLS_CERT = c.tls.certFile), (env.TRELLIS_NATS_TLS_KEY = c.tls.keyFile);
  if (c.inboxUserGiven) env.TRELLIS_NATS_INBOX_USER = c.inboxUserGiven;
  return env;
}
