/** Provider, link, gateway and HTTP route commands. */
import { TrellisError } from '../errors/index.ts';
import { createLogger, type LogLevel } from '../log/index.ts';
import { openLinks, providerKind } from '../links/index.ts';
import { connectParticipant, resolveServers } from '../control/index.ts';
import { subjects as buildSubjects } from '../subjects/index.ts';
import { connectionHelp, connectionOptions, intFlag, parsePairs, positionals, runUntilStopped, type Command } from './command.ts';
import { clientFrom, resolveHost } from './control-commands.ts';
import { table } from './format.ts';

const longRunning = { nats: { type: 'string' }, lattice: { type: 'string' }, 'log-level': { type: 'string' } } as const;
const longRunningHelp = { nats: connectionHelp.nats!, lattice: connectionHelp.lattice!, 'log-level': 'fatal|error|warn|info|debug|trace|silent (default info)' };

export const commands: Command[] = [
  {
    words: ['provider'],
    usage: 'provider <keyvalue-nats|http-client>',
    summary: 'run a capability provider as a standalone lattice participant',
    options: longRunning,
    optionHelp: longRunningHelp,
    async run(args, values) {
      const [kindName] = positionals(args, ['kind']);
      const kind = providerKind(kindName!);
      const lattice = (values.lattice as string | undefined) ?? process.env.TRELLIS_LATTICE ?? 'default';
      const subjects = buildSubjects(lattice);
      const logger = createLogger({ component: 'provider', level: (values['log-level'] as LogLevel | undefined) ?? 'info' }).child({ provider: kind, lattice });
      const nc = await connectParticipant(resolveServers(values.nats as string | undefined), `trellis-provider-${kind}`);
      const { startProvider } = await import('../../providers/index.ts');
      const service = startProvider(kind, nc, subjects, logger);
      await nc.flush();
      logger.info('provider ready');
      // The supervising host waits for this line whatever the log level.
      if (!logger.isLevelEnabled('info')) console.log(JSON.stringify({ msg: 'provider ready', provider: kind }));
      await runUntilStopped(nc, () => service.close(), (signal) => logger.info({ signal }, 'provider stopping'));
      return 0;
    },
  },
  {
    words: ['start', 'provider'],
    usage: 'start provider <kind> [--host h]',
    summary: 'have a host run a provider (restarted with backoff if it crashes)',
    options: { ...connectionOptions, host: { type: 'string' } },
    optionHelp: { ...connectionHelp, host: 'host id, id prefix or name (default: every host)' },
    async run(args, values) {
      const [kind] = positionals(args, ['kind']);
      providerKind(kind!);
      await using client = await clientFrom(values);
      const hosts = values.host ? [await resolveHost(client, values.host as string)] : (await client.pingHosts()).map((h) => h.id);
      if (hosts.length === 0) throw new TrellisError('TRELLIS_NO_RESPONDERS', 'no hosts in the lattice');
      for (const id of hosts) await client.request('providerStart', id, { provider: kind }, { timeoutMs: 60_000 });
      if (values.json) return console.log(JSON.stringify({ provider: kind, hosts }));
      console.log(`${kind} running on ${hosts.length} host(s)`);
    },
  },
  {
    words: ['stop', 'provider'],
    usage: 'stop provider <kind> [--host h]',
    summary: 'stop a provider on a host (default: every host running it)',
    options: { ...connectionOptions, host: { type: 'string' } },
    optionHelp: { ...connectionHelp, host: 'host id, id prefix or name' },
    async run(args, values) {
      const [kind] = positionals(args, ['kind']);
      await using client = await clientFrom(values);
      const hosts = values.host
        ? [await resolveHost(client, values.host as string)]
        : (await client.pingHosts()).filter((h) => h.providers.some((p) => p.name === kind)).map((h) => h.id);
      if (hosts.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `provider ${kind} runs on no host`);
      for (const id of hosts) await client.request('providerStop', id, { provider: kind });
      console.log(`${kind} stopped on ${hosts.length} host(s)`);
    },
  },
  {
    words: ['link', 'put'],
    usage: 'link put <actor> <provider> [key=value]...',
    summary: 'link an actor to a provider with config, e.g. link put counter keyvalue-nats bucket=counters',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      if (args.length < 2) throw new TrellisError('TRELLIS_BAD_OPTION', 'expected <actor> <provider> [key=value]...');
      const [actor, provider, ...pairs] = args as [string, string, ...string[]];
      await using client = await clientFrom(values);
      const link = await (await openLinks(client.nc, client.subjects)).put(actor, provider, parsePairs(pairs, 'config'));
      if (values.json) return console.log(JSON.stringify(link));
      console.log(`linked ${actor} → ${link.provider} (${link.interface}) ${pairs.join(' ')}`.trim());
    },
  },
  {
    words: ['link', 'get'],
    usage: 'link get [actor]',
    summary: 'list links (of one actor, or all)',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      if (args.length > 1) throw new TrellisError('TRELLIS_BAD_OPTION', 'expected at most one <actor>');
      await using client = await clientFrom(values);
      const links = await (await openLinks(client.nc, client.subjects)).list(args[0]);
      if (values.json) return console.log(JSON.stringify(links, null, 2));
      if (links.length === 0) return console.log('no links');
      console.log(table(['ACTOR', 'INTERFACE', 'PROVIDER', 'CONFIG'], links.map((l) => [l.actor, l.interface, l.provider, Object.entries(l.config).map(([k, v]) => `${k}=${v}`).join(',')])));
    },
  },
  {
    words: ['link', 'del'],
    usage: 'link del <actor> <provider>',
    summary: 'remove a link',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      const [actor, provider] = positionals(args, ['actor', 'provider']);
      await using client = await clientFrom(values);
      await (await openLinks(client.nc, client.subjects)).delete(actor!, provider!);
      console.log(`unlinked ${actor} from ${provider}`);
    },
  },
  {
    words: ['gateway'],
    usage: 'gateway [--listen 0.0.0.0:8080]',
    summary: 'run the HTTP gateway: routes requests to actors through the lattice',
    options: { ...longRunning, listen: { type: 'string' }, 'max-body-bytes': { type: 'string' }, 'deadline-ms': { type: 'string' } },
    optionHelp: { ...longRunningHelp, listen: 'host:port (default 127.0.0.1:8080)', 'max-body-bytes': 'largest request body (default 1 MiB, capped by NATS max_payload)', 'deadline-ms': 'deadline per request (default 10000)' },
    async run(args, values) {
      positionals(args, []);
      const lattice = (values.lattice as string | undefined) ?? process.env.TRELLIS_LATTICE ?? 'default';
      const logger = createLogger({ component: 'gateway', level: (values['log-level'] as LogLevel | undefined) ?? 'info' }).child({ lattice });
      const nc = await connectParticipant(resolveServers(values.nats as string | undefined), 'trellis-gateway');
      const { startGateway } = await import('../../providers/index.ts');
      const gateway = await startGateway({
        nc,
        lattice,
        listen: (values.listen as string | undefined) ?? '127.0.0.1:8080',
        maxBodyBytes: intFlag(values['max-body-bytes'], 'max-body-bytes'),
        deadlineMs: intFlag(values['deadline-ms'], 'deadline-ms'),
        logger,
      });
      logger.info({ url: gateway.url }, 'gateway ready');
      await runUntilStopped(nc, () => gateway.close());
      return 0;
    },
  },
  {
    words: ['http', 'route', 'add'],
    usage: 'http route add <prefix> <actor> [--host example.com]',
    summary: 'route HTTP requests under a path prefix (and optionally a Host) to an actor',
    options: { ...connectionOptions, host: { type: 'string' } },
    optionHelp: { ...connectionHelp, host: 'only requests for this Host header' },
    async run(args, values) {
      const [prefix, actor] = positionals(args, ['prefix', 'actor']);
      await using client = await clientFrom(values);
      const { openHttpRoutes } = await import('../http-routes/index.ts');
      const route = await (await openHttpRoutes(client.nc, client.subjects)).add(prefix!, actor!, values.host as string | undefined);
      if (values.json) return console.log(JSON.stringify(route));
      console.log(`route ${route.host ?? '*'}${route.prefix} → ${route.actor}`);
    },
  },
  {
    words: ['http', 'route', 'list'],
    usage: 'http route list',
    summary: 'list HTTP routes',
    options: connectionOptions,
    optionHelp: connectionHelp,
    async run(args, values) {
      positionals(args, []);
      await using client = await clientFrom(values);
      const { openHttpRoutes } = await import('../http-routes/index.ts');
      const routes = await (await openHttpRoutes(client.nc, client.subjects)).list();
      if (values.json) return console.log(JSON.stringify(routes, null, 2));
      if (routes.length === 0) return console.log('no routes (add one with `trellis http route add <prefix> <actor>`)');
      console.log(table(['HOST', 'PREFIX', 'ACTOR'], routes.map((r) => [r.host ?? '*', r.prefix, r.actor])));
    },
  },
  {
    words: ['http', 'route', 'del'],
    usage: 'http route del <prefix> [--host example.com]',
    summary: 'remove an HTTP route',
    options: { ...connectionOptions, host: { type: 'string' } },
    optionHelp: { ...connectionHelp, host: 'the Host the route was added for' },
    async run(args, values) {
      const [prefix] = positionals(args, ['prefix']);
      await using client = await clientFrom(values);
      const { openHttpRoutes } = await import('../http-routes/index.ts');
      await (await openHttpRoutes(client.nc, client.subjects)).delete(prefix!, values.host as string | undefined);
      console.log(`route ${prefix} removed`);
    },
  },
];
