/** The inner dev loop: build an actor from source, run one component over HTTP on this machine. */
import { stat } from 'node:fs/promises';
import { TrellisError } from '../errors/index.ts';
import { positionals, untilSignal, type Command } from './command.ts';

export const commands: Command[] = [
  {
    words: ['build'],
    usage: 'build <entry.ts|js|c> -o <actor.wasm> [--world actor|proxy]',
    summary: 'build an actor component from TypeScript, JavaScript or C',
    details: 'A JS/TS entry that exports `handler` targets the trellis:actor world; one that exports\n`incomingHandler` targets wasi:http/proxy. See actors/wit/actor.wit for the ABI.',
    options: { out: { type: 'string', short: 'o' }, world: { type: 'string' }, wit: { type: 'string' }, json: { type: 'boolean' } },
    optionHelp: { out: 'output component file (required)', world: 'world to target (default: from the entry\'s exports)', wit: 'a WIT folder of your own', json: 'print the result as JSON' },
    async run(args, values) {
      const [entry] = positionals(args, ['entry']);
      if (!values.out) throw new TrellisError('TRELLIS_BAD_OPTION', '-o/--out <actor.wasm> is required');
      const { buildActor } = await import('../../actors/index.ts');
      if (!values.json) process.stderr.write(`building ${entry}...\n`);
      const result = await buildActor({ entry: entry!, out: values.out as string, world: values.world as string | undefined, witPath: values.wit as string | undefined });
      if (values.json) return console.log(JSON.stringify(result));
      console.log(`${result.out}: ${(result.bytes / 1024).toFixed(1)} KiB in ${(result.ms / 1000).toFixed(1)} s`);
    },
  },
  {
    words: ['run'],
    usage: 'run <component.wasm> [--policy file] [--listen host:port]',
    summary: 'serve one component over HTTP on this machine (either world), like wasmtime serve',
    options: { policy: { type: 'string' }, listen: { type: 'string' } },
    optionHelp: { policy: 'sandbox policy file, JSON or YAML (default: deny everything)', listen: 'host:port (default 127.0.0.1:8000)' },
    async run(args, values) {
      const [file] = positionals(args, ['component.wasm']);
      try {
        await stat(file!);
      } catch {
        throw new TrellisError('TRELLIS_BAD_REQUEST', `no such file: ${file}`);
      }
      const { loadPolicyFile, serveComponent } = await import('../../host/runtime/index.ts');
      const policy = values.policy ? await loadPolicyFile(values.policy as string) : undefined;
      const server = await serveComponent({ path: file!, policy, listen: values.listen as string | undefined });
      console.log(`serving ${file} on ${server.url} (Ctrl-C stops)`);
      await untilSignal();
      await server.close();
      return 0;
    },
  },
];
