import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { openHttpRoutes } from '../lattice/http-routes/index.ts';
import { openLinks } from '../lattice/links/index.ts';
import { deployExample, spawnHost, spawnTrellis, startNats, uniqueLattice, waitFor, type HostProcess, type NatsServer, type TrellisProcess } from './harness/index.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './harness/otlp.ts';

describe('tracing: one request through the gateway, two hosts and a key-value call is one trace at a real OTLP endpoint', () => {
  let nats: NatsServer;
  let otlp: OtlpReceiver;
  let hosts: HostProcess[] = [];
  let gateway: TrellisProcess;
  let client: ControlClient;
  let base: string;
  const lattice = uniqueLattice('tr');

  beforeAll(async () => {
    nats = await startNats();
    otlp = await startOtlpReceiver();
    // Export every 100 ms instead of 5 s: the test waits for the spans, not the batch timer.
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')), OTEL_BSP_SCHEDULE_DELAY: '100' };
    const tracing = ['--otlp-endpoint', otlp.url];
    hosts = await Promise.all([
      spawnHost({ nats: nats.url, lattice, env, name: 'trace-a', extraArgs: tracing }),
      spawnHost({ nats: nats.url, lattice, env, name: 'trace-b', extraArgs: tracing }),
    ]);
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    gateway = await spawnTrellis(['gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0', ...tracing], 'gateway ready', env);
    base = gateway.ready.url as string;
    // hello runs on host A only and calls counter, which runs on host B only and uses key-value.
    await client.startProvider(hosts[1]!.id, { provider: 'keyvalue-nats' }, { timeoutMs: 60_000 });
    await deployExample(client, 'hello', [hosts[0]!]);
    await deployExample(client, 'counter', [hosts[1]!]);
    await (await openLinks(client.nc, client.subjects)).put('counter', 'keyvalue-nats', { bucket: `tr-${lattice}` });
    await (await openHttpRoutes(client.nc, client.subjects)).add('/hello', 'hello');
    await waitFor(async () => (await fetch(`${base}/hello/`)).status === 200, { timeoutMs: 20_000, what: 'gateway route' });
  }, 180_000);

  afterAll(async () => {
    await gateway?.[Symbol.asyncDispose]();
    await Promise.all(hosts.map((h) => h[Symbol.asyncDispose]()));
    await client?.close();
    await otlp?.close();
    await nats?.stop();
  });

  it('tracing - gateway → RPC → host A guest → actor call → host B guest → key-value: one trace, right parents, per-role resources', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const clientSpan = '00f067aa0ba902b7';
    const res = await fetch(`${base}/hello/?via=counter`, { headers: { traceparent: `00-${traceId}-${clientSpan}-01` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello, 1');

    const byName = (spans: ReceivedSpan[], name: string) => spans.find((s) => s.name === name);
    const names = ['GET /hello', 'invoke hello', 'run hello@1.0.0', 'invoke counter', 'run counter@1.0.0', 'keyvalue increment'];
    const trace = await waitFor(
      () => {
        const spans = otlp.spans.filter((s) => s.traceId === traceId);
        return names.every((n) => byName(spans, n)) && spans;
      },
      { timeoutMs: 20_000, what: `spans ${names.join(', ')} (got ${otlp.spans.map((s) => s.name).join(', ')})` },
    );
    expect(otlp.rejected).toEqual([]);
    const [gw, rpcHello, runHello, rpcCounter, runCounter, kv] = names.map((n) => byName(trace, n)!);
    // Parent links: each hop is the child of the one before, the first of the client's span.
    expect(gw.parentSpanId).toBe(clientSpan);
    expect(rpcHello.parentSpanId).toBe(gw.spanId);
    expect(runHello.parentSpanId).toBe(rpcHello.spanId);
    expect(rpcCounter.parentSpanId).toBe(runHello.spanId);
    expect(runCounter.parentSpanId).toBe(rpcCounter.spanId);
    expect(kv.parentSpanId).toBe(runCounter.spanId);
    // Who exported what: the gateway, then host A, then host B.
    expect(gw.resource['service.name']).toBe('trellis-gateway');
    expect(rpcHello.resource['service.name']).toBe('trellis-gateway');
    for (const s of [runHello, rpcCounter]) expect(s.resource).toMatchObject({ 'service.name': 'trellis-host', 'trellis.host_id': hosts[0]!.id, 'trellis.lattice': lattice });
    for (const s of [runCounter, kv]) expect(s.resource).toMatchObject({ 'service.name': 'trellis-host', 'trellis.host_id': hosts[1]!.id, 'trellis.lattice': lattice });
    // What the spans say: the attempt as an event, the guest's invocation, the response status.
    expect(rpcHello.events.map((e) => e.name)).toContain('attempt');
    expect(rpcHello.attributes).toMatchObject({ 'trellis.actor': 'hello', 'trellis.version': '1.0.0', 'trellis.host_id': hosts[0]!.id });
    expect(runCounter.attributes).toMatchObject({ 'trellis.actor': 'counter', 'trellis.version': '1.0.0' });
    expect(runCounter.attributes['trellis.invocation_id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(gw.attributes['http.response.status_code']).toBe(200);
    expect(kv.attributes).toMatchObject({ 'trellis.capability': 'keyvalue', 'trellis.op': 'increment' });
  });

  it('tracing - a failover shows on the RPC span: the retry with its code, then the version it moved to', async () => {
    // flip@2.0.0 runs on a third host only, flip@1.0.0 on host B; calls go to the highest first.
    const env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')), OTEL_BSP_SCHEDULE_DELAY: '100' };
    const doomed = await spawnHost({ nats: nats.url, lattice, env, name: 'trace-c' });
    await deployExample(client, 'echo-c', [hosts[1]!], { actor: 'flip', version: '1.0.0' });
    await deployExample(client, 'echo-c', [doomed], { actor: 'flip', version: '2.0.0' });
    await (await openHttpRoutes(client.nc, client.subjects)).add('/flip', 'flip');
    await waitFor(async () => (await fetch(`${base}/flip/`, { method: 'POST', body: 'x' })).headers.get('x-trellis-version') === '2.0.0', { timeoutMs: 20_000, what: 'flip@2.0.0 answering' });
    // SIGKILL closes its socket: NATS drops its interest at once, while the gateway's lattice
    // view still lists 2.0.0 until the dead host's beats expire. The call fails over.
    doomed.kill('SIGKILL');
    await doomed.exited;
    const traceId = '5bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`${base}/flip/`, { method: 'POST', body: 'x', headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-trellis-version')).toBe('1.0.0');
    const span = await waitFor(() => otlp.spans.find((s) => s.traceId === traceId && s.name === 'invoke flip'), { timeoutMs: 20_000, what: 'the span of the failed-over call' });
    const events = span.events.map((e) => ({ name: e.name, ...e.attributes }));
    expect(events).toContainEqual(expect.objectContaining({ name: 'attempt', version: '2.0.0' }));
    expect(events).toContainEqual(expect.objectContaining({ name: 'retry', version: '2.0.0', code: 'TRELLIS_NO_RESPONDERS' }));
    expect(events).toContainEqual(expect.objectContaining({ name: 'failover', from: '2.0.0', to: '1.0.0' }));
    expect(events.at(-1)).toMatchObject({ name: 'attempt', version: '1.0.0' });
    expect(span.attributes).toMatchObject({ 'trellis.version': '1.0.0', 'trellis.host_id': hosts[1]!.id });
    // The host that answered is the child of the RPC span.
    const run = await waitFor(() => otlp.spans.find((s) => s.traceId === traceId && s.name === 'run flip@1.0.0'), { timeoutMs: 20_000, what: 'the guest span on host B' });
    expect(run.parentSpanId).toBe(span.spanId);
  });

  it('tracing - a failing call marks its spans failed, and a request without traceparent starts its own trace', async () => {
    const res = await fetch(`${base}/hello/?via=ghost`);
    expect(res.status).toBe(502);
    const failed = await waitFor(() => otlp.spans.find((s) => s.name === 'invoke ghost'), { timeoutMs: 20_000, what: 'the span of the failed call' });
    expect(failed.status?.code).toBe(2);
    expect(failed.attributes['trellis.error_code']).toBe('TRELLIS_NO_RESPONDERS');
    const root = await waitFor(() => otlp.spans.find((s) => s.traceId === failed.traceId && s.name === 'GET /hello'), { timeoutMs: 20_000, what: 'the gateway span of the failed call' });
    expect(root.parentSpanId).toBeUndefined();
    expect(root.attributes['http.response.status_code']).toBe(502);
    const caller = await waitFor(() => otlp.spans.find((s) => s.traceId === failed.traceId && s.name === 'run hello@1.0.0'), { timeoutMs: 20_000, what: 'the guest span of the caller' });
    expect(failed.parentSpanId).toBe(caller.spanId);
    // The caller's guest run answered 502 (its import call failed): its span says so.
    expect(caller.attributes['http.response.status_code'] ?? caller.attributes['trellis.error_code']).toBeDefined();
  });
});
