import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { describe, expect, it } from 'vitest';
import { createControlClient } from '../lattice/control/index.ts';
import { createRpcClient, type RpcClient } from '../lattice/rpc/index.ts';
import { bytesRequest } from '../lattice/wire/index.ts';
import { deployExample, spawnHost, startCluster, startSupercluster, uniqueLattice, waitFor } from './harness/index.ts';

interface Sample {
  at: number;
  ms: number;
  hostId: string;
}

/** Continuous load with `concurrency` callers until stopped; records every answer and failure. */
function continuousLoad(rpc: RpcClient, actor: string, concurrency: number) {
  const samples: Sample[] = [];
  const failures: Error[] = [];
  let running = true;
  const done = Promise.all(Array.from({ length: concurrency }, async () => {
    while (running) {
      const started = performance.now();
      try {
        const r = await rpc.invoke(actor, bytesRequest('ping'), { deadlineMs: 15_000 });
        samples.push({ at: Date.now(), ms: performance.now() - started, hostId: r.hostId });
      } catch (err) {
        failures.push(err as Error);
      }
    }
  }));
  return { samples, failures, stop: async () => { running = false; await done; } };
}

function percentile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
}

describe('failover with real host processes', () => {
  it('failover - SIGKILL of one of 3 hosts in a cluster under continuous load fails no invocation', async () => {
    await using cluster = await startCluster({ size: 3 });
    const lattice = uniqueLattice('fo');
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    const hosts = await Promise.all(cluster.servers.map((s) => spawnHost({ nats: s.url, lattice, env, heartbeatMs: 1000 })));
    try {
      const nc = await connect({ servers: cluster.servers[0]!.url });
      const client = createControlClient(nc, { lattice, timeoutMs: 60_000 });
      await deployExample(client, 'echo-c', hosts, { actor: 'echo', count: 2 });
      await using rpc = await createRpcClient(nc, { lattice, caller: 'failover-test' });
      await waitFor(() => rpc.view.hostsOf('echo', '1.0.0').length === 3, { what: 'three hosts in view' });

      const load = continuousLoad(rpc, 'echo', 16);
      await new Promise((r) => setTimeout(r, 1500));
      // Kill the host that is answering the most, so calls are in flight on it when it dies.
      const byHost = new Map<string, number>();
      for (const s of load.samples) byHost.set(s.hostId, (byHost.get(s.hostId) ?? 0) + 1);
      const victimId = [...byHost].sort((a, b) => b[1] - a[1])[0]![0];
      const victim = hosts.find((h) => h.id === victimId)!;
      const before = load.samples.map((s) => s.ms);
      const killedAt = Date.now();
      victim.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 3500));
      await load.stop();

      const after = load.samples.filter((s) => s.at >= killedAt);
      console.log(
        `failover (cluster, SIGKILL): ${load.samples.length} invocations, ${load.failures.length} failed; ` +
        `p50 before ${percentile(before, 0.5).toFixed(2)} ms, worst after kill ${Math.max(...after.map((s) => s.ms)).toFixed(0)} ms ` +
        `(added latency ≈ ${(Math.max(...after.map((s) => s.ms)) - percentile(before, 0.5)).toFixed(0)} ms, bounded by the per-attempt timeout)`,
      );
      expect(load.failures).toEqual([]);
      expect(after.length).toBeGreaterThan(100);
      expect(after.filter((s) => s.at > killedAt + 2500).every((s) => s.hostId !== victimId)).toBe(true);
      await nc.close();
    } finally {
      await Promise.all(hosts.map((h) => h[Symbol.asyncDispose]()));
    }
  }, 120_000);

  it('failover - supercluster: aws callers stay in aws, fail over to gcp within 1 s with no failure, and come back', async () => {
    await using sc = await startSupercluster({ clusters: ['aws', 'gcp'], size: 2 });
    const lattice = uniqueLattice('sc');
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    const awsHosts = await Promise.all(sc.cluster('aws').map((s) => spawnHost({ nats: s.url, lattice, env, labels: { cloud: 'aws' }, heartbeatMs: 1000 })));
    const gcpHosts = await Promise.all(sc.cluster('gcp').map((s) => spawnHost({ nats: s.url, lattice, env, labels: { cloud: 'gcp' }, heartbeatMs: 1000 })));
    try {
      const nc = await connect({ servers: sc.cluster('aws')[0]!.url });
      const client = createControlClient(nc, { lattice, timeoutMs: 60_000 });
      await deployExample(client, 'echo-c', [...awsHosts, ...gcpHosts], { actor: 'edge', count: 2 });
      await using rpc = await createRpcClient(nc, { lattice, caller: 'aws-caller' });
      await waitFor(() => rpc.view.hostsOf('edge', '1.0.0').length === 4, { what: 'four hosts in view' });
      const aws = new Set(awsHosts.map((h) => h.id));
      const gcp = new Set(gcpHosts.map((h) => h.id));

      // 1. While aws runs the actor, an aws caller is answered only by aws.
      const warm = continuousLoad(rpc, 'edge', 8);
      await new Promise((r) => setTimeout(r, 1000));
      await warm.stop();
      expect(warm.failures).toEqual([]);
      expect(warm.samples.length).toBeGreaterThan(50);
      expect(warm.samples.every((s) => aws.has(s.hostId))).toBe(true);

      // 2. Stop the aws instances under load: gcp answers within 1 s, nothing fails.
      const load = continuousLoad(rpc, 'edge', 8);
      await new Promise((r) => setTimeout(r, 500));
      const stopAt = Date.now();
      await Promise.all(awsHosts.map((h) => client.stopActor(h.id, { actor: 'edge' })));
      const stoppedAt = Date.now();
      await new Promise((r) => setTimeout(r, 1500));
      const firstGcp = load.samples.find((s) => s.at >= stopAt && gcp.has(s.hostId));
      const lastAws = [...load.samples].reverse().find((s) => aws.has(s.hostId));

      // 3. Start them again: traffic returns to aws.
      const digest = (await client.getInventory(gcpHosts[0]!.id)).actors[0]!.digest;
      const restartBeganAt = Date.now();
      await Promise.all(awsHosts.map((h) => client.startActor(h.id, { actor: 'edge', version: '1.0.0', digest, count: 2 })));
      const restartedAt = Date.now();
      await waitFor(() => load.samples.some((s) => s.at > restartedAt + 200 && aws.has(s.hostId)), { timeoutMs: 5000, what: 'traffic back in aws' });
      await new Promise((r) => setTimeout(r, 500));
      await load.stop();
      const backAt = Date.now() - 400;
      console.log(
        `failover (supercluster): ${load.samples.length} invocations, ${load.failures.length} failed; first gcp answer ${firstGcp ? firstGcp.at - stopAt : 'none'} ms after the aws stop began ` +
        `(stop took ${stoppedAt - stopAt} ms); `  +
        `worst latency ${Math.max(...load.samples.map((s) => s.ms)).toFixed(1)} ms`,
      );
      expect(load.failures).toEqual([]);
      expect(firstGcp).toBeDefined();
      expect(firstGcp!.at - stopAt).toBeLessThan(1000);
      // Once the aws instances are stopped, every answer comes from gcp until they start again.
      expect(lastAws!.at).toBeLessThanOrEqual(stoppedAt + 50);
      expect(load.samples.filter((s) => s.at > stoppedAt + 50 && s.at < restartBeganAt).every((s) => gcp.has(s.hostId))).toBe(true);
      expect(load.samples.filter((s) => s.at > backAt).every((s) => aws.has(s.hostId))).toBe(true);
      await nc.close();
    } finally {
      await Promise.all([...awsHosts, ...gcpHosts].map((h) => h[Symbol.asyncDispose]()));
    }
  }, 180_000);
});
