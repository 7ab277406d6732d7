/**
 * Model of a lattice of MODEL_HOSTS (default 1,000) hosts x MODEL_ACTORS (200) actors, from one
 * real host measured here: it runs MODEL_ACTORS actors (one worker), and the bench reads the
 * sizes of its heartbeat and beat off the wire and its subscriptions from the server, then
 * multiplies out. What it cannot measure is stated as an assumption (the subscriber counts).
 * `node --import tsx test/bench/scale-model.ts`, or `npm run bench -- scale-model`.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connectControl } from '../../lattice/control/index.ts';
import { startNats, uniqueLattice } from '../harness/index.ts';
import { startScaleOut } from '../harness/scale-out.ts';
import { envNumber, table } from './lib.ts';

const fmt = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : `${Math.round(n)}`);

export async function run(): Promise<Record<string, unknown>> {
  const hosts = envNumber('MODEL_HOSTS', 1000);
  const actors = envNumber('MODEL_ACTORS', 200);
  const workers = envNumber('MODEL_WORKERS', 2);
  const heartbeatMs = 5000;
  const beatMs = 1000;
  execFileSync(process.execPath, [fileURLToPath(new URL('../../host/cli/build-dist.mjs', import.meta.url))], { stdio: 'inherit' });
  await using nats = await startNats();
  const lattice = uniqueLattice('model');
  await using client = await connectControl({ nats: nats.url, lattice, timeoutMs: 120_000 });
  await using so = await startScaleOut(client, nats.url, lattice, 1, actors, 1, heartbeatMs);
  const host = so.hosts[0]!;
  // Sizes off the wire: one full inventory and a few beats.
  const sizes = { heartbeat: 0, beat: 0 };
  const subs = [
    client.nc.subscribe(client.subjects.event('host_heartbeat'), { callback: (_e, m) => (sizes.heartbeat = Math.max(sizes.heartbeat, m.data.length)) }),
    client.nc.subscribe(client.subjects.beat(host.id), { callback: (_e, m) => (sizes.beat = Math.max(sizes.beat, m.data.length)) }),
  ];
  await new Promise((r) => setTimeout(r, heartbeatMs + 500));
  for (const s of subs) s.unsubscribe();
  const connz = (await (await fetch(`${nats.monitorUrl}/connz?subs=1&limit=100`)).json()) as { connections: { name?: string; subscriptions_list?: string[] }[] };
  const mine = connz.connections.filter((c) => c.name?.startsWith(`trellis-host-${host.name}`));
  const hostSubs = mine.filter((c) => !c.name!.includes('/worker-')).reduce((s, c) => s + (c.subscriptions_list?.length ?? 0), 0);
  const workerSubs = mine.filter((c) => c.name!.includes('/worker-')).reduce((s, c) => s + (c.subscriptions_list?.length ?? 0), 0);

  const published = hosts * (sizes.heartbeat / (heartbeatMs / 1000) + sizes.beat / (beatMs / 1000));
  // Who receives them: every controller candidate's host view and every RPC view (gateways, and
  // hosts once they call actors) subscribe to all events and beats. Two bounds.
  const fanouts = [10, hosts];
  const rows: Record<string, string | number>[] = [
    { quantity: `one host's full inventory (heartbeat event, ${actors} actors)`, value: `${fmt(sizes.heartbeat)} B`, note: 'measured' },
    { quantity: 'one liveness beat', value: `${sizes.beat} B`, note: 'measured' },
    { quantity: `heartbeat + beat bytes published per second (${hosts} hosts, ${heartbeatMs / 1000} s / ${beatMs / 1000} s)`, value: `${fmt(published)} B/s`, note: 'model' },
    ...fanouts.map((f) => ({ quantity: `bytes the server delivers per second, ${f} subscribers of all events`, value: `${fmt(published * f)} B/s`, note: f === hosts ? 'model: every host an RPC view' : 'model: gateways + controller' })),
    { quantity: 'subscriptions of one host: own connection / worker connection(s)', value: `${hostSubs} / ${workerSubs} (1 worker)`, note: 'measured' },
    { quantity: `subscriptions per server (${hosts} hosts, ${workers} workers each)`, value: fmt(hosts * (hostSubs + workers * workerSubs)), note: 'model' },
    { quantity: 'connections per server', value: fmt(hosts * (workers + 1)), note: `model: workers + 1 per host` },
  ];
  console.log(table(rows));
  console.log('A 1,000-host lattice wants inventory deltas: full inventories from every host to every view are the bulk (see the README).');
  return { hosts, actors, workers, heartbeatBytes: sizes.heartbeat, beatBytes: sizes.beat, publishedBytesPerSecond: published, hostSubs, workerSubs };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run();
  process.exit(0);
}
