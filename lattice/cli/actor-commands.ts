/** Actor commands: push, start/scale/stop actor, get actors, invoke. */
import { existsSync } from 'node:fs';
import type { ControlClient } from '../control/index.ts';
import { TrellisError } from '../errors/index.ts';
import type { HostInventory } from '../wire/index.ts';
import { command, type Flags } from './command.ts';
import { resolveHost } from './control-commands.ts';
import { pushFile, readUserFile } from '../state/index.ts';
import { table } from './format.ts';

/**
 * A component source as the user gives it: a file (pushed first), or a digest already in the
 * artifact store, written `sha256:<hex>` or as the 64 bare hex digits, when no such file exists.
 */
export async function resolveSource(client: ControlClient, source: string, progress: (line: string) => void): Promise<string> {
  if (!existsSync(source)) {
    if (/^sha256:[0-9a-f]{64}$/.test(source)) return source;
    if (/^[0-9a-f]{64}$/.test(source)) return `sha256:${source}`;
  }
  const pushed = await pushFile(client, source);
  progress(`pushed ${source}: ${pushed.digest}${pushed.existed ? ' (already stored)' : ''}`);
  return pushed.digest;
}

const placementFlags = {
  host: { type: 'string', help: 'run on this host (id, id prefix or name)', placeholder: 'host' },
  label: { type: 'pairs', short: 'l', help: 'run on every host with this label k=v' },
} as const satisfies Flags;

/** Hosts selected by --host or --label; with neither, `fallback`. */
async function selectHosts(client: ControlClient, flags: { host?: string; label: Record<string, string> }, fallback: (hosts: HostInventory[]) => HostInventory[]): Promise<HostInventory[]> {
  const hosts = await client.pingHosts();
  if (hosts.length === 0) throw new TrellisError('TRELLIS_NO_RESPONDERS', `no hosts in lattice ${client.lattice}; start one with \`trellis host\``);
  if (flags.host) {
    const id = await resolveHost(client, flags.host);
    return hosts.filter((h) => h.id === id);
  }
  const labels = Object.entries(flags.label);
  if (labels.length > 0) {
    const matching = hosts.filter((h) => labels.every(([k, v]) => h.labels[k] === v));
    if (matching.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `no host has labels ${labels.map(([k, v]) => `${k}=${v}`).join(',')}`);
    return matching;
  }
  return fallback(hosts);
}

/** Per-host outcome of a command sent to several hosts. */
interface HostResult {
  host: string;
  name: string;
  ok: boolean;
  error?: { code: string; message: string };
}

async function onEachHost(hosts: HostInventory[], send: (h: HostInventory) => Promise<unknown>): Promise<HostResult[]> {
  return Promise.all(
    hosts.map(async (h) => {
      try {
        await send(h);
        return { host: h.id, name: h.name, ok: true };
      } catch (err) {
        const e = err as TrellisError;
        return { host: h.id, name: h.name, ok: false, error: { code: e.code ?? 'TRELLIS_INTERNAL', message: e.message } };
      }
    }),
  );
}

export const commands = [
  command({
    words: ['push'],
    args: ['component.wasm'],
    summary: 'store a component in the lattice artifact store; prints its sha256 digest',
    lattice: true,
    async run({ client, args }) {
      const pushed = await pushFile(client, args[0]!);
      return { data: pushed, text: `${pushed.digest}  (${pushed.size} bytes${pushed.existed ? ', already stored' : ''})` };
    },
  }),
  command({
    words: ['start', 'actor'],
    args: ['file|digest'],
    summary: 'start an actor version on hosts (a file is pushed first)',
    details: 'With --label, every matching host runs it; with neither --host nor --label, the host with the fewest actors does.\nA digest is sha256:<hex> or the 64 hex digits.',
    lattice: true,
    flags: {
      ...placementFlags,
      name: { type: 'string', help: 'actor name (required)' },
      version: { type: 'string', help: 'semantic version (required)' },
      count: { type: 'int', help: 'instances per host', default: 1, min: 1 },
      policy: { type: 'string', help: 'sandbox policy file (JSON or YAML)', placeholder: 'file' },
    },
    async run({ client, args, flags, progress }) {
      if (!flags.name) throw new TrellisError('TRELLIS_BAD_OPTION', '--name is required');
      if (!flags.version) throw new TrellisError('TRELLIS_BAD_OPTION', '--version is required');
      const { name: actor, version, count } = flags;
      // Compiled here, where the policy file's relative paths mean something; the host checks it again.
      const policy = flags.policy ? { ...(await (await import('../policy/index.ts')).loadPolicyFile(flags.policy)) } : undefined;
      const digest = await resolveSource(client, args[0]!, progress);
      const hosts = await selectHosts(client, flags, (all) => [[...all].sort((a, b) => a.actors.length - b.actors.length)[0]!]);
      const results = await onEachHost(hosts, (h) => client.startActor(h.id, { actor, version, digest, count, ...(policy ? { policy } : {}) }));
      return {
        data: { actor, version, digest, results },
        text: table(['HOST', 'NAME', 'RESULT'], results.map((r) => [r.host, r.name, r.ok ? `started ${actor}@${version} x${count}` : `${r.error!.code}: ${r.error!.message}`])),
        exitCode: results.every((r) => r.ok) ? 0 : 1,
      };
    },
  }),
  command({
    words: ['scale', 'actor'],
    args: ['actor'],
    summary: 'change the instances of a running actor version on hosts (0 stops it there)',
    lattice: true,
    flags: { ...placementFlags, version: { type: 'string', help: 'the version to scale (required)' }, count: { type: 'int', help: 'instances per host (required)', min: 0 } },
    async run({ client, args, flags }) {
      const actor = args[0]!;
      const { version, count } = flags;
      if (!version) throw new TrellisError('TRELLIS_BAD_OPTION', '--version is required');
      if (count === undefined) throw new TrellisError('TRELLIS_BAD_OPTION', '--count is required');
      const selected = await selectHosts(client, flags, (all) => all);
      const hosts = selected.filter((h) => h.actors.some((a) => a.name === actor && a.version === version));
      if (hosts.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `${actor}@${version} runs on none of the selected hosts`);
      for (const h of hosts) await client.scaleActor(h.id, { actor, version, count });
      return { data: { actor, version, count, hosts: hosts.map((h) => h.id) }, text: `${actor}@${version}: ${count} instance(s) on ${hosts.length} host(s)` };
    },
  }),
  command({
    words: ['stop', 'actor'],
    args: ['actor'],
    summary: 'stop an actor (one version, or all) on the selected hosts (default: everywhere)',
    lattice: true,
    flags: { ...placementFlags, version: { type: 'string', help: 'only this version' } },
    async run({ client, args, flags }) {
      const actor = args[0]!;
      const { version } = flags;
      const selected = await selectHosts(client, flags, (all) => all);
      const hosts = selected.filter((h) => h.actors.some((a) => a.name === actor && (!version || a.version === version)));
      if (hosts.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `actor ${actor}${version ? `@${version}` : ''} is not running on the selected hosts`);
      const stopped: string[] = [];
      for (const h of hosts) {
        const r = await client.stopActor(h.id, { actor, ...(version ? { version } : {}) });
        stopped.push(...r.stopped.map((s) => `${s} on ${h.name}`));
      }
      return { data: { stopped }, text: stopped.map((s) => `stopped ${s}`).join('\n') };
    },
  }),
  command({
    words: ['get', 'actors'],
    summary: 'actors → versions → hosts → instances across the lattice',
    lattice: true,
    async run({ client }) {
      const hosts = await client.pingHosts();
      const rows: { actor: string; version: string; digest: string; world: string; hosts: { id: string; name: string; instances: number; busy: number }[] }[] = [];
      for (const h of hosts) {
        for (const a of h.actors) {
          let row = rows.find((r) => r.actor === a.name && r.version === a.version);
          if (!row) rows.push((row = { actor: a.name, version: a.version, digest: a.digest, world: a.world, hosts: [] }));
          row.hosts.push({ id: h.id, name: h.name, instances: a.instances, busy: a.busy ?? 0 });
        }
      }
      rows.sort((a, b) => a.actor.localeCompare(b.actor) || a.version.localeCompare(b.version));
      const text =
        rows.length === 0
          ? 'no actors running (start one with `trellis start actor`)'
          : table(['ACTOR', 'VERSION', 'INSTANCES', 'HOSTS', 'DIGEST'], rows.map((r) => [r.actor, r.version, String(r.hosts.reduce((s, h) => s + h.instances, 0)), r.hosts.map((h) => `${h.name}(${h.instances})`).join(','), r.digest.slice(0, 19)]));
      return { data: rows, text };
    },
  }),
  command({
    words: ['invoke'],
    args: ['actor'],
    summary: 'invoke an actor through the lattice and print its response body',
    details: '--json prints the response with its metadata: actor, version, answering host, attempts, latency.',
    lattice: true,
    flags: {
      version: { type: 'string', help: 'pin a version instead of following the weights' },
      data: { type: 'string', short: 'd', help: 'request body as text' },
      file: { type: 'string', short: 'f', help: 'request body from a file', placeholder: 'file' },
      deadline: { type: 'duration', help: 'deadline of the call', default: 10_000, minMs: 1, maxMs: 3_600_000 },
    },
    async run({ client, args, flags }) {
      if (flags.data !== undefined && flags.file !== undefined) throw new TrellisError('TRELLIS_BAD_OPTION', 'give --data or --file, not both');
      const body = flags.file ? await readUserFile(flags.file, 'request body') : new TextEncoder().encode(flags.data ?? '');
      const { createRpcClient } = await import('../rpc/index.ts');
      const { bytesRequest } = await import('../wire/index.ts');
      await using rpc = await createRpcClient(client.nc, { lattice: client.lattice, caller: 'cli' });
      const result = await rpc.invoke(args[0]!, bytesRequest(body), { version: flags.version, deadlineMs: flags.deadline });
      const text = new TextDecoder('utf-8', { fatal: false }).decode(result.response.body);
      if (!flags.json) {
        // The body goes out as it is (it may be binary), not through the text renderer.
        process.stdout.write(result.response.body);
        if (process.stdout.isTTY) process.stdout.write('\n');
        return;
      }
      return { data: { ...result, response: { ...result.response, body: text } } };
    },
  }),
];
