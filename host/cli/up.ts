/** `trellis up`: an embedded single-node lattice — nats-server with JetStream, one host with the gateway, the demo. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { command, table } from '../../lattice/cli/index.ts';
import type { ControlClient } from '../../lattice/control/index.ts';
import { TrellisError } from '../../lattice/errors/index.ts';
import type { NatsServer } from '../../lattice/nats-server/index.ts';
import type { AppSpec, Owner } from '../../lattice/wire/index.ts';
import type { Host } from '../index.ts';
import { hostFlags, runHostUntilStopped } from './participants.ts';

export const commands = [
  command({
    words: ['up'],
    summary: 'run an embedded lattice: nats-server with JetStream, one host with the HTTP gateway, and the demo actors',
    details: 'Data lives under $XDG_STATE_HOME/trellis (default ~/.local/state/trellis). Ctrl-C stops everything.\nThe demo app (actors/demo/app.yaml: `hello` and a key-value `counter` behind the gateway) is applied\nfrom its manifest as `trellis apply` does; --bare skips it.',
    participant: true,
    flags: {
      ...hostFlags,
      gateway: { type: 'string', help: 'HTTP gateway address', default: '127.0.0.1:8080', placeholder: 'host:port' },
      'log-level': { ...hostFlags['log-level'], default: 'warn' },
      port: { type: 'int', help: 'NATS client port', default: 4222, min: 1, max: 65535 },
      'data-dir': { type: 'string', help: 'state directory (default ~/.local/state/trellis)', placeholder: 'dir' },
      bare: { type: 'boolean', help: 'no demo actors' },
    },
    async run({ flags }) {
      if (flags.nats) throw new TrellisError('TRELLIS_BAD_OPTION', '--nats does not apply to `up`, which runs its own nats-server; use `trellis host --nats ...` to join an existing one');
      const { startHost, stateDir } = await import('../index.ts');
      const { startNats } = await import('../../lattice/nats-server/index.ts');
      const dataDir = flags.dataDir ?? stateDir();
      const port = flags.port;
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
          nats: nats.url,
          lattice: flags.lattice,
          labels: flags.label,
          name: flags.name,
          seed: flags.seed ?? (await persistentSeed(dataDir)),
          heartbeatMs: flags.heartbeatMs,
          beatMs: flags.beatMs,
          controller: !flags.noController,
          httpPort: flags.httpPort,
          httpHost: flags.httpHost,
          cacheDir: `${dataDir}/cache`,
          gateway: flags.gateway,
          logLevel: flags.logLevel,
        });
      } catch (err) {
        await nats.stop();
        throw err;
      }
      const lattice = host.lattice === 'default' ? '' : ` --lattice ${host.lattice}`;
      const natsFlag = port === 4222 ? '' : ` --nats ${nats.url}`;
      const gatewayUrl = host.gateway!.url;
      if (!flags.bare) {
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
      const code = await runHostUntilStopped(host, () => nats.stop());
      console.log('stopped.');
      return code;
    },
  }),
];

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

/** The demo's manifest, kept in the repo: what `up` applies. */
export const DEMO_MANIFEST = fileURLToPath(new URL('../../actors/demo/app.yaml', import.meta.url));

/**
 * Deploy the demo from its manifest: build the example actors it names (into the repo's
 * .cache/actors, where its sources point), then apply it as `trellis apply -f` does. Idempotent:
 * a second `up` finds it unchanged.
 */
async function deployDemo(natsUrl: string, host: Host, log: (line: string) => void): Promise<void> {
  const { buildExampleActors } = await import('../../actors/index.ts');
  const { connectControl } = await import('../../lattice/control/index.ts');
  const { applyManifest, changeLine, loadManifest } = await import('../../lattice/apps/index.ts');
  log('building the demo actors (the first run takes a minute; later runs use the cache)...');
  await buildExampleActors({ only: ['hello', 'counter'], log });
  await using client = await connectControl({ nats: natsUrl, lattice: host.lattice });
  const manifest = await loadManifest(DEMO_MANIFEST);
  const result = await applyManifest(client, manifest, { progress: log });
  log(result.outcome === 'unchanged' ? `app ${result.app} unchanged (revision ${result.revision}) from ${DEMO_MANIFEST}` : `app ${result.app}: revision ${result.revision} from ${DEMO_MANIFEST}`);
  for (const change of result.changes) log(`  ${changeLine(change)}`);
  if (!host.controller) return placeOnHost(client, host, result.spec, { app: result.app, revision: result.revision }, log);
  // The host's controller places it (with its links and routes); wait until it runs.
  const { openApps, waitDeployed } = await import('../../lattice/apps/index.ts');
  const { deployed, status } = await waitDeployed(await openApps(client.nc, client.subjects), result.app, 120_000);
  log(deployed ? `app ${result.app} deployed` : `app ${result.app} is ${status?.phase ?? 'not reported'} after 120 s: ${status?.reasons.join('; ') ?? ''}`);
}

/**
 * Place an applied app on the one embedded host: its providers, its actors (owned by the app
 * revision, as the reconciler places them), their links and routes. Only with `--no-controller`:
 * otherwise the host's controller does it. It asks for exactly what the reconciler would on a
 * one-host lattice (same owner, same counts), so a controller started later changes nothing.
 */
async function placeOnHost(client: ControlClient, host: Host, spec: AppSpec, owner: Owner, log: (line: string) => void): Promise<void> {
  const { openLinks } = await import('../../lattice/links/index.ts');
  const { openHttpRoutes } = await import('../../lattice/http-routes/index.ts');
  for (const provider of spec.providers) await client.startProvider(host.id, { provider: provider.kind, owner: owner.app });
  for (const actor of spec.actors) {
    const count = actor.replicas === 'all' ? 1 : actor.replicas;
    log(`starting ${actor.name}@${actor.version} ×${count} (${actor.digest.slice(0, 19)}...)`);
    await client.startActor(host.id, { actor: actor.name, version: actor.version, digest: actor.digest, count, policy: actor.policy, owner });
  }
  const links = await openLinks(client.nc, client.subjects);
  const routes = await openHttpRoutes(client.nc, client.subjects);
  for (const actor of spec.actors) {
    for (const link of actor.links) await links.put(actor.name, link.provider, link.config);
    for (const route of actor.routes) await routes.add(route.prefix, actor.name, route.host);
  }
}
