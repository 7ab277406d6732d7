/** Lattice inspection and host control commands: get hosts, get inventory, label, stop host. */
import type { ControlClient } from '../control/index.ts';
import { TrellisError } from '../errors/index.ts';
import type { HostInventory } from '../wire/index.ts';
import { command, parsePairs } from './command.ts';
import { duration, labelList, table } from './format.ts';

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

const hostArg = { help: 'host id, id prefix or name' };

export const commands = [
  command({
    words: ['get', 'hosts'],
    summary: 'list the hosts in the lattice (every host answers a ping)',
    lattice: true,
    flags: { wait: { type: 'duration', help: 'how long to wait for the first answer', default: 1000, minMs: 1 } },
    async run({ client, flags }) {
      const hosts = await client.pingHosts({ waitMs: flags.wait });
      const text =
        hosts.length === 0
          ? `no hosts in lattice "${client.lattice}" (start one with \`trellis host\` or \`npm run up\`)`
          : table(['ID', 'NAME', 'LABELS', 'UPTIME', 'VERSION'], hosts.map((h) => [h.id, h.name, labelList(h.labels), duration(h.uptimeMs), h.version]));
      return { data: hosts, text };
    },
  }),
  command({
    words: ['get', 'inventory'],
    args: ['host'],
    summary: 'show one host: labels, actors, providers (host by id, id prefix or name)',
    details: `<host>: ${hostArg.help}`,
    lattice: true,
    async run({ client, args }) {
      const inv = await client.getInventory(await resolveHost(client, args[0]!));
      return { data: inv, text: inventoryText(inv) };
    },
  }),
  command({
    words: ['label', 'put'],
    args: ['host', 'key=value...'],
    summary: 'set labels on a host (arch, os, hostname are automatic and cannot be set)',
    lattice: true,
    async run({ client, args }) {
      const [ref, ...words] = args;
      const pairs = parsePairs(words, 'label');
      const id = await resolveHost(client, ref!);
      let labels: Record<string, string> = {};
      for (const [key, value] of Object.entries(pairs)) labels = await client.putLabel(id, key, value);
      return { data: { id, labels }, text: `host ${id}: ${labelList(labels)}` };
    },
  }),
  command({
    words: ['label', 'del'],
    args: ['host', 'key...'],
    summary: 'remove labels from a host',
    lattice: true,
    async run({ client, args }) {
      const [ref, ...keys] = args;
      const id = await resolveHost(client, ref!);
      let labels: Record<string, string> = {};
      for (const key of keys) labels = await client.deleteLabel(id, key);
      return { data: { id, labels }, text: `host ${id}: ${labelList(labels)}` };
    },
  }),
  command({
    words: ['stop', 'host'],
    args: ['host'],
    summary: 'stop a host gracefully (it drains, announces host_stopped and exits 0)',
    lattice: true,
    flags: { drain: { type: 'duration', help: 'how long in-flight work may take before the host exits (default: the host\'s own)', minMs: 0, maxMs: 600_000 } },
    async run({ client, args, flags }) {
      const id = await resolveHost(client, args[0]!);
      await client.stopHost(id, { timeoutMs: flags.drain });
      return { data: { ok: true, id }, text: `host ${id} is stopping` };
    },
  }),
];

function inventoryText(inv: HostInventory): string {
  const lines = [
    table(['FIELD', 'VALUE'], [
      ['id', inv.id],
      ['name', inv.name],
      ['lattice', inv.lattice],
      ['version', inv.version],
      ['uptime', duration(inv.uptimeMs)],
      ['labels', labelList(inv.labels)],
    ]),
    '',
    inv.actors.length === 0 ? 'actors: none' : table(['ACTOR', 'VERSION', 'INSTANCES', 'DIGEST'], inv.actors.map((a) => [a.name, a.version, String(a.instances), a.digest.slice(0, 19)])),
    '',
    inv.providers.length === 0 ? 'providers: none' : table(['PROVIDER', 'HEALTH', 'RESTARTS'], inv.providers.map((p) => [p.name, p.health, String(p.restarts)])),
  ];
  return lines.join('\n');
}
