/** Spec hash, diff, ownership rules and shown status: pure functions on app specs. */
import { describe, expect, it } from 'vitest';
import type { AppActorSpec, AppRevision, AppSpec, AppStatus, HostInventory } from '../wire/index.ts';
import { canonicalJson, changeLine, diffSpecs, effectiveStatus, findConflicts, isDeployed, shareOut, specHash } from './index.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

const actor = (over: Partial<AppActorSpec> = {}): AppActorSpec => ({
  name: 'api',
  version: '1.0.0',
  digest: D1,
  replicas: 2,
  spread: [{ name: 'default', requirements: {}, weight: 1 }],
  policy: { maxMemoryPages: 64 },
  links: [],
  routes: [],
  ...over,
});
const spec = (actors: AppActorSpec[], name = 'shop'): AppSpec => ({ name, actors, providers: [] });
const revision = (s: AppSpec, rev = 1, over: Partial<AppRevision> = {}): AppRevision => ({ name: s.name, revision: rev, specHash: specHash(s), spec: s, createdAt: '2026-01-01T00:00:00Z', ...over });
const host = (name: string, actors: HostInventory['actors']): HostInventory => ({ id: `id-${name}`, name, lattice: 'l', labels: {}, version: '0', startedAt: '', uptimeMs: 0, actors, providers: [] });
const inv = (name: string, version: string, owner?: { app: string; revision: number }) => ({ name, version, digest: D1, world: 'actor', instances: 1, maxConcurrency: 1, startedAt: '', ...(owner ? { owner } : {}) });

describe('spec hash', () => {
  it('spec - canonical JSON ignores key order and undefined fields, keeps list order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: undefined } })).toBe('{"a":{"d":[2,1]},"b":1}');
    const a = spec([actor()]);
    const reordered = JSON.parse(JSON.stringify({ providers: [], actors: [{ ...actor(), name: 'api' }], name: 'shop' })) as AppSpec;
    expect(specHash(reordered)).toBe(specHash(a));
    expect(specHash(a)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(specHash(spec([actor({ replicas: 3 })]))).not.toBe(specHash(a));
  });
});

describe('spec diff', () => {
  it('spec - a new app lists every actor, provider, link and route as added', () => {
    const to: AppSpec = { name: 'shop', actors: [actor({ links: [{ provider: 'keyvalue-nats', config: { bucket: 'carts' } }], routes: [{ prefix: '/api', host: 'shop.example.com' }] })], providers: [{ kind: 'keyvalue-nats', replicas: 'all', spread: [] }] };
    expect(diffSpecs(undefined, to).map(changeLine)).toEqual([
      '+ actor api (1.0.0, 2 replicas)',
      '+ provider keyvalue-nats (all hosts)',
      '+ link api → keyvalue-nats (bucket=carts)',
      '+ route shop.example.com/api (→ api)',
    ]);
  });

  it('spec - version, source, replicas, spread, policy and canary changes; removals; routes moving between actors', () => {
    const from = spec([actor({ routes: [{ prefix: '/a' }] }), actor({ name: 'old' })]);
    const to = spec([actor({ version: '1.1.0', digest: D2, replicas: 'all', spread: [{ name: 'x', requirements: { cloud: 'aws' }, weight: 2 }], policy: { maxMemoryPages: 65 }, canary: { steps: [100] } }), actor({ name: 'web', routes: [{ prefix: '/a' }] })]);
    expect(diffSpecs(from, to).map(changeLine)).toEqual([
      '~ actor api: version 1.0.0 → 1.1.0, source 111111111111 → 222222222222, replicas 2 → all, spread default:1 → x:2, policy changed, canary added',
      '+ actor web (1.0.0, 2 replicas)',
      '- actor old',
      '~ route /a: actor api → web',
    ]);
    expect(diffSpecs(from, from)).toEqual([]);
  });

  it('spec - link config changes and provider replica changes', () => {
    const from: AppSpec = { name: 's', actors: [actor({ links: [{ provider: 'keyvalue-nats', config: { bucket: 'a' } }] })], providers: [{ kind: 'keyvalue-nats', replicas: 1, spread: [] }] };
    const to: AppSpec = { name: 's', actors: [actor({ links: [{ provider: 'keyvalue-nats', config: { bucket: 'b' } }] })], providers: [{ kind: 'keyvalue-nats', replicas: 2, spread: [] }] };
    expect(diffSpecs(from, to)).toEqual([
      { change: 'update', kind: 'provider', name: 'keyvalue-nats', details: ['replicas 1 → 2'] },
      { change: 'update', kind: 'link', name: 'api → keyvalue-nats', details: ['config bucket=a → bucket=b'] },
    ]);
  });
});

describe('ownership conflicts', () => {
  const mine = spec([actor({ routes: [{ prefix: '/api' }] })]);

  it('conflicts - none on an empty lattice, nor with own instances and own routes', () => {
    expect(findConflicts(mine, { apps: [revision(mine)], hosts: [host('h1', [inv('api', '0.9.0', { app: 'shop', revision: 1 })])], routes: [{ prefix: '/api', actor: 'api', createdAt: '' }] })).toEqual([]);
  });

  it('conflicts - an actor another app lists, or whose instances another app placed', () => {
    const other = revision(spec([actor()], 'blog'));
    expect(findConflicts(mine, { apps: [other], hosts: [], routes: [] })).toEqual(['actor api belongs to app blog: an actor name belongs to one app']);
    expect(findConflicts(mine, { apps: [{ ...other, deleting: true }], hosts: [], routes: [] })[0]).toContain('being deleted');
    expect(findConflicts(mine, { apps: [], hosts: [host('h1', [inv('api', '1.0.0', { app: 'blog', revision: 2 })])], routes: [] })).toEqual(['actor api runs on h1 placed by app blog: an actor name belongs to one app']);
  });

  it('conflicts - hand-started instances at another version are refused; at the same version they are not', () => {
    const hosts = [host('h1', [inv('api', '0.9.0')]), host('h2', [inv('api', '0.9.0'), inv('api', '1.0.0')])];
    expect(findConflicts(mine, { apps: [], hosts, routes: [] })).toEqual(['actor api@0.9.0 runs started by hand on h1, h2, and the app wants 1.0.0: stop it (`trellis stop actor api --version 0.9.0`) or apply version 0.9.0']);
    expect(findConflicts(mine, { apps: [], hosts: [host('h1', [inv('api', '1.0.0')])], routes: [] })).toEqual([]);
  });

  it('conflicts - a route another app routes, or routed by hand to an actor not of this app', () => {
    const blog = revision(spec([actor({ name: 'blog', routes: [{ prefix: '/api' }] })], 'blog'));
    expect(findConflicts(mine, { apps: [blog], hosts: [], routes: [] })).toEqual(['route /api is routed by app blog: an HTTP prefix (and host) is routed by one app']);
    expect(findConflicts(mine, { apps: [], hosts: [], routes: [{ prefix: '/api', actor: 'legacy', createdAt: '' }] })).toEqual(['route /api is routed by hand to actor legacy: delete it first (`trellis http route del /api`)']);
    // Same prefix on another host is another route.
    expect(findConflicts(mine, { apps: [], hosts: [], routes: [{ prefix: '/api', host: 'x.com', actor: 'legacy', createdAt: '' }] })).toEqual([]);
    // A route moving between this app's own actors is no conflict.
    expect(findConflicts(mine, { apps: [], hosts: [], routes: [{ prefix: '/api', actor: 'web', createdAt: '' }], current: spec([actor(), actor({ name: 'web' })]) })).toEqual([]);
  });
});

describe('shown status', () => {
  const s = spec([actor({ replicas: 5, spread: [{ name: 'aws', requirements: {}, weight: 60 }, { name: 'gcp', requirements: {}, weight: 40 }] }), actor({ name: 'all', replicas: 'all' })]);
  const status = (over: Partial<AppStatus>): AppStatus => ({ name: 'shop', revision: 1, phase: 'Deployed', actors: [], reasons: [], observedAt: 'now', ...over });

  it('status - largest remainder shares exact integers', () => {
    expect(shareOut(5, [60, 40])).toEqual([3, 2]);
    expect(shareOut(10, [1, 1, 1])).toEqual([4, 3, 3]);
    expect(shareOut(0, [1])).toEqual([0]);
    expect(shareOut(7, [50, 50])).toEqual([4, 3]);
  });

  it('status - no status yet: Deploying, desired from the spec, nothing running', () => {
    const shown = effectiveStatus(revision(s), undefined);
    expect(shown).toMatchObject({ name: 'shop', revision: 1, phase: 'Deploying' });
    expect(shown.actors).toEqual([
      { name: 'api', version: '1.0.0', desired: 5, running: 0, spreads: [{ name: 'aws', desired: 3, running: 0 }, { name: 'gcp', desired: 2, running: 0 }] },
      { name: 'all', version: '1.0.0', desired: 0, running: 0, spreads: [{ name: 'default', desired: 0, running: 0 }] },
    ]);
    expect(shown.reasons[0]).toMatch(/not reconciled yet/);
    expect(isDeployed(revision(s), undefined)).toBe(false);
  });

  it('status - a status of the current revision is shown as written; an older one means Deploying; deleting wins', () => {
    const ok = status({ actors: [{ name: 'api', version: '1.0.0', desired: 5, running: 5, spreads: [] }] });
    expect(effectiveStatus(revision(s), ok)).toBe(ok);
    expect(isDeployed(revision(s), ok)).toBe(true);
    const stale = effectiveStatus(revision(s, 2), ok);
    expect(stale).toMatchObject({ revision: 2, phase: 'Deploying', actors: ok.actors });
    expect(isDeployed(revision(s, 2), ok)).toBe(false);
    expect(effectiveStatus(revision(s, 1, { deleting: true }), ok).phase).toBe('Deleting');
    expect(isDeployed(revision(s, 1, { deleting: true }), ok)).toBe(false);
    expect(isDeployed(revision(s), status({ phase: 'Degraded' }))).toBe(false);
  });
});
