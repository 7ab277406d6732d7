/** Providers on hosts, links from actors to providers, and the gateway's HTTP routes. */
import { TrellisError } from '../errors/index.ts';
import type { ControlClient } from '../control/index.ts';
import { command } from './command.ts';
import { resolveHost } from './control-commands.ts';
import { table } from './format.ts';

const hostFlag = { type: 'string', help: 'host id, id prefix or name', placeholder: 'host' } as const;
/** The HTTP Host a route matches; `--host` stays as an alias from before `--host` meant a Trellis host. */
const hostnameFlag = { type: 'string', help: 'only requests for this HTTP Host header', placeholder: 'example.com', aliases: ['host'] } as const;

/** Stores load only when a command that needs them runs (the CLI starts fast). */
const openHttpRouteStore = async (client: ControlClient) => {
  const { openHttpRoutes } = await import('../http-routes/index.ts');
  return openHttpRoutes(client.nc, client.subjects);
};

export const commands = [
  command({
    words: ['start', 'provider'],
    args: ['kind'],
    summary: 'have a host run a provider (restarted with backoff if it crashes)',
    lattice: true,
    flags: { host: { ...hostFlag, help: 'host id, id prefix or name (default: every host)' } },
    async run({ client, args, flags }) {
      const kind = args[0]!;
      (await import('../links/index.ts')).providerKind(kind);
      const hosts = flags.host ? [await resolveHost(client, flags.host)] : (await client.pingHosts()).map((h) => h.id);
      if (hosts.length === 0) throw new TrellisError('TRELLIS_NO_RESPONDERS', 'no hosts in the lattice');
      for (const id of hosts) await client.startProvider(id, { provider: kind });
      return { data: { provider: kind, hosts }, text: `${kind} running on ${hosts.length} host(s)` };
    },
  }),
  command({
    words: ['stop', 'provider'],
    args: ['kind'],
    summary: 'stop a provider on a host (default: every host running it)',
    lattice: true,
    flags: { host: hostFlag },
    async run({ client, args, flags }) {
      const kind = args[0]!;
      const hosts = flags.host
        ? [await resolveHost(client, flags.host)]
        : (await client.pingHosts()).filter((h) => h.providers.some((p) => p.name === kind)).map((h) => h.id);
      if (hosts.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `provider ${kind} runs on no host`);
      // A hand stop drops the hand reference: where apps still hold the provider it keeps running.
      const kept: string[] = [];
      for (const id of hosts) {
        const reply = await client.stopProvider(id, { provider: kind });
        if (reply.running) kept.push(`${id.slice(0, 8)} (held by ${reply.owners?.length ? `app ${reply.owners.join(', ')}` : 'a hand start'})`);
      }
      const stopped = hosts.length - kept.length;
      const text = kept.length === 0 ? `${kind} stopped on ${hosts.length} host(s)` : `${kind} stopped on ${stopped} host(s); still running on ${kept.join('; ')}`;
      return { data: { provider: kind, hosts, keptRunning: kept.length }, text };
    },
  }),
  command({
    words: ['link', 'put'],
    args: ['actor', 'provider', 'key=value...?'],
    summary: 'link an actor to a provider with config, e.g. link put counter keyvalue-nats bucket=counters',
    details: 'Secrets (--secret, --secret-file) are sealed to the lattice key (`trellis secrets key set`):\nonly a provider with its seed (--secrets-key) opens them; everything else shows ***.',
    lattice: true,
    flags: {
      // Lists, not pairs: a malformed one must not be echoed in the error (parsed in secret-flags.ts).
      secret: { type: 'list', help: 'a secret name=value, sealed before it leaves this process (repeatable)' },
      'secret-file': { type: 'list', help: 'a secret name=<file> read from the file, out of ps and shell history (repeatable)' },
      'drop-secret': { type: 'list', help: 'remove this secret of the existing link (others are kept; repeatable)' },
      recipient: { type: 'string', help: 'seal only if the lattice secrets key is this public key (X...); printed after sealing', placeholder: 'key' },
      'secret-host': { type: 'list', help: 'a destination (host, host:port, *.domain) the secrets may be sent to; required for http-client (repeatable)' },
    },
    async run({ client, args, flags }) {
      const [actor, provider, ...pairs] = args as [string, string, ...string[]];
      const { parsePairs } = await import('./command.ts');
      const { openLinks } = await import('../links/index.ts');
      const { sealLinkSecrets } = await import('./secret-flags.ts');
      const sealing = await sealLinkSecrets(client, actor, provider, flags.secret, flags.secretFile, flags.secretHost, flags.recipient);
      const store = await openLinks(client.nc, client.subjects);
      // A put changes what it names: the link's other secrets are kept (a put of config alone
      // must not silently drop a password), unless removed with --drop-secret.
      const { ProviderKinds, providerKind } = await import('../links/index.ts');
      const kept = { ...(await store.get(actor, ProviderKinds[providerKind(provider)].interface))?.secrets };
      for (const name of flags.dropSecret) {
        if (!Object.hasOwn(kept, name)) throw new TrellisError('TRELLIS_NOT_FOUND', `the ${actor} → ${provider} link has no secret ${name}`);
        delete kept[name];
      }
      const secrets = { ...kept, ...sealing?.secrets };
      const link = await store.put(actor, provider, parsePairs(pairs, 'config'), Object.keys(secrets).length > 0 ? secrets : undefined);
      if (sealing) process.stderr.write(`sealed to lattice secrets key ${sealing.recipient}\n`);
      const { maskSecrets } = await import('../secrets/index.ts');
      const shown = { ...link, ...(link.secrets ? { secrets: maskSecrets(link.secrets) } : {}) };
      const sealed = Object.keys(link.secrets ?? {}).map((k) => `${k}=***`);
      return { data: shown, text: `linked ${actor} → ${link.provider} (${link.interface}) ${[...pairs, ...sealed].join(' ')}`.trim() };
    },
  }),
  command({
    words: ['link', 'get'],
    args: ['actor?'],
    summary: 'list links (of one actor, or all)',
    lattice: true,
    async run({ client, args }) {
      const { openLinks } = await import('../links/index.ts');
      const { maskSecrets } = await import('../secrets/index.ts');
      // Secrets never leave sealed, and not even sealed here: `***` is all anyone reading links sees.
      const links = (await (await openLinks(client.nc, client.subjects)).list(args[0])).map((l) => (l.secrets ? { ...l, secrets: maskSecrets(l.secrets)! } : l));
      const text = links.length === 0 ? 'no links' : table(['ACTOR', 'INTERFACE', 'PROVIDER', 'CONFIG'], links.map((l) => [l.actor, l.interface, l.provider, Object.entries({ ...l.config, ...l.secrets }).map(([k, v]) => `${k}=${v}`).join(',')]));
      return { data: links, text };
    },
  }),
  command({
    words: ['link', 'del'],
    args: ['actor', 'provider'],
    summary: 'remove a link',
    lattice: true,
    async run({ client, args }) {
      const [actor, provider] = args as [string, string];
      const { openLinks } = await import('../links/index.ts');
      await (await openLinks(client.nc, client.subjects)).delete(actor, provider);
      return { data: { actor, provider, removed: true }, text: `unlinked ${actor} from ${provider}` };
    },
  }),
  command({
    words: ['http', 'route', 'add'],
    args: ['prefix', 'actor'],
    summary: 'route HTTP requests under a path prefix (and optionally an HTTP Host) to an actor',
    lattice: true,
    flags: { hostname: hostnameFlag },
    async run({ client, args, flags }) {
      const [prefix, actor] = args as [string, string];
      const route = await (await openHttpRouteStore(client)).add(prefix, actor, flags.hostname);
      return { data: route, text: `route ${route.host ?? '*'}${route.prefix} → ${route.actor}` };
    },
  }),
  command({
    words: ['http', 'route', 'list'],
    summary: 'list HTTP routes',
    lattice: true,
    async run({ client }) {
      const routes = await (await openHttpRouteStore(client)).list();
      const text = routes.length === 0 ? 'no routes (add one with `trellis http route add <prefix> <actor>`)' : table(['HOST', 'PREFIX', 'ACTOR'], routes.map((r) => [r.host ?? '*', r.prefix, r.actor]));
      return { data: routes, text };
    },
  }),
  command({
    words: ['http', 'route', 'del'],
    args: ['prefix'],
    summary: 'remove an HTTP route',
    lattice: true,
    flags: { hostname: { ...hostnameFlag, help: 'the HTTP Host the route was added for' } },
    async run({ client, args, flags }) {
      const prefix = args[0]!;
      await (await openHttpRouteStore(client)).delete(prefix, flags.hostname);
      return { data: { prefix, host: flags.hostname ?? null, removed: true }, text: `route ${prefix} removed` };
    },
  }),
];
