/**
 * The pieces every participant's option compiler is made of (host, RPC client, gateway, control
 * client, providers): each user option is checked once, at start, into a complete internal form
 * with units in its names, and a bad value fails with a message naming the flag.
 */
import { TrellisError } from '../errors/index.ts';
import { token } from '../subjects/index.ts';

/** Log levels accepted by options and flags (here, not in lattice/log, so flags need no pino). */
export const LogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LogLevels)[number];

/** Fail option compilation naming the flag (or option field) at fault. */
export function badOption(option: string, message: string): never {
  throw new TrellisError('TRELLIS_BAD_OPTION', `option ${option}: ${message}`);
}

/** An integer option from `min` to `max` (zero and negatives are refused unless `min` allows them). */
export function intOption(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    badOption(option, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration as people write it: `500ms`, `30s`, `10m`, `2h`, `90d`, or bare milliseconds.
 * The one parser for every duration flag and manifest field. Returns milliseconds.
 */
export function parseDuration(text: string, option: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) badOption(option, `"${text}" is not a duration (e.g. 500ms, 30s, 10m, 90d, or milliseconds)`);
  const ms = Number(match[1]) * DURATION_UNITS_MS[match[2] ?? 'ms']!;
  if (!Number.isFinite(ms) || !Number.isInteger(Math.round(ms))) badOption(option, `"${text}" is out of range`);
  return Math.round(ms);
}

/** A duration option in a range of milliseconds (given as a number of ms or as duration text). */
export function durationOption(option: string, value: number | string, minMs: number, maxMs: number): number {
  const ms = typeof value === 'string' ? parseDuration(value, option) : value;
  return intOption(option, ms, minMs, maxMs);
}

/** Resolve NATS server URLs the same way everywhere (flag, then env, then the local default). */
export function resolveServers(nats?: string | string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = nats ?? env.TRELLIS_NATS_URL ?? 'nats://127.0.0.1:4222';
  return (Array.isArray(raw) ? raw : raw.split(',')).map((s) => s.trim()).filter(Boolean);
}

/** NATS servers from a flag or the environment, each checked to be a NATS URL. */
export function serversOption(nats: string | string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const servers = resolveServers(nats, env);
  if (servers.length === 0) badOption('--nats', 'needs at least one URL');
  for (const server of servers) {
    // Never echo the URL when it carries a credential: that is the secret this check keeps out of logs.
    if (/^[a-z]+:\/\/[^/\s]*@/.test(server)) badOption('--nats', 'a NATS URL must not carry a user, password or token (user@host): use --nats-user/--nats-password, --nats-token or --nats-creds, which are never logged');
    if (!/^(nats|tls|ws|wss):\/\/[^\s/]+$|^[^\s/:]+:\d+$/.test(server)) badOption('--nats', `"${server}" is not a NATS URL (nats://host:port)`);
  }
  return servers;
}

/** The lattice name from a flag or the environment (default `default`), checked as a subject token. */
export function latticeOption(lattice: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const name = lattice ?? env.TRELLIS_LATTICE ?? 'default';
  try {
    return token(name, 'lattice name');
  } catch (err) {
    return badOption('--lattice', (err as Error).message);
  }
}

export {
  childConnectEnv,
  compileNatsConnect,
  describeConnect,
  inboxUserOf,
  natsAuthFromEnv,
  NatsAuthEnv,
  Roles,
  type NatsAuth,
  type NatsAuthOptions,
  type NatsConnect,
  type NatsTls,
  type Role,
} from './connect.ts';
