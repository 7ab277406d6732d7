import { describe, expect, it } from 'vitest';
import { CANARY_DEFAULTS } from '../apps/canary.ts';
import { abort, begin, promote, start, tick } from '../canary/index.ts';
import type { AppActorSpec, AppRevision, HostInventory } from '../wire/index.ts';
import { canarySpecFromFlags, statusText, viewOf } from './flags.ts';
import { appSpecAtVersion, canaryServes, compareVersions, desiredWeights, effectiveRevision, missingCanaryStarts, nextRecord, pendingManifestCanary, weightsMatch, type CanaryRecord } from './record.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const spec = { ...CANARY_DEFAULTS, steps: [10, 50, 100], intervalMs: 1000, minRequests: 10 };
const T0 = Date.parse('2026-01-01T00:00:00Z');

function host(id: string, actors: { name?: string; version: string; instances?: number; app?: string; digest?: string }[]): HostInventory {
  return {
    id,
    name: id,
    lattice: 'l',
    labels: {},
    version: '0',
    startedAt: '',
    uptimeMs: 0,
    providers: [],
    actors: actors.map((a) => ({ name: a.name ?? 'api', version: a.version, digest: a.digest ?? D1, world: 'actor', instances: a.instances ?? 1, maxConcurrency: 1, startedAt: '', ...(a.app ? { owner: { app: a.app, revision: 1 } } : {}) })),
  };
}

const actorSpec = (version: string, digest: string, extra: Partial<AppActorSpec> = {}): AppActorSpec => ({ name: 'api', version, digest, replicas: 2, spread: [{ name: 'default', requirements: {}, weight: 1 }], policy: {}, links: [], routes: [], ...extra });
const revision = (actors: AppActorSpec[], rev = 2): AppRevision => ({ name: 'shop', revision: rev, specHash: 'x', createdAt: '', spec: { name: 'shop', actors, providers: [] } });

function started(extra: Partial<CanaryRecord> = {}): CanaryRecord {
  const t = start(undefined, { actor: 'api', stable: '1.0.0', canary: '1.1.0', canaryDigest: D2, spec }, T0);
  return nextRecord(undefined, t, extra);
}

describe('canary controller rules', () => {
  it('canary record - a transition queues its effects, a new generation keeps the replaced run’s effects', () => {
    let r = started({ startInstances: true });
    expect(r.pending).toEqual([]);
    r = nextRecord(r, begin(r, T0 + 10));
    const aborted = abort(r, T0 + 20);
    const after = nextRecord(r, aborted as never);
    expect(after.phase).toBe('Aborted');
    expect(after.startInstances).toBe(true);
    expect(after.pending).toEqual([{ kind: 'stop-version', version: '1.1.0', reason: expect.any(String) }]);
    const restarted = nextRecord(after, start(after, { actor: 'api', canary: '1.2.0', spec }, T0 + 30));
    expect(restarted.generation).toBe(2);
    expect(restarted.pending).toHaveLength(1);
    // The same effect queued twice stays one.
    expect(nextRecord(after, { ...aborted, state: after } as never).pending).toHaveLength(1);
  });

  it('canary record - the weights each phase calls for; zero weights count as absent when comparing', () => {
    const r = started();
    expect(desiredWeights(r)).toEqual({ weights: { '1.0.0': 100 } });
    const stepped = nextRecord(r, begin(r, T0 + 1));
    expect(desiredWeights(stepped)).toEqual({ weights: { '1.0.0': 90, '1.1.0': 10 } });
    const promoted = nextRecord(stepped, promote(stepped, { full: true }, T0 + 2) as never);
    expect(desiredWeights(promoted)).toEqual({ weights: { '1.1.0': 100 } });
    expect(weightsMatch({ actor: 'api', weights: { '1.1.0': 100, '1.0.0': 0 }, updatedAt: '' }, desiredWeights(promoted))).toBe(true);
    expect(weightsMatch({ actor: 'api', weights: { '1.0.0': 100 }, updatedAt: '' }, desiredWeights(promoted))).toBe(false);
    expect(weightsMatch(undefined, desiredWeights(promoted))).toBe(false);
    const sticky = nextRecord(undefined, begin(nextRecord(undefined, start(undefined, { actor: 'api', stable: '1.0.0', canary: '1.1.0', spec: { ...spec, stickyHeader: 'x-user' } }, T0)), T0));
    expect(desiredWeights(sticky).sticky).toEqual({ header: 'x-user', canary: '1.1.0' });
    expect(weightsMatch({ actor: 'api', weights: { '1.0.0': 90, '1.1.0': 10 }, updatedAt: '' }, desiredWeights(sticky))).toBe(false);
  });

  it('canary record - --source starts the canary on the stable hosts with the same counts; it serves once all run', () => {
    const r = started({ startInstances: true });
    const hosts = [host('a', [{ version: '1.0.0', instances: 2 }]), host('b', [{ version: '1.0.0' }, { version: '1.1.0' }]), host('c', [])];
    expect(missingCanaryStarts(r, hosts)).toEqual([{ hostId: 'a', count: 2 }]);
    expect(canaryServes(r, hosts)).toBe(false);
    hosts[0]!.actors.push({ ...hosts[0]!.actors[0]!, version: '1.1.0', instances: 2 });
    expect(canaryServes(r, hosts)).toBe(true);
    // Without --source: anywhere is enough, and nothing is started.
    const byHand = started();
    expect(missingCanaryStarts(byHand, [host('a', [{ version: '1.0.0' }])])).toEqual([]);
    expect(canaryServes(byHand, [host('a', [{ version: '1.0.0' }])])).toBe(false);
    expect(canaryServes(byHand, [host('a', [{ version: '1.1.0' }])])).toBe(true);
  });

  it('canary record - an apply of a new version with a canary block is held at the running version until its run starts', () => {
    const canary = actorSpec('1.1.0', D2, { canary: { ...spec } as never });
    const app = revision([canary]);
    const hosts = [host('a', [{ version: '1.0.0', app: 'shop' }])];
    const due = pendingManifestCanary(app, canary, undefined, hosts)!;
    expect(due.stable).toBe('1.0.0');
    expect(due.stableSpec).toMatchObject({ version: '1.0.0', digest: D1 });
    expect(due.stableSpec.canary).toBeUndefined();
    const held = effectiveRevision(app, new Map(), hosts);
    expect(held.spec.actors.map((a) => a.version)).toEqual(['1.0.0']);
    // First deploy (nothing runs): no canary, the revision as it is.
    expect(pendingManifestCanary(app, canary, undefined, [])).toBeUndefined();
    expect(effectiveRevision(app, new Map(), [])).toBe(app);
  });

  it('canary record - the reconciler runs both versions while a run is active, keeps stable after rollback, retires it after promotion', () => {
    const canary = actorSpec('1.1.0', D2, { canary: { ...spec } as never });
    const app = revision([canary]);
    const base = nextRecord(undefined, start(undefined, { actor: 'api', app: 'shop', stable: '1.0.0', canary: '1.1.0', canaryDigest: D2, spec }, T0), { stableSpec: actorSpec('1.0.0', D1), canarySpec: canary });
    const versions = (r: CanaryRecord) => effectiveRevision(app, new Map([['api', r]]), []).spec.actors.map((a) => a.version);
    expect(versions(base)).toEqual(['1.0.0', '1.1.0']);
    const rolled = nextRecord(base, tick(nextRecord(base, begin(base, T0)), { kind: 'rollback', reason: 'bad', numbers: {}, generation: 1, step: 1 }, T0 + 5));
    expect(rolled.phase).toBe('RolledBack');
    expect(versions(rolled)).toEqual(['1.0.0']);
    expect(versions({ ...rolled, spec: { ...rolled.spec, keepCanaryOnRollback: true } })).toEqual(['1.0.0', '1.1.0']);
    const promoted = nextRecord(base, promote(nextRecord(base, begin(base, T0)), { full: true }, T0 + 5) as never);
    expect(versions(promoted)).toEqual(['1.0.0', '1.1.0']);
    expect(versions({ ...promoted, retiredAt: 'now' })).toEqual(['1.1.0']);
    // Once retired, a later apply at the canary's version (say, more replicas) is planned as applied.
    const more = revision([{ ...canary, replicas: 5 }], 3);
    expect(effectiveRevision(more, new Map([['api', { ...promoted, retiredAt: 'now' }]]), []).spec.actors[0]!.replicas).toBe(5);
    // A later apply of another version is a new canary, against the promoted one.
    const next = actorSpec('1.2.0', D1, { canary: { ...spec } as never });
    const due = pendingManifestCanary(revision([next], 4), next, { ...promoted, retiredAt: 'now' }, [host('a', [{ version: '1.1.0', app: 'shop', digest: D2 }])]);
    expect(due?.stable).toBe('1.1.0');
    expect(due?.stableSpec.version).toBe('1.1.0');
    expect(pendingManifestCanary(app, canary, promoted, [])).toBeUndefined();
  });

  it('canary record - set-app-version moves the actor to the canary spec once, keeping its canary block', () => {
    const stable = actorSpec('1.0.0', D1, { canary: { ...spec } as never });
    const app = revision([stable, { ...actorSpec('1.0.0', D1), name: 'web' }]);
    const r = { ...started(), app: 'shop', stableSpec: actorSpec('1.0.0', D1), canarySpec: actorSpec('1.1.0', D2) };
    const moved = appSpecAtVersion(app, r)!;
    expect(moved.actors.map((a) => `${a.name}@${a.version}`)).toEqual(['api@1.1.0', 'web@1.0.0']);
    expect(moved.actors[0]!.canary).toBeDefined();
    expect(appSpecAtVersion(revision(moved.actors), r)).toBeUndefined();
  });

  it('canary record - versions sort numerically, a pre-release before its release', () => {
    expect(['1.10.0', '1.2.0', '1.2.0-rc.1', '0.9.9'].sort(compareVersions)).toEqual(['0.9.9', '1.2.0-rc.1', '1.2.0', '1.10.0']);
  });

  it('canary flags - flags become the manifest’s complete spec; problems name the flag', () => {
    expect(canarySpecFromFlags({})).toEqual(CANARY_DEFAULTS);
    expect(canarySpecFromFlags({ steps: '5,100', interval: 2000, successRate: '0.9', stickyHeader: 'X-User' })).toMatchObject({ steps: [5, 100], intervalMs: 2000, successRate: 0.9, stickyHeader: 'x-user' });
    expect(() => canarySpecFromFlags({ steps: '50,10' })).toThrow(/--steps: must ascend/);
    expect(() => canarySpecFromFlags({ steps: 'ten' })).toThrow(/--steps/);
    expect(() => canarySpecFromFlags({ successRate: 'high' })).toThrow(/--success-rate/);
    expect(() => canarySpecFromFlags({ stickyHeader: 'a', stickyCookie: 'b' })).toThrow(/--sticky-cookie/);
    expect(() => canarySpecFromFlags({ interval: 10 })).toThrow(expect.objectContaining({ code: 'TRELLIS_BAD_OPTION' }));
  });

  it('canary status - the view carries the last judged window; the table shows phase, step and both versions', () => {
    const r = nextRecord(undefined, begin(started(), T0), { lastWindow: { at: '', actual: 9.5, stable: { requests: 190, failures: 0, successRate: 1, p50Ms: 1, p99Ms: 2 }, canary: { requests: 20, failures: 1, successRate: 0.95 } } });
    const view = viewOf(r);
    expect(view).toMatchObject({ actor: 'api', phase: 'Progressing', step: 1, weight: { set: 10, actual: 9.5 }, window: { canary: { requests: 20, successRate: 0.95 } } });
    const text = statusText(view);
    expect(text).toContain('Progressing');
    expect(text).toContain('[10] → 50 → 100');
    expect(text).toMatch(/1\.1\.0 \(canary\)\s+20\s+95\.00%/);
  });
});
