/** Actor commands: push, start/scale/stop actor, get actors, invoke, route set/get. */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { TrellisError } from '../errors/index.ts';
import type { ControlClient } from '../control/index.ts';
import { openWeights, parseWeights } from '../weights/index.ts';
import { createRpcClient } from '../rpc/index.ts';
import { openArtifacts } from '../state/index.ts';
import { bytesRequest, type ActorInventory, type HostInventory } from '../wire/index.ts';
import { connectionHelp, connectionOptions, intFlag, parsePairs, positionals, type Command, type Values } from './command.ts';
import { clientFrom, resolveHost } from './control-commands.ts';
import { table } from './format.ts';

/** Push a component file to the lattice artifact store; returns its digest. */
async function pushFile(client: ControlClient, file: string): Promise<{ digest: string; size: number; existed: boolean }> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (err) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (bytes.length < 8 || bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `${file} is not a WebAssembly file`);
  }
  const artifacts = await openArtifacts(client.nc, client.subjects);
  return artifacts.push(bytes);
}

/**
 * Read and validate a policy file here, where its relative `hostPath`s mean something (they
 * resolve from the file's folder), and send the complete form; the host validates it again.
 */
async function readPolicy(file: string | undefined): Promise<Record<string, unknown> | undefined> {
  if (!file) return undefined;
  const { loadPolicyFile } = await import('../../host/runtime/index.ts');
  return { ...(await loadPolicyFile(file)) };
}

/** Hosts selected by --host or --label; with neither, the host running the fewest actors. */
async function targetHosts(client: ControlClient, values: Values): Promise<HostInventory[]> {
  const hosts = await client.pingHosts();
  if (hosts.length === 0) throw new TrellisError('TRELLIS_NO_RESPONDERS', `no hosts in lattice ${client.lattice}; start one with \`trellis host\``);
  if (values.host) {
    const id = await resolveHost(client, values.host as string);
    return hosts.filter((h) => h.id === id);
  }
  const labels = parsePairs((values.label as string[] | undefined) ?? [], '--label');
  if (Object.keys(labels).length > 0) {
    const matching = hosts.filter((h) => Object.entries(labels).every(([k, v]) => h.labels[k] === v));
    if (matching.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `no host has labels ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',')}`);
    return matching;
  }
  return [[...hosts].sort((a, b) => a.actors.length - b.actors.length)[0]!];
}

/** Versions of `actor` running anywhere, from a ping. */
function runningVersions(hosts: HostInventory[], actor: string): Set<string> {
  return new Set(hosts.flatMap((h) => h.actors.filter((a) => a.name === actor).map((a) => a.version)));
}

const placementOptions = { ...connectionOptions, host: { type: 'string' }, label: { type: 'string', multiple: true, short: 'l' } } as const;
const placementHelp = { ...connectionHelp, host: 'run on this host (id, id prefix or name)', label: 'run on every host with this label k=v (repeatable)' };

export const commands: Command[] = [
  {
    words: ['push'],
    usage: 'push <component.wasm>',
    summary: 'store a component in the lattice artifact store; prints its sha256 digest',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      const [file] = positionals(args, ['component.wasm']);
      await using client = await clientFrom(values);
      const pushed = await pushFile(client, file!);
      if (values.json) return console.log(JSON.stringify(pushed));
      console.log(`${pushed.digest}  (${pushed.size} bytes${pushed.existed ? ', already stored' : ''})`);
    },
  },
  {
    words: ['start', 'actor'],
    usage: 'start actor <file|digest> --name <actor> --version <semver> [--host h | --label k=v] [--count N] [--policy file]',
    summary: 'start an actor version on hosts (a file is pushed first)',
    details: 'With --label, every matching host runs it; with neither --host nor --label, the host with the fewest actors does.',
    options: { ...placementOptions, name: { type: 'string' }, version: { type: 'string' }, count: { type: 'string' }, policy: { type: 'string' } },
    optionHelp: { ...placementHelp, name: 'actor name (required)', version: 'semantic version (required)', count: 'instances per host (default 1)', policy: 'sandbox policy file (JSON or YAML)' },
    async run(args, values) {
      const [source] = positionals(args, ['file|digest']);
      if (!values.name) throw new TrellisError('TRELLIS_BAD_OPTION', '--name is required');
      if (!values.version) throw new TrellisError('TRELLIS_BAD_OPTION', '--version is required');
      const count = intFlag(values.count, 'count') ?? 1;
      const policy = await readPolicy(values.policy as string | undefined);
      await using client = await clientFrom(values);
      let digest = source!;
      if (!digest.startsWith('sha256:') || existsSync(digest)) {
        if (!values.json) process.stderr.write(`pushing ${source}... `);
        digest = (await pushFile(client, source!)).digest;
        if (!values.json) process.stderr.write(`${digest}\n`);
      }
      const hosts = await targetHosts(client, values);
      const results = await Promise.all(hosts.map(async (h) => {
        try {
          await client.request<ActorInventory>('actorStart', h.id, { actor: values.name, version: values.version, digest, count, ...(policy ? { policy } : {}) });
          return { host: h.id, name: h.name, ok: true as const };
        } catch (err) {
          const e = err as TrellisError;
          return { host: h.id, name: h.name, ok: false as const, error: { code: e.code, message: e.message } };
        }
      }));
      if (values.json) console.log(JSON.stringify({ actor: values.name, version: values.version, digest, results }, null, 2));
      else console.log(table(['HOST', 'NAME', 'RESULT'], results.map((r) => [r.host, r.name, r.ok ? `started ${values.name}@${values.version} x${count}` : `${r.error.code}: ${r.error.message}`])));
      return results.every((r) => r.ok) ? 0 : 1;
    },
  },
  {
    words: ['scale', 'actor'],
    usage: 'scale actor <actor> --version <semver> --count N [--host h | --label k=v]',
    summary: 'change the instances of a running actor version on hosts (0 stops it there)',
    options: { ...placementOptions, version: { type: 'string' }, count: { type: 'string' } },
    optionHelp: { ...placementHelp, version: 'the version to scale (required)', count: 'instances per host (required)' },
    async run(args, values) {
      const [actor] = positionals(args, ['actor']);
      if (!values.version) throw new TrellisError('TRELLIS_BAD_OPTION', '--version is required');
      const count = intFlag(values.count, 'count');
      if (count === undefined) throw new TrellisError('TRELLIS_BAD_OPTION', '--count is required');
      await using client = await clientFrom(values);
      const selected = values.host || values.label ? await targetHosts(client, values) : await client.pingHosts();
      const hosts = selected.filter((h) => h.actors.some((a) => a.name === actor && a.version === values.version));
      if (hosts.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `${actor}@${values.version} runs on none of the selected hosts`);
      for (const h of hosts) await client.request('actorScale', h.id, { actor, version: values.version, count });
      if (values.json) return console.log(JSON.stringify({ actor, version: values.version, count, hosts: hosts.map((h) => h.id) }));
      console.log(`${actor}@${values.version}: ${count} instance(s) on ${hosts.length} host(s)`);
    },
  },
  {
    words: ['stop', 'actor'],
    usage: 'stop actor <actor> [--version v] [--host h | --label k=v]',
    summary: 'stop an actor (one version, or all) on the selected hosts (default: everywhere)',
    options: { ...placementOptions, version: { type: 'string' } },
    optionHelp: { ...placementHelp, version: 'only this version' },
    async run(args, values) {
      const [actor] = positionals(args, ['actor']);
      await using client = await clientFrom(values);
      const selected = values.host || values.label ? await targetHosts(client, values) : await client.pingHosts();
      const hosts = selected.filter((h) => h.actors.some((a) => a.name === actor && (!values.version || a.version === values.version)));
      if (hosts.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `actor ${actor}${values.version ? `@${values.version}` : ''} is not running on the selected hosts`);
      const stopped: string[] = [];
      for (const h of hosts) {
        const r = await client.request<{ stopped: string[] }>('actorStop', h.id, { actor, ...(values.version ? { version: values.version } : {}) });
        stopped.push(...r.stopped.map((s) => `${s} on ${h.name}`));
      }
      if (values.json) return console.log(JSON.stringify({ stopped }));
      for (const s of stopped) console.log(`stopped ${s}`);
    },
  },
  {
    words: ['get', 'actors'],
    usage: 'get actors [--json]',
    summary: 'actors → versions → hosts → instances across the lattice',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      positionals(args, []);
      await using client = await clientFrom(values);
      const hosts = await client.pingHosts();
      const rows: { actor: string; version: string; digest: string; world: string; hosts: { id: string; name: string; instances: number }[] }[] = [];
      for (const h of hosts) {
        for (const a of h.actors) {
          let row = rows.find((r) => r.actor === a.name && r.version === a.version);
          if (!row) rows.push((row = { actor: a.name, version: a.version, digest: a.digest, world: a.world, hosts: [] }));
          row.hosts.push({ id: h.id, name: h.name, instances: a.instances });
        }
      }
      rows.sort((a, b) => a.actor.localeCompare(b.actor) || a.version.localeCompare(b.version));
      if (values.json) return console.log(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return console.log('no actors running (start one with `trellis start actor`)');
      console.log(table(['ACTOR', 'VERSION', 'INSTANCES', 'HOSTS', 'DIGEST'], rows.map((r) => [
        r.actor, r.version, String(r.hosts.reduce((s, h) => s + h.instances, 0)), r.hosts.map((h) => `${h.name}(${h.instances})`).join(','), r.digest.slice(0, 19),
      ])));
    },
  },
  {
    words: ['invoke'],
    usage: 'invoke <actor> [--version v] [--data STR | --file F] [--json]',
    summary: 'invoke an actor through the lattice and print its response body',
    details: '--json prints the response with its metadata: actor, version, answering host, attempts, latency.',
    options: { ...connectionOptions, version: { type: 'string' }, data: { type: 'string', short: 'd' }, file: { type: 'string', short: 'f' }, deadline: { type: 'string' } },
    optionHelp: { ...connectionHelp, version: 'pin a version instead of following the weights', data: 'request body as text', file: 'request body from a file', deadline: 'deadline in ms (default 10000)' },
    async run(args, values) {
      const [actor] = positionals(args, ['actor']);
      if (values.data !== undefined && values.file !== undefined) throw new TrellisError('TRELLIS_BAD_OPTION', 'give --data or --file, not both');
      const body = values.file ? new Uint8Array(await readFile(values.file as string)) : new TextEncoder().encode((values.data as string | undefined) ?? '');
      await using client = await clientFrom(values);
      await using rpc = await createRpcClient(client.nc, { lattice: client.lattice, caller: 'cli' });
      const result = await rpc.invoke(actor!, bytesRequest(body), { version: values.version as string | undefined, deadlineMs: intFlag(values.deadline, 'deadline') });
      if (values.json) {
        const text = new TextDecoder('utf-8', { fatal: false }).decode(result.response.body);
        console.log(JSON.stringify({ ...result, response: { ...result.response, body: text } }, null, 2));
        return;
      }
      process.stdout.write(result.response.body);
      if (process.stdout.isTTY) process.stdout.write('\n');
    },
  },
  {
    words: ['route', 'set'],
    usage: 'route set <actor> <version=percent>...',
    summary: 'split traffic between versions by weight, e.g. 1.0.0=90 1.1.0=10 (must sum to 100)',
    options: { ...connectionOptions, force: { type: 'boolean' } },
    optionHelp: { ...connectionHelp, force: 'allow versions that do not run anywhere yet' },
    async run(args, values) {
      if (args.length < 2) throw new TrellisError('TRELLIS_BAD_OPTION', 'expected <actor> <version=percent>...');
      const [actor, ...words] = args as [string, ...string[]];
      const weights = parseWeights(words);
      await using client = await clientFrom(values);
      const known = values.force ? undefined : runningVersions(await client.pingHosts(), actor);
      const route = await (await openWeights(client.nc, client.subjects)).set(actor, weights, known);
      if (values.json) return console.log(JSON.stringify(route));
      console.log(`${actor}: ${Object.entries(route.weights).map(([v, w]) => `${v}=${w}%`).join(' ')}`);
    },
  },
  {
    words: ['route', 'get'],
    usage: 'route get <actor>',
    summary: 'show the weights of an actor, which versions are live, and the share each really gets',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      const [actor] = positionals(args, ['actor']);
      await using client = await clientFrom(values);
      await using rpc = await createRpcClient(client.nc, { lattice: client.lattice, caller: 'cli' });
      await rpc.view.ready();
      const status = rpc.routeStatus(actor!);
      if (values.json) return console.log(JSON.stringify({ actor, ...status }, null, 2));
      const versions = [...new Set([...Object.keys(status.weights ?? {}), ...status.live])];
      if (versions.length === 0) return console.log(`${actor}: no weights set and no live versions`);
      if (!status.weights) console.log(`${actor}: no weights set; traffic goes to the highest live version`);
      console.log(table(['VERSION', 'WEIGHT', 'LIVE', 'EFFECTIVE'], versions.map((v) => [
        v, status.weights ? `${status.weights[v] ?? 0}%` : '-', status.live.includes(v) ? 'yes' : 'no (gets no traffic)', `${status.effective[v] ?? 0}%`,
      ])));
    },
  },
  {
    words: ['route', 'del'],
    usage: 'route del <actor>',
    summary: 'remove the weights of an actor (traffic goes to its highest live version)',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      const [actor] = positionals(args, ['actor']);
      await using client = await clientFrom(values);
      await (await openWeights(client.nc, client.subjects)).delete(actor!);
      console.log(`${actor}: weights removed`);
    },
  },
];
