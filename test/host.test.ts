import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { startHost } from '../host/index.ts';
import { createRpcClient } from '../lattice/rpc/index.ts';
import { bytesRequest, decode, decodeEvent, encode, type LatticeEvent } from '../lattice/wire/index.ts';
import { deployExample, spawnHost, startNats, uniqueLattice, waitFor, type NatsServer } from './harness/index.ts';

const HEARTBEAT_MS = 500;

describe('host on a real nats-server', () => {
  let nats: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  /** Collect every event of a lattice while the test runs. */
  function recordEvents(client: ControlClient): LatticeEvent[] {
    const events: LatticeEvent[] = [];
    nc.subscribe(client.subjects.allEvents(), { callback: (_e, msg) => events.push(decodeEvent(msg.data)) });
    return events;
  }

  it('host - appears in get hosts within one heartbeat with its labels, and heartbeats carry its inventory', async () => {
    const lattice = uniqueLattice();
    await using client = await connectControl({ nats: nats.url, lattice });
    const events = recordEvents(client);
    await nc.flush();
    await using host = await spawnHost({ nats: nats.url, lattice, labels: { cloud: 'aws', zone: 'a' }, heartbeatMs: HEARTBEAT_MS });
    const hosts = await client.pingHosts();
    expect(hosts.map((h) => h.id)).toEqual([host.id]);
    expect(hosts[0]!.labels).toMatchObject({ cloud: 'aws', zone: 'a', os: process.platform, arch: process.arch });
    expect(hosts[0]!.name).toBe(host.name);
    const started = await waitFor(() => events.find((e) => e.kind === 'host_started'), { what: 'host_started' });
    expect(started.source).toContain(host.id);
    const beat = await waitFor(() => events.find((e) => e.kind === 'host_heartbeat'), { timeoutMs: HEARTBEAT_MS * 3, what: 'heartbeat' });
    if (beat.kind !== 'host_heartbeat') throw new Error('unreachable');
    expect(beat.data).toMatchObject({ id: host.id, lattice, actors: [], providers: [] });
  });

  it('host - a control command without a reply inbox is dropped unread: a stream republishing onto control subjects commands no host', async () => {
    const lattice = uniqueLattice();
    await using client = await connectControl({ nats: nats.url, lattice });
    await using host = await startHost({ nats: nats.url, lattice, logLevel: 'silent' });
    const subject = client.subjects.control('labelPut', host.id);
    // What JetStream republish sends (no reply) and what a push consumer delivers (a $JS.ACK reply).
    nc.publish(subject, encode({ lattice, key: 'injected', value: 'republish' }));
    nc.publish(subject, encode({ lattice, key: 'injected', value: 'delivered' }), { reply: '$JS.ACK.KV_x.c.1.1.1.1.0' });
    await nc.flush();
    // A real request after them, on the same connection, is served: the two before it were read.
    const reply = decode<{ ok: boolean }>((await nc.request(subject, encode({ lattice, key: 'asked', value: 'yes' }), { timeout: 10_000 })).data);
    expect(reply.ok).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const labels = (await client.getInventory(host.id)).labels;
    expect(labels.asked).toBe('yes');
    expect(labels.injected).toBeUndefined();
  });

  it('host - label put and delete show up in inventory and emit labels_changed; automatic labels are protected', async () => {
    const lattice = uniqueLattice();
    await using client = await connectControl({ nats: nats.url, lattice });
    const events = recordEvents(client);
    await using host = await startHost({ nats: nats.url, lattice, logLevel: 'silent' });
    expect(await client.putLabel(host.id, 'tier', 'gold')).toMatchObject({ tier: 'gold' });
    expect((await client.getInventory(host.id)).labels.tier).toBe('gold');
    await waitFor(() => events.find((e) => e.kind === 'labels_changed' && e.data.labels.tier === 'gold'), { what: 'labels_changed' });
    await expect(client.putLabel(host.id, 'arch', 'sparc')).rejects.toMatchObject({ code: 'TRELLIS_BAD_REQUEST' });
    await expect(client.putLabel(host.id, 'bad key!', 'x')).rejects.toMatchObject({ code: 'TRELLIS_BAD_REQUEST' });
    const after = await client.deleteLabel(host.id, 'tier');
    expect(after.tier).toBeUndefined();
    await expect(client.deleteLabel(host.id, 'tier')).rejects.toMatchObject({ code: 'TRELLIS_NOT_FOUND' });
    expect((await client.getInventory(host.id)).labels.arch).toBe(process.arch);
  });

  it('host - stop host drains, emits host_stopped, exits 0 and leaves get hosts', async () => {
    const lattice = uniqueLattice();
    await using client = await connectControl({ nats: nats.url, lattice });
    const events = recordEvents(client);
    const host = await spawnHost({ nats: nats.url, lattice });
    await client.stopHost(host.id);
    expect(await host.exited).toBe(0);
    const stopped = await waitFor(() => events.find((e) => e.kind === 'host_stopped'), { what: 'host_stopped' });
    expect(stopped.data).toMatchObject({ hostId: host.id });
    expect(await client.pingHosts({ waitMs: 300 })).toEqual([]);
  });

  it('host - a SIGKILLed host leaves get hosts at once, and the callers\' lattice view when its heartbeats expire', async () => {
    const lattice = uniqueLattice();
    await using client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    const events = recordEvents(client);
    const survivor = await spawnHost({ nats: nats.url, lattice, heartbeatMs: HEARTBEAT_MS });
    const victim = await spawnHost({ nats: nats.url, lattice, heartbeatMs: HEARTBEAT_MS });
    try {
      expect((await client.pingHosts()).map((h) => h.id).sort()).toEqual([survivor.id, victim.id].sort());
      // One version on each host, so the view shows which host it still believes in.
      await deployExample(client, 'echo-c', [survivor], { actor: 'beat', version: '1.0.0' });
      await deployExample(client, 'echo-c', [victim], { actor: 'beat', version: '2.0.0' });
      await using rpc = await createRpcClient(client.nc, { lattice, caller: 'expiry-test' });
      await waitFor(() => rpc.view.liveVersions('beat').length === 2, { what: 'both versions in the view' });

      const killedAt = Date.now();
      victim.kill('SIGKILL');
      await victim.exited;
      // get hosts asks the hosts themselves: a dead one cannot answer.
      expect((await client.pingHosts()).map((h) => h.id)).toEqual([survivor.id]);
      // The view hears only heartbeats and events, and a killed host sends neither: right after
      // the kill it still lists the victim's version...
      expect(rpc.view.liveVersions('beat')).toEqual(['1.0.0', '2.0.0']);
      // ...until the victim's entry expires (lattice/rpc/view.ts: 15 s after its last heartbeat).
      await waitFor(() => rpc.view.liveVersions('beat').length === 1, { timeoutMs: 45_000, intervalMs: 250, what: "the victim's version to expire from the view" });
      const goneAfterMs = Date.now() - killedAt;
      expect(rpc.view.liveVersions('beat')).toEqual(['1.0.0']);
      expect(rpc.view.hostsOf('beat', '1.0.0')).toEqual([survivor.id]);
      // Expiry, not an event: nothing said the victim stopped.
      const stopEvents = events.filter((e) => (e.kind === 'host_stopped' || e.kind === 'actor_stopped') && e.data.hostId === victim.id);
      expect(stopEvents).toEqual([]);
      // The survivor's heartbeats kept its own entry fresh all along, and it serves.
      const answer = await rpc.invoke('beat', bytesRequest('after'));
      expect(answer).toMatchObject({ hostId: survivor.id, version: '1.0.0' });
      console.log(`SIGKILLed host's version expired from the caller view ${goneAfterMs} ms after the kill`);
    } finally {
      victim.kill('SIGKILL');
      await survivor[Symbol.asyncDispose]();
    }
  }, 120_000);

  it('host - control errors are replies with stable codes: unknown command, wrong lattice, malformed and oversize bodies', async () => {
    const lattice = uniqueLattice();
    await using client = await connectControl({ nats: nats.url, lattice });
    await using host = await startHost({ nats: nats.url, lattice, logLevel: 'silent' });
    const ask = async (subject: string, data: Uint8Array) => {
      const { decode } = await import('../lattice/wire/index.ts');
      return decode<{ ok: boolean; error?: { code: string } }>((await nc.request(subject, data, { timeout: 2000 })).data);
    };
    const base = client.subjects.control('hostInventory', host.id);
    expect((await ask(base.replace('host.inventory', 'host.explode'), encode({}))).error?.code).toBe('TRELLIS_UNKNOWN_COMMAND');
    expect((await ask(base, encode({ lattice: 'elsewhere' }))).error?.code).toBe('TRELLIS_WRONG_LATTICE');
    expect((await ask(base, new Uint8Array([0xc1, 0x00]))).error?.code).toBe('TRELLIS_BAD_REQUEST');
    expect((await ask(base, encode([1, 2, 3]))).error?.code).toBe('TRELLIS_BAD_REQUEST');
    expect((await ask(client.subjects.control('labelPut', host.id), encode({ key: 'k', value: 'x'.repeat(100_000) }))).error?.code).toBe('TRELLIS_PAYLOAD_TOO_LARGE');
    expect((await ask(base, encode({ lattice }))).ok).toBe(true);
  });

  it('host - control requests are checked against the contract before any handler runs', async () => {
    const lattice = uniqueLattice();
    await using client = await connectControl({ nats: nats.url, lattice });
    await using host = await startHost({ nats: nats.url, lattice, logLevel: 'silent' });
    const digest = `sha256:${'0'.repeat(64)}`;
    const ask = async (body: Record<string, unknown>) =>
      decode<{ ok: boolean; error?: { code: string; message: string } }>((await nc.request(client.subjects.control('actorStart', host.id), encode({ lattice, ...body }), { timeout: 5000 })).data);
    const unknownField = await ask({ actor: 'a', version: '1.0.0', digest, colour: 'red' });
    expect(unknownField.error).toEqual({ code: 'TRELLIS_BAD_REQUEST', message: 'actorStart.colour: unknown field' });
    expect((await ask({ actor: 'a', version: '1.0.0', digest, count: 0 })).error?.message).toMatch(/^actorStart\.count: must be an integer from 1/);
    expect((await ask({ actor: 'a.b', version: '1.0.0', digest })).error?.message).toMatch(/^actorStart\.actor: actor name "a\.b" may not contain/);
    expect((await ask({ actor: 'a', version: 'latest', digest })).error?.message).toMatch(/^actorStart\.version: .*not a semantic version/);
    expect((await ask({ actor: 'a', version: '1.0.0', digest: 'sha256:abc' })).error?.message).toMatch(/^actorStart\.digest: must be a digest/);
    // Past the old cap of 256, the bound is memory: instances × the policy's page limit.
    await expect(client.startActor(host.id, { actor: 'a', version: '1.0.0', digest, count: 50_000 })).rejects.toMatchObject({
      code: 'TRELLIS_BAD_REQUEST',
      message: expect.stringMatching(/50000 instances of a@1\.0\.0 may use up to \d+ MiB \(maxMemoryPages 2048 each\).*lower maxMemoryPages/),
    });
    await expect(client.startActor(host.id, { actor: 'a', version: '1.0.0', digest, count: 1000, policy: { maxMemoryPages: 16 } })).rejects.toMatchObject({ code: 'TRELLIS_DIGEST_NOT_FOUND' });
    expect(host.inventory().actors).toEqual([]);
  });

  it('host - a command fenced below the highest controller fence it obeyed is refused; hand commands are not fenced', async () => {
    const lattice = uniqueLattice();
    await using client = await connectControl({ nats: nats.url, lattice });
    await using host = await startHost({ nats: nats.url, lattice, logLevel: 'silent', controller: false });
    // The handler runs (nothing to stop here) and the host now follows fence 10.
    await expect(client.stopProvider(host.id, { provider: 'keyvalue-nats', fence: 10 })).rejects.toMatchObject({ code: 'TRELLIS_NOT_FOUND' });
    // A replaced leader's late command: refused before any handler runs.
    await expect(client.stopProvider(host.id, { provider: 'keyvalue-nats', fence: 5 })).rejects.toMatchObject({ code: 'TRELLIS_CONFLICT', message: expect.stringContaining('replaced controller (fence 5; this host follows fence 10)') });
    await expect(client.stopActor(host.id, { actor: 'a', fence: 9 })).rejects.toMatchObject({ code: 'TRELLIS_CONFLICT' });
    // The same or a newer term, and an operator's own command, go through.
    await expect(client.stopProvider(host.id, { provider: 'keyvalue-nats', fence: 10 })).rejects.toMatchObject({ code: 'TRELLIS_NOT_FOUND' });
    await expect(client.stopActor(host.id, { actor: 'a' })).rejects.toMatchObject({ code: 'TRELLIS_NOT_FOUND' });
  });

  it('host - stop host with a drain budget ends in-flight work at the budget instead of waiting for it', async () => {
    const lattice = uniqueLattice();
    await using client = await connectControl({ nats: nats.url, lattice });
    const host = await spawnHost({ nats: nats.url, lattice });
    await deployExample(client, 'hostile-c', [host], { actor: 'spinner', policy: { executionTimeoutMs: 60_000 } });
    await using rpc = await createRpcClient(client.nc, { lattice });
    const looping = rpc.invoke('spinner', { ...bytesRequest(''), path: '/loop' }, { deadlineMs: 60_000 }).catch((err: unknown) => err);
    // The loop is running once the host sends progress replies for it; give it a moment.
    await new Promise((r) => setTimeout(r, 1000));
    const asked = Date.now();
    await client.stopHost(host.id, { timeoutMs: 500 });
    await host.exited;
    // Without the budget the host waits for the call's 60 s time limit.
    expect(Date.now() - asked).toBeLessThan(20_000);
    await looping;
  });

  it('host - survives thousands of random-byte messages on every subject it subscribes to, then answers ping', async () => {
    const lattice = uniqueLattice();
    await using client = await connectControl({ nats: nats.url, lattice });
    await using host = await spawnHost({ nats: nats.url, lattice });
    // Ask the server (not our own code) which subjects the host subscribed to, and how many
    // messages it has delivered to the host so far.
    type Conn = { cid: number; name?: string; out_msgs: number; subscriptions_list?: string[] };
    const connections = async () => ((await (await fetch(`${nats.monitorUrl}/connz?subs=1&limit=1000`)).json()) as { connections: Conn[] }).connections;
    const hostConn = (await connections()).find((c) => c.name?.startsWith('trellis-host-') && c.name.endsWith(host.name));
    const subs = hostConn?.subscriptions_list ?? [];
    expect(subs.length).toBeGreaterThanOrEqual(2);
    let sent = 0;
    for (let round = 0; round < 1000; round++) {
      for (const sub of subs) {
        // Fill wildcards with random tokens so every shape of subject is hit.
        const subject = sub.replaceAll('*', () => randomBytes(3).toString('hex')).replace('>', 'x.y');
        const concrete = round % 2 === 0 ? client.subjects.control('hostPing', host.id) : subject;
        const size = round % 50 === 0 ? 200_000 : Math.floor(Math.random() * 512);
        nc.publish(round % 3 === 0 ? concrete : subject, randomBytes(size), { reply: round % 4 === 0 ? undefined : '_INBOX.flood' });
        sent += 1;
      }
    }
    await nc.flush();
    // Every message went to a subject the host subscribes to, so the server delivered each one to
    // the host (counted as it queues them; the flush returns once it has handled all we sent), on
    // the same connection: no crash, no reconnect, no slow-consumer disconnect.
    const after = (await connections()).find((c) => c.cid === hostConn!.cid);
    expect(after, "the host's connection").toBeDefined();
    expect(after!.out_msgs - hostConn!.out_msgs).toBeGreaterThanOrEqual(sent);
    const hosts = await client.pingHosts({ waitMs: 5000 });
    expect(hosts.map((h) => h.id)).toEqual([host.id]);
    expect(host.process.exitCode).toBeNull();
  });
});
