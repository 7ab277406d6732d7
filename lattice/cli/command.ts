/**
 * The one shape of a CLI command: it declares its arguments and typed flags (with defaults,
 * environment variables and help) and returns a result; the dispatcher (index.ts) parses, connects
 * lattice commands, and renders the result in one place: a table for people, or with `--json`
 * exactly one JSON value (streaming commands: one JSON object per line).
 */
import type { ControlClient } from '../control/index.ts';
import { TrellisError } from '../errors/index.ts';
import { badOption, intOption, parseDuration } from '../options/index.ts';
import { natsAuthFlags } from './nats-flags.ts';

/** A flag's declaration. `env` names the environment variable that gives its default. */
export type FlagSpec =
  | { type: 'string'; help: string; default?: string; env?: string; short?: string; aliases?: readonly string[]; placeholder?: string }
  | { type: 'boolean'; help: string; short?: string }
  /** One of a fixed set of words. */
  | { type: 'choice'; help: string; choices: readonly string[]; default?: string; env?: string }
  | { type: 'int'; help: string; default?: number; min?: number; max?: number; env?: string }
  | { type: 'duration'; help: string; default?: number; minMs?: number; maxMs?: number; env?: string }
  /** Repeatable `key=value`, gathered into a record. */
  | { type: 'pairs'; help: string; short?: string }
  /** Repeatable string. */
  | { type: 'list'; help: string; short?: string };

export type Flags = Record<string, FlagSpec>;

/** The parsed value of one flag, typed from its declaration. */
export type FlagValue<F extends FlagSpec> = F extends { type: 'boolean' }
  ? boolean
  : F extends { type: 'choice'; choices: readonly (infer C)[] }
    ? F extends { default: string }
      ? C
      : C | undefined
  : F extends { type: 'pairs' }
    ? Record<string, string>
    : F extends { type: 'list' }
      ? string[]
      : F extends { type: 'int' | 'duration'; default: number }
        ? number
        : F extends { type: 'int' | 'duration' }
          ? number | undefined
          : F extends { default: string }
            ? string
            : string | undefined;

/** Flag names in kebab-case become camelCase keys (`--deadline-ms` → `deadlineMs`). */
type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
export type FlagValues<F extends Flags> = { [K in keyof F & string as Camel<K>]: FlagValue<F[K]> };

/** What a command returns: data for `--json`, and text for people (defaults to the JSON). */
export interface Output {
  data: unknown;
  text?: string;
  /** Non-zero when the command partly failed (e.g. some hosts refused). */
  exitCode?: number;
}

/** A streaming result: each item is one NDJSON line with `--json`, or its text otherwise. */
export interface Stream {
  stream: AsyncIterable<{ data: unknown; text: string }>;
}

/** What a command's run receives. */
export interface Context<F extends Flags> {
  /** Positional arguments, as declared by `args`. */
  args: string[];
  flags: FlagValues<F> & { json: boolean };
  /** The connected control client (lattice commands only). */
  client: ControlClient;
  /** A progress line for people on stderr (silent with --json). */
  progress(line: string): void;
}

/** One CLI command. */
export interface Command<F extends Flags = Flags> {
  /** The words that select it, e.g. ['get', 'hosts']. */
  words: string[];
  /** Positional arguments: `name` required, `name?` optional, `name...` one or more, `name...?` any. */
  args?: string[];
  summary: string;
  details?: string;
  flags?: F;
  /** Connects to the lattice first (adds --nats, --lattice, --timeout) and passes the client. */
  lattice?: boolean;
  /** Another name for the same command, e.g. `route set` for `weights set`. */
  aliases?: string[][];
  /** A long-running participant: it logs pino JSON on stdout itself and returns an exit code. */
  participant?: boolean;
  run(ctx: Context<F>): Promise<Output | Stream | number | void>;
}

/** Declare a command with its flag types inferred (no casts on flag values anywhere). */
export function command<const F extends Flags>(spec: Command<F>): Command<Flags> {
  return spec as unknown as Command<Flags>;
}

/** The flags of every lattice command. */
export const connectionFlags = {
  nats: { type: 'string', help: 'NATS URLs, comma separated', env: 'TRELLIS_NATS_URL', placeholder: 'url' },
  lattice: { type: 'string', help: 'lattice name (default "default")', env: 'TRELLIS_LATTICE', placeholder: 'name' },
  timeout: { type: 'duration', help: 'time-out of each request (default: per operation)', minMs: 1 },
  ...natsAuthFlags,
} as const satisfies Flags;

/** The flags every command accepts. */
export const commonFlags = {
  json: { type: 'boolean', help: 'print one JSON value for scripts instead of a table' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} as const satisfies Flags;

const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Turn raw parseArgs values into typed flag values; throws TRELLIS_BAD_OPTION naming the flag. */
export function typedFlags(specs: Flags, raw: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const flag = `--${name}`;
    let value = raw[name];
    for (const alias of spec.type === 'string' ? (spec.aliases ?? []) : []) value ??= raw[alias];
    if (value === undefined && 'env' in spec && spec.env && env[spec.env] !== undefined && env[spec.env] !== '') value = env[spec.env];
    const key = camel(name);
    switch (spec.type) {
      case 'boolean':
        out[key] = value === true;
        break;
      case 'string':
        out[key] = (value as string | undefined) ?? spec.default;
        break;
      case 'choice': {
        const chosen = (value as string | undefined) ?? spec.default;
        if (chosen !== undefined && !spec.choices.includes(chosen)) badOption(flag, `must be one of ${spec.choices.join(', ')}, got "${chosen}"`);
        out[key] = chosen;
        break;
      }
      case 'list':
        out[key] = (value as string[] | undefined) ?? [];
        break;
      case 'pairs':
        out[key] = parsePairs((value as string[] | undefined) ?? [], flag);
        break;
      case 'int': {
        if (value === undefined) out[key] = spec.default;
        else {
          const n = /^-?\d+$/.test(String(value)) ? Number(value) : NaN;
          out[key] = intOption(flag, n, spec.min ?? 0, spec.max ?? Number.MAX_SAFE_INTEGER);
        }
        break;
      }
      case 'duration': {
        if (value === undefined) out[key] = spec.default;
        else out[key] = intOption(flag, parseDuration(String(value), flag), spec.minMs ?? 0, spec.maxMs ?? 10 * 365 * 86_400_000);
        break;
      }
    }
  }
  return out;
}

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

/** Check positionals against a command's declared `args`; throws TRELLIS_BAD_OPTION. */
export function checkArgs(declared: string[], given: string[]): void {
  const required = declared.filter((a) => !a.endsWith('?')).length;
  const rest = declared.at(-1)?.includes('...');
  if (given.length < required || (!rest && given.length > declared.length)) {
    throw new TrellisError('TRELLIS_BAD_OPTION', `expected ${argsUsage(declared) || 'no arguments'}, got ${given.length ? given.join(' ') : 'none'}`);
  }
}

/** The usage form of declared arguments: `<actor> [version] <k=v>...`. */
export function argsUsage(declared: string[]): string {
  return declared
    .map((a) => {
      const optional = a.endsWith('?');
      const name = a.replace(/\?$/, '');
      const many = name.endsWith('...');
      const bare = name.replace(/\.\.\.$/, '');
      return `${optional ? `[${bare}]` : `<${bare}>`}${many ? '...' : ''}`;
    })
    .join(' ');
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
