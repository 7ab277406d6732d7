/**
 * The `trellis` CLI: a thin layer over the typed control client and the host. Each command is
 * one entry in the table below (words, flags, help, run); `main` dispatches, prints tables or
 * `--json`, and turns TrellisErrors into a message with the code and what to do about it.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TrellisError, toTrellisError } from '../errors/index.ts';
import { commands as hostCommands } from './host-commands.ts';
import { commands as controlCommands } from './control-commands.ts';
import { commands as actorCommands } from './actor-commands.ts';
import { commands as providerCommands } from './provider-commands.ts';
import { commands as devCommands } from './dev-commands.ts';
import type { Command } from './command.ts';

const commands: Command[] = [...hostCommands, ...controlCommands, ...actorCommands, ...providerCommands, ...devCommands];

/** Flags every command accepts. */
const commonOptions = {
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

function usage(): string {
  // Short usages fit a column; long ones put their summary on the next line.
  const width = 34;
  const line = (c: Command) => (c.usage.length <= width ? `  ${c.usage.padEnd(width)}  ${c.summary}` : `  ${c.usage}\n  ${''.padEnd(width)}  ${c.summary}`);
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
    'Run `trellis <command> --help` for the options of one command.',
  ].join('\n');
}

function commandHelp(command: Command): string {
  const lines = [`Usage: trellis ${command.usage}`, '', command.summary];
  if (command.details) lines.push('', command.details);
  const opts = Object.entries(command.options ?? {});
  if (opts.length > 0) {
    lines.push('', 'Options:');
    for (const [name, spec] of opts) {
      const flag = `--${name}${spec.type === 'string' ? ' <value>' : ''}${spec.short ? `, -${spec.short}` : ''}`;
      lines.push(`  ${flag.padEnd(28)} ${command.optionHelp?.[name] ?? ''}`);
    }
  }
  return lines.join('\n');
}

/** Find the command whose words prefix argv, longest match first. */
function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  const sorted = [...commands].sort((a, b) => b.words.length - a.words.length);
  for (const command of sorted) {
    if (command.words.every((w, i) => argv[i] === w)) return { command, rest: argv.slice(command.words.length) };
  }
  return undefined;
}

/** Run the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(usage());
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv);
  if (!found) {
    console.error(`trellis: unknown command "${argv.join(' ')}" [TRELLIS_UNKNOWN_COMMAND]\n\n${usage()}`);
    return 2;
  }
  const { command, rest } = found;
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...commonOptions, ...command.options }, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`trellis ${command.words.join(' ')}: ${(err as Error).message} [TRELLIS_BAD_OPTION]\n\n${commandHelp(command)}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(commandHelp(command));
    return 0;
  }
  try {
    return (await command.run(parsed.positionals, parsed.values as Record<string, string | boolean | string[] | undefined>)) ?? 0;
  } catch (err) {
    const error = toTrellisError(err);
    if ((parsed.values as Record<string, unknown>).json) {
      console.log(JSON.stringify({ ok: false, error: error.toJSON() }));
    } else {
      console.error(`trellis ${command.words.join(' ')}: ${error.message} [${error.code}]`);
      console.error(`  what to do: ${error.hint}`);
    }
    return error instanceof TrellisError && error.code === 'TRELLIS_BAD_OPTION' ? 2 : 1;
  }
}
