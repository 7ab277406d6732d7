/**
 * Host options: what users may pass (all optional, from flags, env or code) and the one
 * function that validates them into the complete internal form the host runs on. A bad option
 * fails here, at start, with a message that names it.
 */
import os from 'node:os';
import { TrellisError } from '../../lattice/errors/index.ts';
import { LogLevels, type LogLevel } from '../../lattice/log/index.ts';
import { isIssuerKey } from '../../lattice/signing/index.ts';
import { badOption as bad, compileNatsConnect, intOption as intInRange, latticeOption, natsAuthFromEnv, serversOption, type NatsAuthOptions, type NatsConnect } from '../../lattice/options/index.ts';
import { compileRateLimit, type CompiledRateLimit, type RateLimitOptions } from '../../lattice/control/rate-limit.ts';

/** Options a user may give; every field has a documented default. */
export interface HostOptions {
  /** NATS server URLs. Default: $TRELLIS_NATS_URL (comma separated) or nats://127.0.0.1:4222. */
  nats?: string | string[];
  /** Lattice name. Default: $TRELLIS_LATTICE or `default`. */
  lattice?: string;
  /** User labels (key → value). Automatic labels (arch, os, hostname) may not be set. */
  labels?: Record<string, string>;
  /** Friendly name. Default: the OS hostname plus a short suffix of the host id. */
  name?: string;
  /** nkey seed (SN...) so a restarted host keeps its identity. Default: $TRELLIS_HOST_SEED or a new key. */
  seed?: string;
  /**
   * Period of the full inventory (host_heartbeat) in ms; it is also sent on every change.
   * Default 5000, allowed 100..5000.
   */
  heartbeatMs?: number;
  /** Liveness beat period in ms: the host counts as dead after 3 missed beats. Default 1000, allowed 100..5000. */
  beatMs?: number;
  /** Run the lattice controller (reconciler) in this host; one leads per lattice. Default true. */
  controller?: boolean;
  /** Port for /metrics, /health, /ready; omitted: no HTTP server. 0 picks a free port. */
  httpPort?: number;
  /** Address the HTTP server binds. Default 127.0.0.1. */
  httpHost?: string;
  /** Largest control request accepted, bytes. Default 64 KiB. */
  maxControlPayloadBytes?: number;
  /** How long a graceful stop may take. Default 10000 ms. */
  stopTimeoutMs?: number;
  /** Log level. Default `info`, or $TRELLIS_LOG_LEVEL. */
  logLevel?: LogLevel;
  /** Where transpiled and compiled actors are cached. Default: <state dir>/cache. */
  cacheDir?: string;
  /** Run the HTTP gateway in this host on host:port (local-first calls). Default: none. */
  gateway?: string;
  /**
   * Issuer public keys whose signed components this host runs (with the lattice's list in KV).
   * Default: $TRELLIS_ALLOWED_ISSUERS (comma separated) or none; none anywhere: unsigned run too.
   */
  allowedIssuers?: string[];
  /**
   * Check signatures even when no issuer is allowed anywhere (every component is then refused),
   * so deleting the lattice's list can never turn enforcement off. Default: $TRELLIS_REQUIRE_SIGNED.
   */
  requireSigned?: boolean;
  /** The lattice's curve seed file, handed to the providers this host starts. Default: $TRELLIS_SECRETS_KEY_FILE. */
  secretsKeyFile?: string;
  /** Export traces to this OTLP/HTTP collector (base URL). Default: $OTEL_EXPORTER_OTLP_ENDPOINT, else off. */
  otlpEndpoint?: string;
  /** Worker threads shared by all actors (each holds one NATS connection). Default: CPU cores, allowed 1..256. */
  workers?: number;
  /** Per-caller rate limit and fair scheduling of control commands (lattice/control/rate-limit.ts). */
  controlRate?: RateLimitOptions;
  /** NATS credential and TLS of the host (role host). Default: the `TRELLIS_NATS_…` variables. */
  auth?: NatsAuthOptions;
  /** The credential of the controller it runs (role controller); TLS is the host's. Default: the host's credential. */
  controllerAuth?: NatsAuthOptions;
  /** The credential of the providers it launches (role provider); TLS is the host's. Default: the host's credential. */
  providerAuth?: NatsAuthOptions;
}

/** The complete, validated form the host runs on. */
export interface CompiledHostOptions {
  servers: string[];
  lattice: string;
  userLabels: Record<string, string>;
  automaticLabels: Record<string, string>;
  name?: string;
  seed?: string;
  heartbeatMs: number;
  beatMs: number;
  controller: boolean;
  httpPort?: number;
  httpHost: string;
  maxControlPayloadBytes: number;
  stopTimeoutMs: number;
  logLevel: LogLevel;
  cacheDir: string;
  gateway?: string;
  allowedIssuers: string[];
  requireSigned: boolean;
  secretsKeyFile?: string;
  otlpEndpoint?: string;
  /** Undefined: one per CPU core. */
  workers?: number;
  controlRate: CompiledRateLimit;
  /** How the host, its workers, its controller and its providers connect (secrets inside: never log). */
  connect: NatsConnect;
  controllerConnect: NatsConnect;
  providerConnect: NatsConnect;
}

/** Labels the host sets itself; they describe the machine and cannot be changed. */
export const AUTOMATIC_LABEL_KEYS = ['arch', 'os', 'hostname'] as const;

const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}$/;

/** Validate a label key/value pair; shared by option compilation and the label-put command. */
export function validateLabel(key: string, value: string): void {
  if (typeof key !== 'string' || !LABEL_KEY.test(key)) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `label key "${key}" must be 1-63 characters of letters, digits, '_', '.', '-', '/'`);
  }
  if ((AUTOMATIC_LABEL_KEYS as readonly string[]).includes(key)) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `label "${key}" is set automatically by the host and cannot be changed`);
  }
  if (typeof value !== 'string' || value.length > 256) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `label "${key}" value must be a string of at most 256 characters`);
  }
}

/** The per-user state directory (XDG), used for the embedded server's data and caches. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || `${os.homedir()}/.local/state`;
  return `${base}/trellis`;
}

/** The host's own allowed issuers: the option, else $TRELLIS_ALLOWED_ISSUERS; each must be an issuer key. */
function allowedIssuersOption(input: string[] | undefined, env: NodeJS.ProcessEnv): string[] {
  const keys = input ?? (env.TRELLIS_ALLOWED_ISSUERS ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  for (const key of keys) if (!isIssuerKey(key)) bad('--allowed-issuer', `"${key}" is not an issuer public key (an account, operator or user nkey: A..., O... or U...)`);
  return [...new Set(keys)];
}

/** A boolean environment variable: 1/true/yes or 0/false/no (or unset: false); anything else is refused. */
function boolEnv(name: string, env: NodeJS.ProcessEnv): boolean {
  const v = (env[name] ?? '').trim().toLowerCase();
  if (v === '' || v === '0' || v === 'false' || v === 'no') return false;
  if (v === '1' || v === 'true' || v === 'yes') return true;
  return bad(name, 'must be true or false');
}

/** Validate options (plus environment defaults) into the complete internal form. */
export function compileHostOptions(input: HostOptions = {}, env: NodeJS.ProcessEnv = process.env): CompiledHostOptions {
  const servers = serversOption(input.nats, env);
  const lattice = latticeOption(input.lattice, env);

  const userLabels: Record<string, string> = {};
  for (const [key, value] of Object.entries(input.labels ?? {})) {
    try {
      validateLabel(key, value);
    } catch (err) {
      bad('--label', (err as Error).message);
    }
    userLabels[key] = value;
  }

  const seed = input.seed ?? env.TRELLIS_HOST_SEED;
  if (seed !== undefined && !/^SN[A-Z2-7]{56}$/.test(seed)) bad('--seed', 'must be an nkey server seed (starts with SN, 58 characters)');

  const name = input.name;
  if (name !== undefined && (name.length === 0 || name.length > 64)) bad('--name', 'must be 1 to 64 characters');

  const heartbeatMs = intInRange('--heartbeat-ms', input.heartbeatMs ?? 5000, 100, 5000);
  const beatMs = intInRange('--beat-ms', input.beatMs ?? 1000, 100, 5000);
  const httpPort = input.httpPort === undefined ? undefined : intInRange('--http-port', input.httpPort, 0, 65535);
  const maxControlPayloadBytes = intInRange('maxControlPayloadBytes', input.maxControlPayloadBytes ?? 64 * 1024, 1024, 8 * 1024 * 1024);
  const workers = input.workers === undefined ? undefined : intInRange('--workers', input.workers, 1, 256);
  const stopTimeoutMs = intInRange('stopTimeoutMs', input.stopTimeoutMs ?? 10_000, 0, 600_000);

  const logLevel = input.logLevel ?? (env.TRELLIS_LOG_LEVEL as LogLevel | undefined) ?? 'info';
  if (!(LogLevels as readonly string[]).includes(logLevel)) bad('--log-level', `must be one of ${LogLevels.join(', ')}`);

  const auth = natsAuthFromEnv(input.auth ?? {}, env);
  const tls = { tlsCa: auth.tlsCa, tlsCert: auth.tlsCert, tlsKey: auth.tlsKey };
  // A role credential replaces the host's credential only; TLS stays the host's.
  const roleAuth = (own: NatsAuthOptions | undefined): NatsAuthOptions => (own && Object.values(own).some((v) => v !== undefined) ? { ...tls, ...own } : { ...auth, natsInboxUser: undefined });
  const connect = compileNatsConnect({ servers, lattice, role: 'host', auth });
  // A bad role credential names its own flag (--controller-user), not the host's (--nats-user).
  const roleConnect = (role: 'controller' | 'provider', own: NatsAuthOptions | undefined) => {
    try {
      return compileNatsConnect({ servers, lattice, role, auth: roleAuth(own) });
    } catch (err) {
      if (!(err instanceof TrellisError) || !own || !Object.values(own).some((v) => v !== undefined)) throw err;
      throw new TrellisError(err.code, err.message.replaceAll('--nats-', `--${role}-`), { cause: err });
    }
  };
  const controllerConnect = roleConnect('controller', input.controllerAuth);
  const providerConnect = roleConnect('provider', input.providerAuth);

  return {
    connect,
    controllerConnect,
    providerConnect,
    servers,
    lattice,
    userLabels,
    automaticLabels: { arch: os.arch(), os: os.platform(), hostname: os.hostname() },
    name,
    seed,
    heartbeatMs,
    beatMs,
    controller: input.controller ?? true,
    httpPort,
    httpHost: input.httpHost ?? '127.0.0.1',
    maxControlPayloadBytes,
    stopTimeoutMs,
    logLevel,
    cacheDir: input.cacheDir ?? `${stateDir(env)}/cache`,
    gateway: input.gateway,
    allowedIssuers: allowedIssuersOption(input.allowedIssuers, env),
    requireSigned: input.requireSigned ?? boolEnv('TRELLIS_REQUIRE_SIGNED', env),
    secretsKeyFile: input.secretsKeyFile ?? (env.TRELLIS_SECRETS_KEY_FILE || undefined),
    otlpEndpoint: input.otlpEndpoint,
    workers,
    controlRate: compileRateLimit(input.controlRate),
  };
}
