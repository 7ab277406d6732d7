/** Weights: the share of an actor's traffic each version gets (`route set|get|del` are aliases). */
import type { ControlClient } from '../control/index.ts';
import { command } from './command.ts';
import { table } from './format.ts';

/** Stores load only when a command that needs them runs (the CLI starts fast). */
const openWeightStore = async (client: ControlClient) => {
  const { openWeights } = await import('../weights/index.ts');
  return openWeights(client.nc, client.subjects);
};

export const commands = [
  command({
    words: ['weights', 'set'],
    aliases: [['route', 'set']],
    args: ['actor', 'version=percent...'],
    summary: 'split traffic between versions by weight, e.g. 1.0.0=90 1.1.0=10 (must sum to 100)',
    lattice: true,
    flags: { force: { type: 'boolean', help: 'allow versions that do not run anywhere yet' } },
    async run({ client, args, flags }) {
      const [actor, ...words] = args as [string, ...string[]];
      const { parseWeights } = await import('../weights/index.ts');
      const weights = parseWeights(words);
      const hosts = flags.force ? undefined : await client.pingHosts();
      const known = hosts && new Set(hosts.flatMap((h) => h.actors.filter((a) => a.name === actor).map((a) => a.version)));
      const route = await (await openWeightStore(client)).set(actor, weights, known);
      return { data: route, text: `${actor}: ${Object.entries(route.weights).map(([v, w]) => `${v}=${w}%`).join(' ')}` };
    },
  }),
  command({
    words: ['weights', 'get'],
    aliases: [['route', 'get']],
    args: ['actor'],
    summary: 'show the weights of an actor, which versions are live, and the share each really gets',
    lattice: true,
    async run({ client, args }) {
      const actor = args[0]!;
      const { createRpcClient } = await import('../rpc/index.ts');
      await using rpc = await createRpcClient(client.nc, { lattice: client.lattice, caller: 'cli' });
      await rpc.view.ready();
      const status = rpc.routeStatus(actor);
      const versions = [...new Set([...Object.keys(status.weights ?? {}), ...status.live])];
      const lines: string[] = [];
      if (versions.length === 0) lines.push(`${actor}: no weights set and no live versions`);
      else {
        if (!status.weights) lines.push(`${actor}: no weights set; traffic goes to the highest live version`);
        lines.push(
          table(['VERSION', 'WEIGHT', 'LIVE', 'EFFECTIVE'], versions.map((v) => [v, status.weights ? `${status.weights[v] ?? 0}%` : '-', status.live.includes(v) ? 'yes' : 'no (gets no traffic)', `${status.effective[v] ?? 0}%`])),
        );
      }
      return { data: { actor, ...status }, text: lines.join('\n') };
    },
  }),
  command({
    words: ['weights', 'del'],
    aliases: [['route', 'del']],
    args: ['actor'],
    summary: 'remove the weights of an actor (traffic goes to its highest live version)',
    lattice: true,
    async run({ client, args }) {
      const actor = args[0]!;
      await (await openWeightStore(client)).delete(actor);
      return { data: { actor, removed: true }, text: `${actor}: weights removed` };
    },
  }),
];
