/** `trellis up`: an embedded single-node lattice — nats-server with JetStream, one host with the gateway, the demo. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { command, table } from '../../lattice/cli/index.ts';
import { packagePath } from '../../lattice/package-root/index.ts';
import { TrellisError } from '../../lattice/errors/index.ts';
import type { NatsServer } from '../../lattice/nats-server/index.ts';
import type { Host } from '../index.ts';
import { controllerAuthFlags, natsAuthFlags, providerAuthFlags } from '../../lattice/cli/index.ts';
import { NatsAuthEnv } from '../../lattice/options/index.ts';
import { hostFlags, runHostUntilStopped } from './participants.ts';

type CredentialFlag = keyof typeof natsAuthFlags | keyof typeof controllerAuthFlags | keyof typeof providerAuthFlags;
/** The host's flags but its credentials: `up` runs its own server and makes the credentials itself (--secure). */
const upHostFlags = Object.fromEntries(
  Object.entries(hostFlags).filter(([name]) => !(name in natsAuthFlags || name in controllerAuthFlags || name in providerAuthFlags)),
) as Omit<typeof hostFlags, CredentialFlag>;

/** The environment without TRELLIS_NATS_… credentials: the embedded server is not the one they are for. */
function withoutCredentials(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of Object.values(NatsAuthEnv)) delete out[name];
  return out;
}

export const commands = [
  command({
    words: ['up'],
    summary: 'run an embedded lattice: nats-server with JetStream, one host with the HTTP gateway, and the demo actors',
    details: 'Data lives under $XDG_STATE_HOME/trellis (default ~/.local/state/trellis). Ctrl-C stops everything.\nThe demo app (actors/demo/app.yaml: `hello` and a key-value `counter` behind the gateway) is applied\nfrom its manifest as `trellis apply` does; --bare skips it.',
    participant: true,
    flags: {
      ...upHostFlags,
      secure: { type: 'boolean', help: 'require credentials: an nkey per role (host, controller, provider, gateway, operator) in <data-dir>/creds, each with only its role\'s permissions' },
      gateway: { type: 'string', help: 'HTTP gateway address', default: '127.0.0.1:8080', placeholder: 'host:port' },
      'log-level': { ...hostFlags['log-level'], default: 'warn' },
      port: { type: 'int', help: 'NATS client port (0: any free port, printed at start)', default: 4222, min: 0, max: 65535 },
      'data-dir': { type: 'string', help: 'state directory (default ~/.local/state/trellis)', placeholder: 'dir' },
      bare: { type: 'boolean', help: 'no demo actors' },
      dashboard: { type: 'string', help: 'serve the live lattice dashboard on host:port ("off": none)', default: '127.0.0.1:8090', placeholder: 'host:port' },
    },
    async run({ flags }) {
      if (flags.nats) throw new TrellisError('TRELLIS_BAD_OPTION', '--nats does not apply to `up`, which runs its own nats-server; use `trellis host --nats ...` to join an existing one');
      const { startHost, stateDir } = await import('../index.ts');
      // Checked before anything starts: a typo must not leave a lattice half up.
      if (flags.dashboard !== 'off') (await import('../../lattice/http/index.ts')).parseListen(flags.dashboard, '--dashboard');
      const { startNats } = await import('../../lattice/nats-server/index.ts');
      const dataDir = flags.dataDir ?? stateDir();
      const port = flags.port;
      await mkdir(`${dataDir}/nats`, { recursive: true });
      const seed = flags.seed ?? (await persistentSeed(dataDir));
      const env = withoutCredentials(process.env);
      let secure: import('./up-secure.ts').SecureUp | undefined;
      if (flags.secure) {
        const { prepareSecureUp } = await import('./up-secure.ts');
        const { latticeOption } = await import('../../lattice/options/index.ts');
        const { nkeys } = await import('nats');
        secure = await prepareSecureUp(dataDir, latticeOption(flags.lattice), nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey());
      }
      console.log(`starting nats-server on 127.0.0.1:${port || 'a free port'}${secure ? ' requiring credentials' : ''} (JetStream data in ${dataDir}/nats)...`);
      let nats: NatsServer;
      try {
        nats = await startNats({ name: 'trellis-up', port: port === 0 ? undefined : port, storeDir: `${dataDir}/nats`, jetstream: true, extraConfig: secure?.serverConfig });
      } catch (err) {
        if (err instanceof TrellisError) throw err;
        throw new TrellisError('TRELLIS_NATS_UNAVAILABLE', `could not start nats-server on port ${port} (is it in use? try --port): ${(err as Error).message.split('\n')[0]}`, { cause: err });
      }
      let host: Host;
      try {
        host = await startHost({
          nats: nats.url,
          lattice: flags.lattice,
          labels: flags.label,
          name: flags.name,
          seed,
          heartbeatMs: flags.heartbeatMs,
          beatMs: flags.beatMs,
          controller: !flags.noController,
          httpPort: flags.httpPort,
          httpHost: flags.httpHost,
          cacheDir: `${dataDir}/cache`,
          gateway: flags.gateway,
          logLevel: flags.logLevel,
          // Accepted through hostFlags: a security flag accepted must never be ignored.
          ...(flags.allowedIssuer.length > 0 ? { allowedIssuers: flags.allowedIssuer } : {}),
          ...(flags.requireSigned ? { requireSigned: true } : {}),
          secretsKeyFile: flags.secretsKey,
          otlpEndpoint: flags.otlpEndpoint,
          ...(secure ? { auth: secure.auth.host, controllerAuth: secure.auth.controller, providerAuth: secure.auth.provider } : {}),
        }, env);
      } catch (err) {
        await nats.stop();
        throw err;
      }
      const lattice = host.lattice === 'default' ? '' : ` --lattice ${host.lattice}`;
      const natsFlag = nats.port === 4222 ? '' : ` --nats ${nats.url}`;
      const gatewayUrl = host.gateway!.url;
      // Started before the demo is deployed, so the page shows it being placed.
      const dashboard = await startUpDashboard(flags.dashboard, nats.url, host.lattice, secure?.auth.operator);
      if (!flags.bare) {
        try {
          await deployDemo(nats.url, host, (line) => console.log(`  ${line}`), secure?.auth.operator ?? {}, env);
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
        ...(dashboard ? [['dashboard', dashboard.url]] : []),
        ['data', dataDir],
        ...(secure ? [['credentials', `${dataDir}/creds/<role>.nk (host, controller, provider, gateway, operator)`]] : []),
      ]));
      console.log('');
      if (dashboard) console.log(`Watch the lattice live: open ${dashboard.url} in a browser.`);
      console.log('Try, from another terminal:');
      if (secure) console.log(`  export TRELLIS_NATS_NKEY=${secure.files.operator}   # the operator's key: the server admits nobody without one`);
      if (!flags.bare) {
        console.log(`  curl '${gatewayUrl}/hello?name=trellis'`);
        console.log(`  curl -X POST ${gatewayUrl}/counter     # increments, stored in JetStream KV`);
        console.log(`  curl ${gatewayUrl}/counter`);
      }
      if (!flags.bare) console.log(`  npx trellis app status demo${natsFlag}${lattice}`);
      console.log(`  npx trellis get hosts${natsFlag}${lattice}`);
      console.log(`  npx trellis get actors${natsFlag}${lattice}`);
      console.log(`  npx trellis invoke hello --data world${natsFlag}${lattice}`);
      console.log('');
      console.log('Ctrl-C stops the host, the gateway and nats-server.');
      const code = await runHostUntilStopped(host, async () => {
        await dashboard?.close();
        await nats.stop();
      });
      console.log('stopped.');
      return code;
    },
  }),
];

/**
 * The dashboard of `up` (lattice/dashboard), unless `--dashboard off`. A port in use costs the
 * page, not the lattice: `up` says so and runs on.
 */
async function startUpDashboard(listen: string, natsUrl: string, lattice: string, auth: import('../../lattice/options/index.ts').NatsAuthOptions = {}): Promise<import('../../lattice/dashboard/index.ts').Dashboard | undefined> {
  if (listen === 'off') return undefined;
  const { startDashboard } = await import('../../lattice/dashboard/index.ts');
  const { compileNatsConnect } = await import('../../lattice/options/index.ts');
  try {
    // With --secure it reads the lattice with the operator's key.
    const dashboard = await startDashboard({ connect: compileNatsConnect({ servers: [natsUrl], lattice, role: 'operator', auth }), lattice, listen });
    console.log(`dashboard on ${dashboard.url}`);
    return dashboard;
  } catch (err) {
    console.error(`dashboard not started on ${listen} (${(err as Error).message}); try --dashboard 127.0.0.1:0`);
    return undefined;
  }
}

/** The embedded host keeps one identity across `up` runs: its seed lives in the data dir. */
async function persistentSeed(dataDir: string): Promise<string> {
  const file = `${dataDir}/host.seed`;
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const { nkeys } = await import('nats');
    const seed = new TextDecoder().decode(nkeys.createServer().getSeed());
    await writeFile(file, seed, { mode: 0o600 });
    return seed;
  }
}

/** The demo's manifest, kept in the repo: what `up` applies (found from the package root, since the bundle's chunks live elsewhere than this file). */
export const DEMO_MANIFEST = packagePath('actors', 'demo', 'app.yaml');

/**
 * Deploy the demo from its manifest: build the example actors it names (into the repo's
 * .cache/actors, where its sources point), then apply it as `trellis apply -f` does. Idempotent:
 * a second `up` finds it unchanged.
 */
async function deployDemo(natsUrl: string, host: Host, log: (line: string) => void, auth: import('../../lattice/options/index.ts').NatsAuthOptions, env: NodeJS.ProcessEnv): Promise<void> {
  const { buildExampleActors } = await import('../../actors/index.ts');
  const { connectControl } = await import('../../lattice/control/index.ts');
  const { applyManifest, changeLine, loadManifest, openApps, waitDeployed } = await import('../../lattice/apps/index.ts');
  log('building the demo actors (the first run takes a minute; later runs use the cache)...');
  await buildExampleActors({ only: ['hello', 'counter'], log });
  await using client = await connectControl({ nats: natsUrl, lattice: host.lattice, auth }, env);
  const manifest = await loadManifest(DEMO_MANIFEST);
  const result = await applyManifest(client, manifest, { progress: log });
  log(result.outcome === 'unchanged' ? `app ${result.app} unchanged (revision ${result.revision}) from ${DEMO_MANIFEST}` : `app ${result.app}: revision ${result.revision} from ${DEMO_MANIFEST}`);
  for (const change of result.changes) log(`  ${changeLine(change)}`);
  if (!host.controller) {
    log(`app ${result.app} is stored; this host runs no controller (--no-controller): run \`trellis controller\` to place it`);
    return;
  }
  // The host runs a candidate of the lattice's controller: it places the app like any other,
  // owned by its revision. Waiting here means the curl lines printed next already work.
  const { deployed, status } = await waitDeployed(await openApps(client.nc, client.subjects), result.app, 120_000);
  log(deployed ? `app ${result.app} deployed` : `app ${result.app} not deployed yet (${status?.phase ?? 'no status'}${status?.reasons.length ? `: ${status.reasons.join('; ')}` : ''}); see \`trellis app status ${result.app}\``);
}
