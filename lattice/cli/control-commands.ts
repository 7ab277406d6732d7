/** Lattice inspection and control commands: get hosts, get inventory, label, stop host. */
import { TrellisError } from '../errors/index.ts';
import { connectControl, type ControlClient } from '../control/index.ts';
import type { HostInventory } from '../wire/index.ts';
import { connectionHelp, connectionOptions, intFlag, parsePairs, positionals, type Command, type Values } from './command.ts';
import { duration, labelList, table } from './format.ts';

/** Connect a control client from the common flags. */
export async function clientFrom(values: Values): Promise<ControlClient> {
  return connectControl({
    nats: values.nats as string | undefined,
    lattice: values.lattice as string | undefined,
    timeoutMs: intFlag(values.timeout, 'timeout'),
  });
}

/** Resolve a host reference (full id, id prefix or name) to one host id. */
export async function resolveHost(client: ControlClient, ref: string): Promise<string> {
  if (/^N[A-Z2-7]{55}$/.test(ref)) return ref;
  const hosts = await client.pingHosts();
  const exact = hosts.filter((h) => h.name === ref);
  const matches = exact.length > 0 ? exact : hosts.filter((h) => h.id.startsWith(ref) || h.name.startsWith(ref));
  if (matches.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `no host with id or name "${ref}" in lattice ${client.lattice}`);
  if (matches.length > 1) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `"${ref}" matches ${matches.length} hosts (${matches.map((h) => h.id).join(', ')}); give more of the id`);
  }
  return matches[0]!.id;
}

function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

export const commands: Command[] = [
  {
    words: ['get', 'hosts'],
    usage: 'get hosts [--json]',
    summary: 'list the hosts in the lattice (every host answers a ping)',
    options: { ...connectionOptions, wait: { type: 'string' } },
    optionHelp: { ...connectionHelp, wait: 'how long to wait for the first answer, ms (default 1000)' },
    async run(args, values) {
      positionals(args, []);
      await using client = await clientFrom(values);
      const hosts = await client.pingHosts({ waitMs: intFlag(values.wait, 'wait') });
      if (values.json) return printJson(hosts);
      if (hosts.length === 0) {
        console.log(`no hosts in lattice "${client.lattice}" (start one with \`trellis host\` or \`npm run up\`)`);
        return;
      }
      console.log(table(['ID', 'NAME', 'LABELS', 'UPTIME', 'VERSION'], hosts.map((h) => [h.id, h.name, labelList(h.labels), duration(h.uptimeMs), h.version])));
    },
  },
  {
    words: ['get', 'inventory'],
    usage: 'get inventory <host> [--json]',
    summary: 'show one host: labels, actors, providers (host by id, id prefix or name)',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      const [ref] = positionals(args, ['host']);
      await using client = await clientFrom(values);
      const inv = await client.getInventory(await resolveHost(client, ref!));
      if (values.json) return printJson(inv);
      printInventory(inv);
    },
  },
  {
    words: ['label', 'put'],
    usage: 'label put <host> <key=value>...',
    summary: 'set labels on a host (arch, os, hostname are automatic and cannot be set)',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      if (args.length < 2) throw new TrellisError('TRELLIS_BAD_OPTION', 'expected <host> <key=value>...');
      const pairs = parsePairs(args.slice(1), 'label');
      await using client = await clientFrom(values);
      const id = await resolveHost(client, args[0]!);
      let labels: Record<string, string> = {};
      for (const [key, value] of Object.entries(pairs)) labels = await client.putLabel(id, key, value);
      if (values.json) return printJson({ id, labels });
      console.log(`host ${id}: ${labelList(labels)}`);
    },
  },
  {
    words: ['label', 'del'],
    usage: 'label del <host> <key>...',
    summary: 'remove labels from a host',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      if (args.length < 2) throw new TrellisError('TRELLIS_BAD_OPTION', 'expected <host> <key>...');
      await using client = await clientFrom(values);
      const id = await resolveHost(client, args[0]!);
      let labels: Record<string, string> = {};
      for (const key of args.slice(1)) labels = await client.deleteLabel(id, key);
      if (values.json) return printJson({ id, labels });
      console.log(`host ${id}: ${labelList(labels)}`);
    },
  },
  {
    words: ['stop', 'host'],
    usage: 'stop host <host>',
    summary: 'stop a host gracefully (it drains, announces host_stopped and exits 0)',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      const [ref] = positionals(args, ['host']);
      await using client = await clientFrom(values);
      const id = await resolveHost(client, ref!);
      await client.stopHost(id);
      if (values.json) return printJson({ ok: true, id });
      console.log(`host ${id} is stopping`);
    },
  },
];

function printInventory(inv: HostInventory): void {
  console.log(table(['FIELD', 'VALUE'], [
    ['id', inv.id],
    ['name', inv.name],
    ['lattice', inv.lattice],
    ['version', inv.version],
    ['uptime', duration(inv.uptimeMs)],
    ['labels', labelList(inv.labels)],
  ]));
  console.log('');
  if (inv.actors.length === 0) console.log('actors: none');
  else console.log(table(['ACTOR', 'VERSION', 'INSTANCES', 'DIGEST'], inv.actors.map((a) => [a.name, a.version, String(a.instances), a.digest.slice(0, 19)])));
  console.log('');
  if (inv.providers.length === 0) console.log('providers: none');
  else console.log(table(['PROVIDER', 'HEALTH', 'RESTARTS'], inv.providers.map((p) => [p.name, p.health, String(p.restarts)])));
}
