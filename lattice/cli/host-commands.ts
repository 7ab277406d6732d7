/** Commands that run long-lived processes: `host` (join a lattice) and `up` (embedded lattice). */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { nkeys } from 'nats';
import { startHost, stateDir, type Host, type HostOptions } from '../../host/index.ts';
import { TrellisError } from '../errors/index.ts';
import type { LogLevel } from '../log/index.ts';
import { startNats, type NatsServer } from '../nats-server/index.ts';
import { intFlag, parsePairs, positionals, type Command, type Values } from './command.ts';
import { table } from './format.ts';

const hostOptions = {
  nats: { type: 'string' },
  lattice: { type: 'string' },
  label: { type: 'string', multiple: true, short: 'l' },
  name: { type: 'string' },
  seed: { type: 'string' },
  'heartbeat-ms': { type: 'string' },
  'http-port': { type: 'string' },
  'http-host': { type: 'string' },
  'log-level': { type: 'string' },
  gateway: { type: 'string' },
} as const;

const hostHelp: Record<string, string> = {
  nats: 'NATS URLs, comma separated (env TRELLIS_NATS_URL; default nats://127.0.0.1:4222)',
  lattice: 'lattice name (env TRELLIS_LATTICE; default "default")',
  label: 'a label key=value; repeat for more (e.g. --label cloud=aws)',
  name: 'friendly name (default: hostname plus an id suffix)',
  seed: 'nkey server seed to keep the identity across restarts (env TRELLIS_HOST_SEED)',
  'heartbeat-ms': 'heartbeat period in ms, 100..5000 (default 5000)',
  'http-port': 'serve /metrics, /health, /ready on this port (0: any free port)',
  'http-host': 'address for the HTTP port (default 127.0.0.1)',
  'log-level': 'fatal|error|warn|info|debug|trace|silent (env TRELLIS_LOG_LEVEL; default info)',
  gateway: 'also run the HTTP gateway on host:port (e.g. :8080); local instances answer without NATS',
};

/** Turn host flags into HostOptions (validation happens in compileHostOptions). */
function hostOptionsFrom(values: Values): HostOptions {
  return {
    nats: values.nats as string | undefined,
    lattice: values.lattice as string | undefined,
    labels: parsePairs((values.label as string[] | undefined) ?? [], '--label'),
    name: values.name as string | undefined,
    seed: values.seed as string | undefined,
    heartbeatMs: intFlag(values['heartbeat-ms'], 'heartbeat-ms'),
    httpPort: intFlag(values['http-port'], 'http-port'),
    httpHost: values['http-host'] as string | undefined,
    logLevel: values['log-level'] as LogLevel | undefined,
    gateway: values.gateway as string | undefined,
  };
}

/** Stop `host` (and whatever else) on SIGINT/SIGTERM; resolves when the host has stopped. */
async function runUntilStopped(host: Host, cleanup: () => Promise<void> = async () => {}): Promise<number> {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    // A second Ctrl-C means "now": skip the graceful path.
    if (signals > 1) process.exit(130);
    host.logger.info({ signal }, 'signal received, stopping');
    void host.stop(`signal ${signal}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await host.stopped;
  await host.stop();
  await cleanup();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return 0;
}

export const commands: Command[] = [
  {
    words: ['host'],
    usage: 'host [--nats url] [--lattice name] [--label k=v]...',
    summary: 'run a host that joins the lattice and takes actors and providers',
    details: 'Logs are JSON lines on stdout. Stops gracefully on SIGINT/SIGTERM or `trellis stop host`.',
    options: hostOptions,
    optionHelp: hostHelp,
    async run(args, values) {
      positionals(args, []);
      const host = await startHost(hostOptionsFrom(values));
      return runUntilStopped(host);
    },
  },
  {
    words: ['up'],
    usage: 'up [--port 4222] [--gateway 127.0.0.1:8080] [--bare]',
    summary: 'run an embedded lattice: nats-server with JetStream, one host with the HTTP gateway, and the demo actors',
    details: 'Data lives under $XDG_STATE_HOME/trellis (default ~/.local/state/trellis). Ctrl-C stops everything.\nThe demo deploys `hello` and a key-value `counter` behind the gateway; --bare skips it.',
    options: { ...hostOptions, port: { type: 'string' }, 'data-dir': { type: 'string' }, bare: { type: 'boolean' } },
    optionHelp: { ...hostHelp, port: 'NATS client port (default 4222)', 'data-dir': 'state directory (default ~/.local/state/trellis)', gateway: 'HTTP gateway address (default 127.0.0.1:8080)', bare: 'no demo actors' },
    async run(args, values) {
      positionals(args, []);
      if (values.nats) throw new TrellisError('TRELLIS_BAD_OPTION', '--nats does not apply to `up`, which runs its own nats-server; use `trellis host --nats ...` to join an existing one');
      const dataDir = (values['data-dir'] as string | undefined) ?? stateDir();
      const port = intFlag(values.port, 'port') ?? 4222;
      await mkdir(`${dataDir}/nats`, { recursive: true });
      console.log(`starting nats-server on 127.0.0.1:${port} (JetStream data in ${dataDir}/nats)...`);
      let nats: NatsServer;
      try {
        nats = await startNats({ name: 'trellis-up', port, storeDir: `${dataDir}/nats`, jetstream: true });
      } catch (err) {
        if (err instanceof TrellisError) throw err;
        throw new TrellisError('TRELLIS_NATS_UNAVAILABLE', `could not start nats-server on port ${port} (is it in use? try --port): ${(err as Error).message.split('\n')[0]}`, { cause: err });
      }
      let host: Host;
      try {
        host = await startHost({
          ...hostOptionsFrom(values),
          nats: nats.url,
          seed: (values.seed as string | undefined) ?? (await persistentSeed(dataDir)),
          cacheDir: `${dataDir}/cache`,
          gateway: (values.gateway as string | undefined) ?? '127.0.0.1:8080',
          logLevel: (values['log-level'] as LogLevel | undefined) ?? 'warn',
        });
      } catch (err) {
        await nats.stop();
        throw err;
      }
      const lattice = host.lattice === 'default' ? '' : ` --lattice ${host.lattice}`;
      const natsFlag = port === 4222 ? '' : ` --nats ${nats.url}`;
      const gatewayUrl = host.gateway!.url;
      if (!values.bare) {
        try {
          await deployDemo(nats.url, host, (line) => console.log(`  ${line}`));
        } catch (err) {
          console.error(`demo deployment failed: ${(err as Error).message}`);
        }
      }
      console.log('');
      console.log(table(['WHAT', 'WHERE'], [
        ['nats-server', `${nats.url} (monitoring ${nats.monitorUrl})`],
        ['lattice', host.lattice],
        ['host', `${host.name} ${host.id}`],
        ['gateway', gatewayUrl],
        ['data', dataDir],
      ]));
      console.log('');
      console.log('Try, from another terminal:');
      if (!values.bare) {
        console.log(`  curl '${gatewayUrl}/hello?name=trellis'`);
        console.log(`  curl -X POST ${gatewayUrl}/counter     # increments, stored in JetStream KV`);
        console.log(`  curl ${gatewayUrl}/counter`);
      }
      console.log(`  npx trellis get hosts${natsFlag}${lattice}`);
      console.log(`  npx trellis get actors${natsFlag}${lattice}`);
      console.log(`  npx trellis invoke hello --data world${natsFlag}${lattice}`);
      console.log('');
      console.log('Ctrl-C stops the host, the gateway and nats-server.');
      const code = await runUntilStopped(host, () => nats.stop());
      console.log('stopped.');
      return code;
    },
  },
];

/** The embedded host keeps one identity across `up` runs: its seed lives in the data dir. */
async function persistentSeed(dataDir: string): Promise<string> {
  const file = `${dataDir}/host.seed`;
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const seed = new TextDecoder().decode(nkeys.createServer().getSeed());
    await writeFile(file, seed, { mode: 0o600 });
    return seed;
  }
}

/** Deploy the demo: hello and a key-value counter behind the gateway. Idempotent. */
async function deployDemo(natsUrl: string, host: Host, log: (line: string) => void): Promise<void> {
  const { buildExampleActors } = await import('../../actors/index.ts');
  const { connectControl } = await import('../control/index.ts');
  const { openArtifacts } = await import('../state/index.ts');
  const { openLinks } = await import('../links/index.ts');
  const { openHttpRoutes } = await import('../http-routes/index.ts');
  log('building the demo actors (the first run takes a minute; later runs use the cache)...');
  const built = await buildExampleActors({ only: ['hello', 'counter'], log });
  await using client = await connectControl({ nats: natsUrl, lattice: host.lattice, timeoutMs: 120_000 });
  const artifacts = await openArtifacts(client.nc, client.subjects);
  for (const [actor, file] of Object.entries(built)) {
    const { digest } = await artifacts.push(new Uint8Array(await readFile(file)));
    log(`starting ${actor}@1.0.0 (${digest.slice(0, 19)}...)`);
    await client.request('actorStart', host.id, { actor, version: '1.0.0', digest, count: 2 });
  }
  await client.request('providerStart', host.id, { provider: 'keyvalue-nats' });
  await (await openLinks(client.nc, client.subjects)).put('counter', 'keyvalue-nats', { bucket: 'counters' });
  const routes = await openHttpRoutes(client.nc, client.subjects);
  await routes.add('/hello', 'hello');
  await routes.add('/counter', 'counter');
  log('linked counter → keyvalue-nats (bucket counters); routes /hello and /counter');
}
