/** The shape of one CLI command and the flags shared by lattice commands. */
import type { ParseArgsConfig } from 'node:util';
import { TrellisError } from '../errors/index.ts';

export type Values = Record<string, string | boolean | string[] | undefined>;

/** One CLI command. */
export interface Command {
  /** The words that select it, e.g. ['get', 'hosts']. */
  words: string[];
  /** Usage line after `trellis `. */
  usage: string;
  summary: string;
  details?: string;
  options?: NonNullable<ParseArgsConfig['options']>;
  optionHelp?: Record<string, string>;
  run(positionals: string[], values: Values): Promise<number | void>;
}

/** Flags for commands that talk to a lattice. */
export const connectionOptions = {
  nats: { type: 'string' },
  lattice: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
} satisfies NonNullable<ParseArgsConfig['options']>;

export const connectionHelp: Record<string, string> = {
  nats: 'NATS URLs, comma separated (env TRELLIS_NATS_URL; default nats://127.0.0.1:4222)',
  lattice: 'lattice name (env TRELLIS_LATTICE; default "default")',
  json: 'print JSON for scripts instead of a table',
  timeout: 'request timeout in ms (default 2000)',
};

/** Parse `k=v` words into a record; throws TRELLIS_BAD_OPTION naming the flag. */
export function parsePairs(pairs: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new TrellisError('TRELLIS_BAD_OPTION', `${flag} expects key=value, got "${pair}"`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Parse an optional integer flag. */
export function intFlag(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new TrellisError('TRELLIS_BAD_OPTION', `--${flag} must be a non-negative integer, got "${String(value)}"`);
  return n;
}

/** Require exactly `count` positionals. */
export function positionals(args: string[], names: string[]): string[] {
  if (args.length !== names.length) {
    throw new TrellisError('TRELLIS_BAD_OPTION', `expected ${names.map((n) => `<${n}>`).join(' ') || 'no arguments'}, got ${args.length ? args.join(' ') : 'none'}`);
  }
  return args;
}

/** Resolve on SIGINT/SIGTERM. After the first signal both handlers go, so a second one kills at once. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/**
 * Run a long-running participant until a signal (or its NATS connection closes), then close
 * it and drain the connection so in-flight work is handed over. Capped at 3 s: a drain cannot
 * finish when the server is gone. Returns what ended it.
 */
export async function runUntilStopped(nc: { closed(): Promise<unknown>; isClosed(): boolean; drain(): Promise<void> }, close: () => Promise<void>, onStopping?: (why: NodeJS.Signals | 'closed') => void): Promise<void> {
  const why = await Promise.race([untilSignal(), nc.closed().then(() => 'closed' as const)]);
  onStopping?.(why);
  await Promise.race([
    (async () => {
      await close();
      if (!nc.isClosed()) await nc.drain();
    })(),
    new Promise((r) => setTimeout(r, 3000).unref()),
  ]);
}
