import { describe, expect, it } from 'vitest';
import { CANARY_DEFAULTS } from '../apps/canary.ts';
import { emptyHistogram, observe } from '../canary/histogram.ts';
import type { MetricsReport } from '../metrics/index.ts';
import { makeEvent, type AppRevision, type CanaryState, type HostInventory } from '../wire/index.ts';
import { eventRow } from './events.ts';
import { DashboardModel, GONE_KEPT_MS } from './model.ts';
import { Traffic } from './traffic.ts';

const hist = (ms: number, n: number) => {
  const h = emptyHistogram();
  observe(h, ms, n);
  return h;
};
const report = (participant: string, versions: [actor: string, version: string, requests: number, failures: number, ms: number][]): MetricsReport => ({
  participant,
  from: 0,
  to: 1000,
  versions: versions.map(([actor, version, requests, failures, ms]) => ({ actor, version, requests, failures, histogram: hist(ms, requests) })),
});
const inventory = (id: string, extra: Partial<HostInventory> = {}): HostInventory => ({
  id,
  name: `name-${id}`,
  lattice: 'l',
  labels: { cloud: 'aws' },
  version: '0.1.0',
  startedAt: '2026-01-01T00:00:00.000Z',
  uptimeMs: 1,
  actors: [{ name: 'echo', version: '1.0.0', digest: `sha256:${'0'.repeat(64)}`, world: 'trellis', instances: 2, maxConcurrency: 1, startedAt: '2026-01-01T00:00:00.000Z' }],
  providers: [],
  seq: 3,
  beatMs: 1000,
  ...extra,
});

describe('dashboard traffic', () => {
  it('traffic - the p99 of two hosts comes from their merged histograms, not the mean of their p99s', () => {
    const t = new Traffic({ windowMs: 5000 });
    t.add(report('fast', [['echo', '1.0.0', 100, 0, 1]]), 1000);
    t.add(report('slow', [['echo', '1.0.0', 100, 2, 200]]), 1100);
    const v = t.tick(2000).versions[0]!;
    expect(v).toMatchObject({ actor: 'echo', version: '1.0.0', rps: 40, errorRate: 0.01, requests: 200, failures: 2 });
    // Half the requests took 200 ms: the p99 is near 200 ms (one bucket, under 19 % off), never ~100 ms.
    expect(v.p99Ms).toBeGreaterThan(170);
    expect(v.p99Ms).toBeLessThan(240);
  });

  it('traffic - reports leave the window after it passes; the series goes on at zero and totals stay', () => {
    const t = new Traffic({ windowMs: 5000, points: 3 });
    t.add(report('h1', [['echo', '1.0.0', 50, 0, 2]]), 1000);
    expect(t.tick(2000).participants).toEqual({ h1: 10 });
    const later = t.tick(6500);
    expect(later.versions[0]).toMatchObject({ rps: 0, errorRate: null, p99Ms: null, requests: 50 });
    expect(later.participants).toEqual({});
    t.tick(7500);
    expect(t.history()[0]!.rps).toEqual([10, 0, 0]);
    // A series that scrolled out at zero is dropped.
    t.tick(8500);
    expect(t.tick(9500).versions).toEqual([]);
    expect(t.history()).toEqual([]);
  });

  it('traffic - a canary window holds the stable and canary totals of the current window', () => {
    const t = new Traffic();
    expect(t.analysisWindow('echo', '1.0.0', '1.1.0', 1000)).toBeUndefined();
    t.add(report('h1', [['echo', '1.0.0', 90, 0, 2], ['echo', '1.1.0', 10, 1, 3], ['other', '1.0.0', 5, 0, 1]]), 1000);
    const w = t.analysisWindow('echo', '1.0.0', '1.1.0', 1500)!;
    expect([w.stable.requests, w.canary.requests, w.canary.failures]).toEqual([90, 10, 1]);
  });
});

describe('dashboard model', () => {
  it('model - host health goes ok, late, dead with missed beats, and the card goes after a minute', () => {
    const m = new DashboardModel('l');
    m.inventory(inventory('h1'), 0);
    expect(m.view(500).hosts[0]).toMatchObject({ id: 'h1', health: 'ok', instances: 2, actors: [{ name: 'echo', version: '1.0.0', instances: 2 }] });
    expect(m.view(1600).hosts[0]!.health).toBe('late');
    expect(m.beat({ id: 'h1', periodMs: 1000, seq: 3 }, 1700)).toBe(false);
    expect(m.view(1800).hosts[0]!.health).toBe('ok');
    expect(m.view(4800).hosts[0]).toMatchObject({ health: 'dead', reason: 'no beat for 3 s' });
    m.sweep(4800);
    m.sweep(4800 + GONE_KEPT_MS - 1);
    expect(m.view(4800 + GONE_KEPT_MS - 1).hosts).toHaveLength(1);
    m.sweep(4800 + GONE_KEPT_MS + 1);
    expect(m.view(4800 + GONE_KEPT_MS + 1).hosts).toHaveLength(0);
  });

  it('model - while the dashboard itself is cut off from NATS, hosts are judged as of that moment, and count again from the reconnect', () => {
    const m = new DashboardModel('l');
    m.inventory(inventory('h1'), 0);
    m.connection(false, 500);
    m.sweep(60_000);
    expect(m.view(60_000)).toMatchObject({ nats: { connected: false, since: new Date(500).toISOString() }, hosts: [{ id: 'h1', health: 'ok' }] });
    m.connection(true, 60_000);
    expect(m.view(61_000)).toMatchObject({ nats: { connected: true }, hosts: [{ health: 'ok' }] });
    expect(m.view(63_100).hosts[0]!.health).toBe('dead');
  });

  it('model - a beat asks for the inventory of an unknown host or one whose sequence moved; older inventories are ignored', () => {
    const m = new DashboardModel('l');
    expect(m.beat({ id: 'h1', periodMs: 1000, seq: 1 }, 0)).toBe(true);
    m.inventory(inventory('h1', { seq: 3 }), 0);
    expect(m.beat({ id: 'h1', periodMs: 1000, seq: 4 }, 10)).toBe(true);
    m.inventory(inventory('h1', { seq: 2, actors: [] }), 20);
    // A malformed inventory (a foreign publisher) is no host and changes none.
    m.inventory({ id: 'h1', name: 'x' } as unknown as HostInventory, 25);
    m.inventory({ ...inventory('h2'), actors: [{ name: 'a' }] } as unknown as HostInventory, 25);
    expect(m.view(30).hosts[0]!.actors).toHaveLength(1);
    // A restart (new startedAt) counts from 0 again and replaces what was held.
    m.inventory(inventory('h1', { seq: 0, actors: [], startedAt: '2026-01-02T00:00:00.000Z' }), 40);
    expect(m.view(50).hosts[0]!.actors).toHaveLength(0);
  });

  it('model - a stopped host shows stopped with its reason and late heartbeats of that run do not revive it', () => {
    const m = new DashboardModel('l');
    m.inventory(inventory('h1'), 0);
    m.hostStopped('h1', 'SIGTERM', 100);
    m.inventory(inventory('h1', { seq: 4 }), 200);
    expect(m.view(300).hosts[0]).toMatchObject({ health: 'stopped', reason: 'SIGTERM' });
    m.labels('h1', { cloud: 'gcp' });
    expect(m.view(300).hosts[0]!.labels).toEqual({ cloud: 'gcp' });
  });

  it('model - apps show desired against running, and a revision not reconciled yet shows Deploying', () => {
    const m = new DashboardModel('l');
    const rev: AppRevision = { name: 'shop', revision: 2, specHash: 'x', createdAt: '2026-01-01T00:00:00.000Z', spec: { name: 'shop', providers: [], actors: [{ name: 'api', version: '1.0.0', digest: `sha256:${'0'.repeat(64)}`, replicas: 3, spread: [{ name: 'default', requirements: {}, weight: 1 }], policy: {}, links: [], routes: [] }] } };
    m.revision('shop', rev);
    expect(m.view(0).apps[0]).toMatchObject({ name: 'shop', phase: 'Deploying', actors: [{ name: 'api', desired: 3, running: 0 }] });
    m.status('shop', { name: 'shop', revision: 2, phase: 'Degraded', actors: [{ name: 'api', version: '1.0.0', desired: 3, running: 2, spreads: [] }], reasons: ['no host matches cloud=azure'], observedAt: '2026-01-01T00:00:01.000Z' });
    expect(m.view(0).apps[0]).toMatchObject({ phase: 'Degraded', reasons: ['no host matches cloud=azure'], actors: [{ desired: 3, running: 2 }] });
    m.revision('shop', undefined);
    expect(m.view(0).apps).toEqual([]);
  });

  it('model - a canary shows its step, the last decisions and the live window of both versions', () => {
    const m = new DashboardModel('l');
    const history = Array.from({ length: 12 }, (_, i) => ({ at: `2026-01-01T00:00:${String(i).padStart(2, '0')}.000Z`, decision: 'failed-check' as const, reason: `check ${i}`, step: 1, weight: 10 }));
    const state: CanaryState = { actor: 'echo', stable: '1.0.0', canary: '1.1.0', phase: 'Progressing', step: 2, steps: [10, 50, 100], weight: { set: 50 }, failedChecks: 1, failureLimit: 3, spec: { ...CANARY_DEFAULTS }, generation: 1, startedAt: 'x', stepStartedAt: 'x', windowStartedAt: 'x', history };
    m.canary('echo', state);
    const t = new Traffic();
    t.add(report('h1', [['echo', '1.0.0', 50, 0, 2], ['echo', '1.1.0', 50, 5, 3]]), 0);
    const c = m.view(100, t).canaries[0]!;
    expect(c).toMatchObject({ actor: 'echo', step: 2, steps: [10, 50, 100], weight: { set: 50, actual: 50 }, window: { canary: { requests: 50, failures: 5, successRate: 0.9 } } });
    expect(c.history.map((h) => h.reason)).toEqual(['check 4', 'check 5', 'check 6', 'check 7', 'check 8', 'check 9', 'check 10', 'check 11']);
  });
});

describe('dashboard events', () => {
  it('events - rows carry a summary with host names and a level; heartbeats and foreign messages are no rows', () => {
    const names = (id: string) => (id === 'H1' ? 'aws-1' : id);
    const started = makeEvent('actor_started', '/trellis/l/host/H1', { hostId: 'H1', actor: 'echo', version: '1.0.0', digest: 'd', instances: 2 });
    expect(eventRow(started as unknown as Record<string, unknown>, names)).toMatchObject({ kind: 'actor_started', level: 'info', summary: 'echo@1.0.0 started on aws-1 (2 instances)' });
    const failed = makeEvent('actor_start_failed', 's', { hostId: 'H1', actor: 'echo', version: '1.0.0', error: { code: 'TRELLIS_X', message: 'boom' } });
    expect(eventRow(failed as unknown as Record<string, unknown>, names)).toMatchObject({ level: 'error', summary: 'echo@1.0.0 failed to start on aws-1: boom [TRELLIS_X]' });
    const heartbeat = makeEvent('host_heartbeat', 's', inventory('H1'));
    expect(eventRow(heartbeat as unknown as Record<string, unknown>)).toBeUndefined();
    expect(eventRow({ specversion: '1.0', type: 'com.example.other', data: {} })).toBeUndefined();
    expect(eventRow({ type: 'dev.trellis.actor_started', data: {} })).toBeUndefined();
  });

  it('events - kinds newer than this code (canary events) still show, and one event heard twice is one row', () => {
    const canary = { specversion: '1.0', id: 'e1', type: 'dev.trellis.canary_rolled_back', source: 's', time: '2026-01-01T00:00:00.000Z', data: { actor: 'echo', canary: '1.1.0', step: 1, weight: 0, reason: 'success 80% < 99%' } };
    expect(eventRow(canary)).toMatchObject({ kind: 'canary_rolled_back', level: 'error', summary: 'canary echo 1.1.0: rolled back, step 1 at 0%: success 80% < 99%' });
    const m = new DashboardModel('l');
    expect(m.event(canary)).toBeDefined();
    expect(m.event(canary)).toBeUndefined();
    expect(m.view(0).events).toHaveLength(1);
  });
});
