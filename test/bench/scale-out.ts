/**
 * Scale-out on one box (issue 12): BENCH_HOSTS host processes (default 50) in one lattice, each
 * with BENCH_ACTORS (default 20) distinct small C actors, one worker each. Reports `get hosts`
 * time, heartbeat delivery delay (event time to receipt, ms clocks of one box), control
 * round trips to every host, every version answering, connections and total RSS.
 * `node --import tsx test/bench/scale-out.ts`, or `npm run bench -- scale-out`.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connectControl } from '../../lattice/control/index.ts';
import { createRpcClient } from '../../lattice/rpc/index.ts';
import { bytesRequest, decodeEvent } from '../../lattice/wire/index.ts';
import { startNats, uniqueLattice, waitFor } from '../harness/index.ts';
import { rssBytes, startScaleOut } from '../harness/scale-out.ts';
import { envNumber, table } from './lib.ts';

function pct(samples: number[], q: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
}
const round = (n: number) => Math.round(n * 10) / 10;

export async function run(): Promise<Record<string, unknown>> {
  const hostCount = envNumber('BENCH_HOSTS', 50);
  const actorsPerHost = envNumber('BENCH_ACTORS', 20);
  execFileSync(process.execPath, [fileURLToPath(new URL('../../host/cli/build-dist.mjs', import.meta.url))], { stdio: 'inherit' });
  await using nats = await startNats();
  const lattice = uniqueLattice('scaleout');
  await using client = await connectControl({ nats: nats.url, lattice, timeoutMs: 120_000 });
  let t = performance.now();
  await using so = await startScaleOut(client, nats.url, lattice, hostCount, actorsPerHost, 5);
  const startS = (performance.now() - t) / 1000;
  const rows: Record<string, string | number>[] = [];
  rows.push({ row: `${hostCount} hosts x ${actorsPerHost} actors started (hosts, then actors)`, value: `${round(startS)} s`, target: 'report' });

  const getHosts: number[] = [];
  let seen = 0;
  for (let i = 0; i < 5; i++) {
    t = performance.now();
    seen = (await client.pingHosts()).length;
    getHosts.push(performance.now() - t);
  }
  rows.push({ row: `get hosts (${seen} of ${hostCount} answered), p50 / max of 5`, value: `${Math.round(pct(getHosts, 0.5))} / ${Math.round(Math.max(...getHosts))} ms`, target: '< 1000 ms' });

  const control: number[] = [];
  for (let r = 0; r < 4; r++) {
    for (const h of so.hosts) {
      t = performance.now();
      await client.getInventory(h.id);
      control.push(performance.now() - t);
    }
  }
  rows.push({ row: `control round trip (inventory), p50 / p99 of ${control.length}`, value: `${round(pct(control, 0.5))} / ${round(pct(control, 0.99))} ms`, target: 'p99 < 100 ms' });

  const delays: number[] = [];
  const sub = client.nc.subscribe(client.subjects.event('host_heartbeat'), { callback: (_e, m) => delays.push(Date.now() - Date.parse(decodeEvent(m.data).time)) });
  await new Promise((r) => setTimeout(r, 10_000));
  sub.unsubscribe();
  rows.push({ row: `heartbeat delivery (1 s period), p50 / p99 of ${delays.length}`, value: `${pct(delays, 0.5)} / ${pct(delays, 0.99)} ms`, target: 'p99 < 100 ms' });

  const rpc = await createRpcClient(client.nc, { lattice, caller: 'bench' });
  const all = so.actors.flat();
  await waitFor(() => all.every((a) => rpc.view.liveVersions(a).length > 0), { timeoutMs: 60_000, what: 'every version live' });
  t = performance.now();
  let ok = 0;
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < all.length) {
      const a = all[next++]!;
      if (new TextDecoder().decode((await rpc.invoke(a, bytesRequest(a))).response.body) === a) ok++;
    }
  }));
  rows.push({ row: `every version invoked once (${all.length}, 32 in flight)`, value: `${ok} ok in ${Math.round(performance.now() - t)} ms`, target: 'all' });
  await rpc.close();

  const connz = (await (await fetch(`${nats.monitorUrl}/connz?limit=5000`)).json()) as { connections: { name?: string }[] };
  const hostConnections = connz.connections.filter((c) => c.name?.startsWith('trellis-host-')).length;
  const hostRss = so.hosts.reduce((s, h) => s + rssBytes(h.process.pid!), 0);
  const natsRss = rssBytes(nats.process.pid!);
  rows.push({ row: 'NATS connections of all hosts', value: `${hostConnections} (${round(hostConnections / hostCount)} per host)`, target: '<= workers + 1 = 2' });
  rows.push({ row: 'total RSS: hosts / nats-server', value: `${Math.round(hostRss / 2 ** 20)} MB (${Math.round(hostRss / hostCount / 2 ** 20)} per host) / ${Math.round(natsRss / 2 ** 20)} MB`, target: 'report' });
  console.log(table(rows));
  return {
    hosts: hostCount,
    actorsPerHost,
    startSeconds: startS,
    getHostsMs: getHosts,
    controlP99Ms: pct(control, 0.99),
    heartbeatP99Ms: pct(delays, 0.99),
    invoked: ok,
    hostConnections,
    hostRssMb: hostRss / 2 ** 20,
    natsRssMb: natsRss / 2 ** 20,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run();
  process.exit(0);
}
