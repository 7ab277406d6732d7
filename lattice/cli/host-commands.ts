/** Commands that run long-lived processes: `host` (join a lattice) and `up` (embedded lattice). */
import { mkdir } from 'node:fs/promises';
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
    usage: 'up [--port 4222] [--lattice name]',
    summary: 'run an embedded single-node lattice: nats-server with JetStream plus one host',
    details: 'Data lives under $XDG_STATE_HOME/trellis (default ~/.local/state/trellis). Ctrl-C stops everything.',
    options: { ...hostOptions, port: { type: 'string' }, 'data-dir': { type: 'string' } },
    optionHelp: { ...hostHelp, port: 'NATS client port (default 4222)', 'data-dir': 'state directory (default ~/.local/state/trellis)' },
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
        host = await startHost({ ...hostOptionsFrom(values), nats: nats.url, cacheDir: `${dataDir}/cache`, logLevel: (values['log-level'] as LogLevel | undefined) ?? 'warn' });
      } catch (err) {
        await nats.stop();
        throw err;
      }
      const latticeFlag = host.lattice === 'default' ? '' : ` --lattice ${host.lattice}`;
      const natsFlag = port === 4222 ? '' : ` --nats ${nats.url}`;
      console.log('');
      console.log(table(['WHAT', 'WHERE'], [
        ['nats-server', `${nats.url} (monitoring ${nats.monitorUrl})`],
        ['lattice', host.lattice],
        ['host', `${host.name} ${host.id}`],
        ['data', dataDir],
      ]));
      console.log('');
      console.log('Try, from another terminal:');
      console.log(`  npx trellis get hosts${natsFlag}${latticeFlag}`);
      console.log(`  npx trellis get inventory ${host.name}${natsFlag}${latticeFlag}`);
      console.log('');
      console.log('Ctrl-C stops the host and nats-server.');
      const code = await runUntilStopped(host, () => nats.stop());
      console.log('stopped.');
      return code;
    },
  },
];
