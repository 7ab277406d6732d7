import { describe, expect, it } from 'vitest';
import { CANARY_DEFAULTS } from '../apps/canary.ts';
import { abort, begin, pause, promote, resume, start, tick } from '../canary/index.ts';
import type { AppActorSpec, AppRevision, HostInventory } from '../wire/index.ts';
import { canarySpecFromFlags, statusText, viewOf } from './flags.ts';
import { appSpecAtVersion, canaryServes, mayReplaceWeights, mergeDue, retireKind, windowFrom, windowKey, withWindowClock, compareVersions, desiredWeights, effectiveRevision, missingCanaryStarts, nextRecord, pendingManifestCanary, weightsMatch, type CanaryRecord } from './record.ts';

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

  it('canary record - weights written from a newer canary document are never replaced from an older one', () => {
    const w = { actor: 'api', weights: { '1.0.0': 100 }, updatedAt: '' };
    expect(mayReplaceWeights(undefined, { generation: 1, revision: 3 })).toBe(true);
    expect(mayReplaceWeights(w, { generation: 1, revision: 3 })).toBe(true);
    expect(mayReplaceWeights({ ...w, canary: { generation: 1, revision: 5 } }, { generation: 1, revision: 3 })).toBe(false);
    expect(mayReplaceWeights({ ...w, canary: { generation: 1, revision: 5 } }, { generation: 1, revision: 5 })).toBe(true);
    expect(mayReplaceWeights({ ...w, canary: { generation: 1, revision: 5 } }, { generation: 2, revision: 9 })).toBe(true);
  });

  it('canary record - a window begun by the CLI is marked for the leader to restamp on its own clock; the leader’s own are not', () => {
    const r = nextRecord(undefined, begin(started(), T0), {});
    const resumed = nextRecord(r, resume(pause(r, T0 + 1).state, T0 + 2) as never);
    expect(withWindowClock(r, resumed, false).windowReset).toBe(true);
    expect(withWindowClock(undefined, started(), false).windowReset).toBe(true);
    // A CLI change that leaves the window (pause) keeps a mark not yet restamped, and adds none.
    const paused = nextRecord(r, pause(r, T0 + 1) as never);
    expect(withWindowClock(r, paused, false).windowReset).toBeUndefined();
    expect(withWindowClock(r, { ...paused, windowReset: true }, false).windowReset).toBe(true);
    // The leader's window starts are its clock: no mark, and a new window clears an old one.
    expect(withWindowClock(r, { ...resumed, windowReset: true }, true).windowReset).toBeUndefined();
    expect(withWindowClock(r, { ...paused, windowReset: true }, true).windowReset).toBe(true);
  });

  it('canary record - the window leaves out the first report period; a waiting window is merged once per report period', () => {
    const r = nextRecord(undefined, begin(started(), T0), {});
    expect(windowFrom(r, 1000)).toBe(T0 + 1000);
    expect(mergeDue(undefined, r, T0, 1000)).toBe(true);
    expect(mergeDue({ key: windowKey(r), at: T0 + 5000 }, r, T0 + 5250, 1000)).toBe(false);
    expect(mergeDue({ key: windowKey(r), at: T0 + 5000 }, r, T0 + 6000, 1000)).toBe(true);
    // A new window (or run) is merged at once.
    expect(mergeDue({ key: windowKey(r), at: T0 + 5000 }, { ...r, windowStartedAt: new Date(T0 + 5100).toISOString() }, T0 + 5250, 1000)).toBe(true);
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

  it('canary record - an ended run stops holding the app: a roll back after promotion and later changes after a rollback are planned as written', () => {
    const canary = actorSpec('1.1.0', D2, { canary: { ...spec } as never });
    const base = nextRecord(undefined, start(undefined, { actor: 'api', app: 'shop', stable: '1.0.0', canary: '1.1.0', canaryDigest: D2, spec }, T0), { stableSpec: actorSpec('1.0.0', D1), canarySpec: canary });
    const plan = (app: AppRevision, r: CanaryRecord) => effectiveRevision(app, new Map([['api', r]]), []).spec.actors.map((a) => `${a.version} x${a.replicas}`);
    const promoted = nextRecord(base, promote(nextRecord(base, begin(base, T0)), { full: true }, T0 + 5) as never);
    const moving = { ...promoted, retiredAt: 'now' };
    // Retired while the app still names the old stable: the promoted version, until the app moves.
    expect(plan(revision([actorSpec('1.0.0', D1)]), moving)).toEqual(['1.1.0 x2']);
    // The app moved (effects done): `trellis rollback app` / re-applying v1 is honoured.
    const done = { ...moving, pending: [] };
    expect(plan(revision([actorSpec('1.0.0', D1, { replicas: 5 })]), done)).toEqual(['1.0.0 x5']);
    // Rolled back: the app still naming the rejected version is held at stable, with its current settings.
    const rolled = nextRecord(base, tick(nextRecord(base, begin(base, T0)), { kind: 'rollback', reason: 'bad', numbers: {}, generation: 1, step: 1 }, T0 + 5));
    const held = effectiveRevision(revision([{ ...canary, replicas: 3 }]), new Map([['api', rolled]]), []).spec.actors;
    expect(held.map((a) => `${a.version} x${a.replicas} ${a.digest}`)).toEqual([`1.0.0 x3 ${D1}`]);
    // The app back at stable with more replicas: planned as written, not from the frozen snapshot.
    expect(plan(revision([actorSpec('1.0.0', D1, { replicas: 5 })]), rolled)).toEqual(['1.0.0 x5']);
    const kept = { ...rolled, spec: { ...rolled.spec, keepCanaryOnRollback: true } };
    expect(plan(revision([actorSpec('1.0.0', D1, { replicas: 5 })]), kept)).toEqual(['1.0.0 x5', '1.1.0 x2']);
  });

  it('canary record - set-app-version moves the actor to the canary spec once, keeping its canary block', () => {
    const stable = actorSpec('1.0.0', D1, { canary: { ...spec } as never });
    const app = revision([stable, { ...actorSpec('1.0.0', D1), name: 'web' }]);
    const target = actorSpec('1.1.0', D2);
    const moved = appSpecAtVersion(app, 'api', target, '1.0.0')!;
    expect(moved.actors.map((a) => `${a.name}@${a.version}`)).toEqual(['api@1.1.0', 'web@1.0.0']);
    expect(moved.actors[0]!.canary).toBeDefined();
    expect(appSpecAtVersion(revision(moved.actors), 'api', target, '1.0.0')).toBeUndefined();
    // Nothing to do (done, not retried for ever): the actor left the app, or a newer apply names a third version.
    expect(appSpecAtVersion(revision([{ ...actorSpec('1.0.0', D1), name: 'web' }]), 'api', target, '1.0.0')).toBeUndefined();
    expect(appSpecAtVersion(revision([actorSpec('2.0.0', D1)]), 'api', target, '1.0.0')).toBeUndefined();
    expect(appSpecAtVersion(revision([actorSpec('1.1.0', D1, { replicas: 7 })]), 'api', target, '1.0.0')).toBeUndefined();
  });

  it('canary record - a run started before the promoted run’s effects are done: they keep their own version and spec', () => {
    const app = 'shop';
    const v11 = actorSpec('1.1.0', D2);
    const first = nextRecord(undefined, start(undefined, { actor: 'api', app, stable: '1.0.0', canary: '1.1.0', canaryDigest: D2, spec }, T0), { stableSpec: actorSpec('1.0.0', D1), canarySpec: v11 });
    const promoted = nextRecord(first, promote(nextRecord(first, begin(first, T0)), { full: true }, T0 + 5) as never);
    expect(promoted.pending).toContainEqual({ kind: 'set-app-version', app, version: '1.1.0', from: '1.0.0', spec: v11 });
    // A CLI start of 1.2.0 right away: the next generation, with its own canarySpec.
    const v12 = actorSpec('1.2.0', D1);
    const second = nextRecord(promoted, start(promoted, { actor: 'api', app, canary: '1.2.0', canaryDigest: D1, spec }, T0 + 6), { stableSpec: v11, canarySpec: v12 });
    expect(second.generation).toBe(2);
    const move = second.pending.find((e) => e.kind === 'set-app-version')!;
    // The app moves to the promoted 1.1.0, never to the unvalidated 1.2.0.
    expect(move).toMatchObject({ version: '1.1.0', spec: v11 });
    const moved = appSpecAtVersion(revision([actorSpec('1.0.0', D1)]), 'api', (move as { spec: AppActorSpec }).spec, '1.0.0')!;
    expect(moved.actors.map((a) => a.version)).toEqual(['1.1.0']);
    expect(second.pending).toContainEqual({ kind: 'retire-version', version: '1.0.0' });
    // The old stable is still retired under the new run (it was dropped as "not Promoted" before).
    expect(retireKind(second, '1.0.0')).toBe('other');
    expect(retireKind(promoted, '1.0.0')).toBe('own');
    expect(retireKind(second, '1.1.0')).toBe('skip');
    // Meanwhile the reconciler runs the new run's stable and canary, though the app still names 1.0.0.
    expect(effectiveRevision(revision([actorSpec('1.0.0', D1)]), new Map([['api', second]]), []).spec.actors.map((a) => a.version)).toEqual(['1.1.0', '1.2.0']);
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
    // The keys are always in the JSON: null without data (no window judged, no latency yet).
    expect(view.window.canary).toEqual({ requests: 20, failures: 1, successRate: 0.95, p50Ms: null, p99Ms: null });
    const fresh = viewOf(started());
    expect(fresh.weight).toEqual({ set: 0, actual: null });
    expect(fresh.window.stable).toEqual({ requests: 0, failures: 0, successRate: null, p50Ms: null, p99Ms: null });
    expect(statusText(fresh)).toContain('actual -');
  });
});
