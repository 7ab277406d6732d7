/**
 * The `trellis` CLI dispatcher: finds the command, parses and types its flags, connects lattice
 * commands, and renders every result in one place — a table for people, or with `--json`
 * exactly one JSON value on stdout (NDJSON for streams). Failures become a message with the
 * code and what to do about it (with `--json`: `{ ok: false, error }`).
 *
 * lattice/ holds the lattice commands; the commands that run participants (host, up, gateway,
 * provider, run, build) live in host/cli, which passes the whole list to `main`.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TrellisError, toTrellisError } from '../errors/index.ts';
import { authFromFlags } from './nats-flags.ts';
import { argsUsage, checkArgs, commonFlags, connectionFlags, typedFlags, type Command, type Flags, type Output, type Stream } from './command.ts';

export { commands as latticeCommands } from './commands.ts';
export * from './command.ts';
export { table, duration, labelList } from './format.ts';
export { authFromFlags, controllerAuthFlags, natsAuthFlags, providerAuthFlags, roleAuthFromFlags, type NatsAuthFlagValues } from './nats-flags.ts';

function usageOf(command: Command, words = command.words): string {
  const args = argsUsage(command.args ?? []);
  return [...words, args, Object.keys(command.flags ?? {}).length > 0 || command.lattice ? '[options]' : ''].filter(Boolean).join(' ');
}

function usage(commands: Command[]): string {
  const width = 34;
  const line = (c: Command) => {
    const u = usageOf(c);
    return u.length <= width ? `  ${u.padEnd(width)}  ${c.summary}` : `  ${u}\n  ${''.padEnd(width)}  ${c.summary}`;
  };
  return [
    'trellis: a distributed runtime for WebAssembly actors over a NATS lattice',
    '',
    'Usage: trellis <command> [options]',
    '',
    'Commands:',
    ...commands.map(line),
    '',
    'Connection: --nats <url[,url]> (or TRELLIS_NATS_URL, default nats://127.0.0.1:4222)',
    '            --lattice <name>   (or TRELLIS_LATTICE, default "default")',
    '            --nats-creds|--nats-nkey <file>, --nats-user/--nats-password, --nats-token,',
    '            --tls-ca/--tls-cert/--tls-key <file> (each also TRELLIS_NATS_…; see --help)',
    'Every command that prints takes --json. Durations: 500ms, 30s, 10m, 90d or milliseconds.',
    'Run `trellis <command> --help` for the options of one command.',
  ].join('\n');
}

function allFlags(command: Command): Flags {
  return { ...(command.lattice ? connectionFlags : {}), ...command.flags, ...(command.participant ? { help: commonFlags.help } : commonFlags) };
}

function commandHelp(command: Command): string {
  const lines = [`Usage: trellis ${usageOf(command)}`, '', command.summary];
  for (const alias of command.aliases ?? []) lines.push(`(also: trellis ${alias.join(' ')})`);
  if (command.details) lines.push('', command.details);
  const flags = Object.entries(allFlags(command));
  if (flags.length > 0) {
    lines.push('', 'Options:');
    for (const [name, spec] of flags) {
      const takesValue = spec.type !== 'boolean';
      const placeholder = spec.type === 'choice' ? spec.choices.join('|') : spec.type === 'string' ? (spec.placeholder ?? 'value') : spec.type === 'duration' ? 'duration' : spec.type === 'int' ? 'n' : spec.type === 'pairs' ? 'k=v' : 'value';
      const short = 'short' in spec && spec.short ? `, -${spec.short}` : '';
      const flag = `--${name}${takesValue ? ` <${placeholder}>` : ''}${short}`;
      const notes: string[] = [];
      if ('default' in spec && spec.default !== undefined) notes.push(`default ${spec.type === 'duration' ? `${spec.default}ms` : spec.default}`);
      if ('env' in spec && spec.env) notes.push(`env ${spec.env}`);
      if (spec.type === 'pairs' || spec.type === 'list') notes.push('repeatable');
      lines.push(`  ${flag.padEnd(30)} ${spec.help}${notes.length ? ` (${notes.join('; ')})` : ''}`);
    }
  }
  return lines.join('\n');
}

/** Find the command (or alias) whose words prefix argv, longest match first. */
function findCommand(commands: Command[], argv: string[]): { command: Command; rest: string[]; words: string[] } | undefined {
  const candidates = commands.flatMap((command) => [command.words, ...(command.aliases ?? [])].map((words) => ({ command, words })));
  candidates.sort((a, b) => b.words.length - a.words.length);
  for (const { command, words } of candidates) {
    if (words.every((w, i) => argv[i] === w)) return { command, rest: argv.slice(words.length), words };
  }
  return undefined;
}

function parseOptions(flags: Flags): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries(flags)) {
    const multiple = spec.type === 'pairs' || spec.type === 'list';
    const base = { type: spec.type === 'boolean' ? ('boolean' as const) : ('string' as const), ...(multiple ? { multiple: true } : {}) };
    options[name] = 'short' in spec && spec.short ? { ...base, short: spec.short } : base;
    if (spec.type === 'string') for (const alias of spec.aliases ?? []) options[alias] = { type: 'string' };
  }
  return options;
}

/** Run the CLI over `commands`; returns the process exit code. */
export async function main(argv: string[], commands: Command[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(usage(commands));
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(commands, argv);
  if (!found) {
    console.error(`trellis: unknown command "${argv.join(' ')}" [TRELLIS_UNKNOWN_COMMAND]\n\n${usage(commands)}`);
    return 2;
  }
  const { command, rest, words } = found;
  const flags = allFlags(command);
  const json = rest.includes('--json');
  const name = `trellis ${words.join(' ')}`;
  const fail = (err: unknown): number => {
    const error = toTrellisError(err);
    if (json) console.log(JSON.stringify({ ok: false, error: error.toJSON() }, null, 2));
    else {
      console.error(`${name}: ${error.message} [${error.code}]`);
      console.error(`  what to do: ${error.hint}`);
    }
    return error instanceof TrellisError && error.code === 'TRELLIS_BAD_OPTION' ? 2 : 1;
  };
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: parseOptions(flags), allowPositionals: true, strict: true });
  } catch (err) {
    if (json) return fail(new TrellisError('TRELLIS_BAD_OPTION', (err as Error).message));
    console.error(`${name}: ${(err as Error).message} [TRELLIS_BAD_OPTION]\n\n${commandHelp(command)}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(commandHelp(command));
    return 0;
  }
  let client: (AsyncDisposable & Record<string, unknown>) | undefined;
  try {
    const values = typedFlags(flags, parsed.values);
    checkArgs(command.args ?? [], parsed.positionals);
    if (command.lattice) {
      const { connectControl } = await import('../control/index.ts');
      // A command with a --timeout of its own (how long `--wait` waits) means that, not the request time-out.
      const timeoutMs = command.flags && 'timeout' in command.flags ? undefined : (values.timeout as number | undefined);
      client = (await connectControl({ nats: values.nats as string | undefined, lattice: values.lattice as string | undefined, timeoutMs, auth: authFromFlags(values) })) as unknown as typeof client;
    }
    const result = await command.run({
      args: parsed.positionals,
      flags: values as never,
      client: client as never,
      progress: (line) => {
        if (!json) process.stderr.write(`${line}\n`);
      },
    });
    return await render(result, json);
  } catch (err) {
    return fail(err);
  } finally {
    await client?.[Symbol.asyncDispose]();
  }
}

/** Print a command's result: the one place output is formatted. */
async function render(result: Output | Stream | number | void, json: boolean): Promise<number> {
  if (result === undefined) return 0;
  if (typeof result === 'number') return result;
  if ('stream' in result) {
    for await (const item of result.stream) console.log(json ? JSON.stringify(item.data) : item.text);
    // A stream that ends in failure (`canary status --watch --wait`) says so in process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  }
  if (json) console.log(JSON.stringify(result.data, null, 2));
  else if (result.text !== undefined) {
    if (result.text !== '') console.log(result.text);
  } else console.log(JSON.stringify(result.data, null, 2));
  return result.exitCode ?? 0;
}
