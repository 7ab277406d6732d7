import { describe, expect, it } from 'vitest';
import { applyPlan, plan } from './index.ts';
import type { PlacementHost } from './index.ts';
import { actor, app, converge, counts, digest, host, random, spread, total } from './test-fixtures.ts';

const owner = (app: string, revision = 1) => ({ app, revision });
const steps = (s: string[][]) => s.filter((x) => x.length > 0);

describe('plan: rolling update', () => {
  it('runs two versions of one actor side by side (a canary), then retires the one dropped', () => {
    const canary = app('shop', [actor('api', 3), actor('api', 1, { version: '1.1.0', digest: digest(2) })]);
    const { hosts, last } = converge([canary], [host('a'), host('b')]);
    expect(total(counts(hosts, 'api', { version: '1.0.0' }))).toBe(3);
    expect(total(counts(hosts, 'api', { version: '1.1.0' }))).toBe(1);
    expect(last.apps[0]!.actors.map((a) => [a.version, a.current, a.desired, a.running])).toEqual([
      ['1.0.0', true, 3, 3],
      ['1.1.0', true, 1, 1],
    ]);
    const promoted = app('shop', [actor('api', 4, { version: '1.1.0', digest: digest(2) })], { revision: 2 });
    const done = converge([promoted], hosts, { check: (s) => expect(total(counts(s, 'api'))).toBeGreaterThanOrEqual(4) });
    expect(counts(done.hosts, 'api')).toEqual(counts(done.hosts, 'api', { version: '1.1.0' }));
    expect(total(counts(done.hosts, 'api'))).toBe(4);
  });

  it('places the new version in full before the old one stops, step by step', () => {
    const v1 = app('shop', [actor('api', 3)]);
    const { hosts } = converge([v1], [host('a'), host('b'), host('c')]);
    const v2 = app('shop', [actor('api', 3, { version: '1.1.0', digest: digest(2) })], { revision: 2 });

    // Step 1: the surge. Three starts of 1.1.0, nothing stops.
    const s1 = plan({ apps: [v2], hosts });
    expect(s1.actions.map((a) => `${a.kind} ${a.hostId} ${a.version} ${a.count} ${a.reason}`)).toEqual(['start a 1.1.0 1 update', 'start b 1.1.0 1 update', 'start c 1.1.0 1 update']);
    expect(s1.targets.filter((t) => t.version === '1.0.0').map((t) => t.owner)).toEqual([owner('shop'), owner('shop'), owner('shop')]);

    // Step 2: one start failed (the host is slow, or it failed): 2 of 3 run, the old stays.
    const h2 = applyPlan(hosts, s1, { fails: (a) => a.hostId === 'c' });
    const s2 = plan({ apps: [v2], hosts: h2 });
    expect(s2.actions.map((a) => `${a.kind} ${a.hostId} ${a.version} ${a.count}`)).toEqual(['start c 1.1.0 1']);
    expect(s2.apps[0]!.actors.map((a) => [a.version, a.current, a.desired, a.running])).toEqual([
      ['1.1.0', true, 3, 2],
      ['1.0.0', false, 0, 3],
    ]);

    // Step 3: all of 1.1.0 runs: now, and only now, 1.0.0 retires.
    const h3 = applyPlan(h2, s2);
    const s3 = plan({ apps: [v2], hosts: h3 });
    expect(s3.actions.map((a) => `${a.kind} ${a.hostId} ${a.version} ${a.reason}`)).toEqual(['stop a 1.0.0 retire', 'stop b 1.0.0 retire', 'stop c 1.0.0 retire']);
    expect(s3.actions.every((a) => a.owner.revision === 1)).toBe(true);

    // Step 4: a fixed point with 1.1.0 only.
    const h4 = applyPlan(h3, s3);
    expect(plan({ apps: [v2], hosts: h4 }).actions).toEqual([]);
    expect(counts(h4, 'api', { version: '1.1.0' })).toEqual({ a: 1, b: 1, c: 1 });
    expect(counts(h4, 'api', { version: '1.0.0' })).toEqual({});
  });

  it('never has zero ready instances, whatever fails along the way', () => {
    const v1 = app('shop', [actor('api', 2)]);
    const { hosts } = converge([v1], [host('a'), host('b')]);
    const v2 = app('shop', [actor('api', 2, { version: '2.0.0', digest: digest(2) })], { revision: 2 });
    let state = hosts;
    for (let round = 0; round < 6; round++) {
      const p = plan({ apps: [v2], hosts: state });
      // Starts fail for three rounds, then work.
      state = applyPlan(state, p, { fails: (a) => a.kind === 'start' && round < 3 });
      expect(total(counts(state, 'api'))).toBeGreaterThanOrEqual(2);
    }
    expect(counts(state, 'api')).toEqual(counts(state, 'api', { version: '2.0.0' }));
  });

  it('keeps every random rolling update at or above its ready count while starts fail at random', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const rnd = random(seed);
      const hosts = Array.from({ length: 1 + Math.floor(rnd() * 6) }, (_, i) => host(`h${i}`, { cloud: rnd() < 0.5 ? 'aws' : 'gcp' }));
      const replicas = rnd() < 0.25 ? ('all' as const) : 1 + Math.floor(rnd() * 8);
      const spreads = rnd() < 0.5 ? [spread('any')] : [spread('aws', { cloud: 'aws' }, 2), spread('gcp', { cloud: 'gcp' }, 1)];
      const v1 = app('shop', [actor('api', replicas, { spread: spreads })]);
      let state = converge([v1], hosts).hosts;
      const floor = total(counts(state, 'api'));
      // Half the updates change the version, half only the build (same version).
      const sameVersion = rnd() < 0.5;
      const v2 = app('shop', [actor('api', replicas, { spread: spreads, digest: digest(2), version: sameVersion ? '1.0.0' : '2.0.0' })], { revision: 2 });
      for (let round = 0; round < 40; round++) {
        const p = plan({ apps: [v2], hosts: state });
        state = applyPlan(state, p, { fails: (a) => a.kind === 'start' && round < 20 && rnd() < 0.4 });
        const ready = total(counts(state, 'api'));
        // A new version surges: never below where it started. A new build of the same version
        // may take one host's instances out at a time, never all of them.
        if (sameVersion) expect(ready).toBeGreaterThan(0);
        else expect(ready).toBeGreaterThanOrEqual(floor);
      }
      const done = converge([v2], state);
      // Done, unless a spread of the new revision cannot be satisfied (the old one then keeps
      // serving), or the only hosts that could take a same-version build run the old one.
      const reasons = done.last.apps[0]!.actors.flatMap((a) => a.spreads.map((sp) => sp.reason ?? ''));
      if (reasons.some((r) => r.endsWith('give the new build a new version'))) expect(sameVersion).toBe(true);
      else if (reasons.some((r) => r !== '')) expect(total(counts(done.hosts, 'api'))).toBeGreaterThanOrEqual(floor);
      else expect(total(counts(done.hosts, 'api', { digest: digest(2) }))).toBe(total(counts(done.hosts, 'api')));
    }
  });

  it('keeps the old version while the new one cannot be placed at all', () => {
    const v1 = app('shop', [actor('api', 2)]);
    const { hosts } = converge([v1], [host('a', { cloud: 'aws' })]);
    const v2 = app('shop', [actor('api', 2, { version: '2.0.0', digest: digest(2), spread: [spread('azure', { cloud: 'azure' })] })], { revision: 2 });
    const p = plan({ apps: [v2], hosts });
    expect(p.actions).toEqual([]);
    expect(p.apps[0]!.actors[0]!.spreads[0]!.reason).toBe('no host matches cloud=azure');
  });

  it('replaces a new build of the same version one host at a time', () => {
    const v1 = app('shop', [actor('agent', 'all')]);
    const { hosts } = converge([v1], [host('a'), host('b'), host('c')]);
    const v2 = app('shop', [actor('agent', 'all', { digest: digest(2) })], { revision: 2 });
    const seen: string[][] = [];
    const done = converge([v2], hosts, {
      check: (s, p) => {
        expect(total(counts(s, 'agent'))).toBeGreaterThanOrEqual(2);
        seen.push(p.actions.map((a) => `${a.kind} ${a.hostId} ${a.digest === digest(2) ? 'new' : 'old'} ${a.reason}`));
      },
    });
    expect(steps(seen)).toEqual([['stop a old free'], ['start a new update'], ['stop b old free'], ['start b new update'], ['stop c old free'], ['start c new place']]);
    expect(counts(done.hosts, 'agent', { digest: digest(2) })).toEqual({ a: 1, b: 1, c: 1 });
  });

  it('puts a new build of the same version where the old one does not run, without any stop first', () => {
    const v1 = app('shop', [actor('api', 2)]);
    const { hosts } = converge([v1], [host('a'), host('b')]);
    const v2 = app('shop', [actor('api', 2, { digest: digest(2) })], { revision: 2 });
    const first = plan({ apps: [v2], hosts: [...hosts, host('c')] });
    expect(first.actions.map((a) => `${a.kind} ${a.hostId} ${a.count}`)).toEqual(['start c 2']);
    const done = converge([v2], [...hosts, host('c')], { check: (s) => expect(total(counts(s, 'api'))).toBeGreaterThanOrEqual(2) });
    expect(total(counts(done.hosts, 'api', { digest: digest(2) }))).toBe(2);
  });

  it('refuses to replace the only host of a same-version build, and says why', () => {
    const v1 = app('shop', [actor('api', 2)]);
    const { hosts } = converge([v1], [host('a')]);
    const v2 = app('shop', [actor('api', 2, { digest: digest(2) })], { revision: 2 });
    const p = plan({ apps: [v2], hosts });
    expect(p.actions).toEqual([]);
    expect(p.apps[0]!.actors[0]!.spreads[0]!.reason).toMatch(/^0 of 2 placed: of 1 host matching any host, 1 host run the previous build of api@1\.0\.0, .*give the new build a new version$/);
  });

  it('adopts groups of an older revision that still fit, without restarting them', () => {
    const { hosts } = converge([app('shop', [actor('api', 2), actor('web', 1, { digest: digest(3) })])], [host('a'), host('b')]);
    const r2 = app('shop', [actor('api', 2), actor('web', 2, { digest: digest(3) })], { revision: 2 });
    const p = plan({ apps: [r2], hosts });
    expect(p.actions.map((a) => `${a.kind} ${a.actor} ${a.hostId} ${a.from}→${a.count} ${a.reason}`)).toEqual([
      'adopt api a 1→1 adopt',
      'adopt api b 1→1 adopt',
      'adopt web a 1→1 adopt',
      'start web b 0→1 place',
    ]);
    const done = converge([r2], applyPlan(hosts, p));
    expect(done.rounds).toBe(0);
    expect(done.hosts.flatMap((h) => h.actors).map((g) => g.owner)).toEqual([owner('shop', 2), owner('shop', 2), owner('shop', 2), owner('shop', 2)]);
  });
});

describe('plan: ownership', () => {
  const handStarted = { name: 'api', version: '1.0.0', digest: digest(1), instances: 2 };
  const otherApp = { name: 'cron', version: '1.0.0', digest: digest(5), instances: 1, owner: owner('batch') };

  it('never touches hand-started instances or other apps, and does not share their host slot', () => {
    const hosts = [host('a', {}, [handStarted, otherApp]), host('b')];
    const shop = app('shop', [actor('api', 3)]);
    const p = plan({ apps: [shop], hosts });
    expect(p.actions.map((a) => `${a.kind} ${a.hostId} ${a.count}`)).toEqual(['start b 3']);
    expect(p.targets.map((t) => t.hostId)).toEqual(['b']);
    const done = converge([shop], hosts);
    expect(done.hosts.find((h) => h.id === 'a')!.actors).toEqual([handStarted, otherApp]);
  });

  it('explains a spread whose only host runs the actor by hand', () => {
    const p = plan({ apps: [app('shop', [actor('api', 1)])], hosts: [host('a', {}, [handStarted])] });
    expect(p.apps[0]!.actors[0]!.spreads[0]!.reason).toBe('0 of 1 placed: of 1 host matching any host, 1 host already run api@1.0.0 started by hand');
  });

  it('leaves groups of apps it was not given alone (a failed read must not stop anything)', () => {
    const hosts = [host('a', {}, [otherApp])];
    expect(plan({ apps: [app('shop', [actor('api', 1)])], hosts }).actions.filter((a) => a.actor === 'cron')).toEqual([]);
  });

  it('stops an actor dropped from the app at once, and only the app’s own groups', () => {
    const { hosts } = converge([app('shop', [actor('api', 2), actor('web', 1, { digest: digest(3) })])], [host('a', {}, [otherApp]), host('b')]);
    const r2 = app('shop', [actor('api', 2)], { revision: 2 });
    const p = plan({ apps: [r2], hosts });
    expect(p.actions.filter((a) => a.kind === 'stop').map((a) => `${a.actor} ${a.reason} ${a.owner.revision}`)).toEqual(['web remove 1']);
  });

  it('plans a deleting app to zero: every group stops, every reference drops, nothing else moves', () => {
    const kv = { kind: 'keyvalue-nats', replicas: 'all' as const, spread: [spread('any')] };
    const shop = app('shop', [actor('api', 3)], { providers: [kv] });
    const batch = app('batch', [actor('cron', 1, { digest: digest(5) })], { providers: [kv] });
    const { hosts } = converge([shop, batch], [host('a', {}, [{ ...handStarted, name: 'tool' }]), host('b')]);
    const deleting = { ...shop, deleting: true };
    const p = plan({ apps: [deleting, batch], hosts });
    expect(p.actions.map((a) => `${a.kind} ${a.actor} ${a.hostId} ${a.reason}`).sort()).toEqual(['stop api a remove', 'stop api b remove']);
    expect(p.providers.map((a) => `${a.kind} ${a.provider} ${a.hostId} ${a.app}`)).toEqual(['drop keyvalue-nats a shop', 'drop keyvalue-nats b shop']);
    const done = converge([deleting, batch], hosts);
    expect(counts(done.hosts, 'api')).toEqual({});
    expect(counts(done.hosts, 'cron')).toEqual(counts(hosts, 'cron'));
    expect(counts(done.hosts, 'tool')).toEqual({ a: 2 });
    // The provider keeps running for batch.
    expect(done.hosts.map((h) => h.providers.map((x) => x.owners))).toEqual([[['batch']], [['batch']]]);
  });

  it('freezes an app whose spec cannot be planned, and plans the others', () => {
    const { hosts } = converge([app('shop', [actor('api', 2)])], [host('a')]);
    const bad = app('shop', [actor('api', 4, { spread: [spread('aws', { cloud: 'aws' }, 0)] })], { revision: 2 });
    const p = plan({ apps: [bad, app('blog', [actor('web', 1, { digest: digest(4) })])], hosts });
    expect(p.apps.find((a) => a.name === 'shop')!.error).toBe('spec.actors[0].spread[0].weight: must be a positive integer');
    expect(p.actions.map((a) => a.actor)).toEqual(['web']);
    expect(p.targets.filter((t) => t.actor === 'api').map((t) => t.count)).toEqual([2]);
  });
});

describe('plan: providers', () => {
  const kv = (replicas: number | 'all', spreads = [spread('any')]) => ({ kind: 'keyvalue-nats', replicas, spread: spreads });

  it('takes a reference on every eligible host for "all", and on a joining host', () => {
    const shop = app('shop', [], { providers: [kv('all')] });
    const first = plan({ apps: [shop], hosts: [host('a'), host('b')] });
    expect(first.providers.map((p) => `${p.kind} ${p.hostId}`)).toEqual(['take a', 'take b']);
    const { hosts } = converge([shop], [host('a'), host('b')]);
    expect(plan({ apps: [shop], hosts: [...hosts, host('c')] }).providers.map((p) => `${p.kind} ${p.hostId}`)).toEqual(['take c']);
  });

  it('prefers hosts that run the provider already and says when a spread is short', () => {
    const running: PlacementHost['providers'] = [{ name: 'keyvalue-nats', health: 'ok', manual: true }];
    const shop = app('shop', [], { providers: [kv(3, [spread('aws', { cloud: 'aws' })])] });
    const p = plan({ apps: [shop], hosts: [host('a', { cloud: 'aws' }), host('b', { cloud: 'aws' }, [], running), host('c', { cloud: 'gcp' })] });
    expect(p.providers.map((x) => `${x.kind} ${x.hostId}`)).toEqual(['take a', 'take b']);
    expect(p.apps[0]!.providers[0]!.spreads[0]!.reason).toBe('2 of 3 placed: a host runs a provider once, and 2 hosts match cloud=aws');
  });

  it('lets go of references when the app no longer lists the provider', () => {
    const { hosts } = converge([app('shop', [], { providers: [kv('all')] })], [host('a')]);
    const p = plan({ apps: [app('shop', [], { revision: 2 })], hosts });
    expect(p.providers).toEqual([{ kind: 'drop', hostId: 'a', provider: 'keyvalue-nats', app: 'shop', reason: 'remove' }]);
  });

  it('keeps a reference on a held-out host while it fits', () => {
    const { hosts } = converge([app('shop', [], { providers: [kv(1)] })], [host('a')]);
    expect(plan({ apps: [app('shop', [], { providers: [kv(1)] })], hosts: [...hosts, host('b')], heldOut: ['a'] }).providers).toEqual([]);
  });

  it('drops a healthy reference only once its replacement is healthy', () => {
    const { hosts } = converge([app('shop', [], { providers: [kv(1)] })], [host('a', { cloud: 'aws' }), host('b', { cloud: 'gcp' })]);
    expect(hosts.map((h) => h.providers.length)).toEqual([1, 0]);
    const moved = app('shop', [], { revision: 2, providers: [kv(1, [spread('gcp', { cloud: 'gcp' })])] });
    const p1 = plan({ apps: [moved], hosts });
    expect(p1.providers.map((x) => `${x.kind} ${x.hostId}`)).toEqual(['take b']);
    // b's provider is still starting: a stays.
    const starting = applyPlan(hosts, p1).map((h) => ({ ...h, providers: h.providers.map((x) => (h.id === 'b' ? { ...x, health: 'starting' as const } : x)) }));
    expect(plan({ apps: [moved], hosts: starting }).providers).toEqual([]);
    const p3 = plan({ apps: [moved], hosts: applyPlan(hosts, p1) });
    expect(p3.providers.map((x) => `${x.kind} ${x.hostId} ${x.reason}`)).toEqual(['drop a scale-down']);
  });
});
