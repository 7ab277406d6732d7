import { describe, expect, it } from 'vitest';
import { applyPlan, largestRemainder, plan } from './index.ts';
import type { PlacementHost } from './index.ts';
import { actor, app, converge, counts, digest, host, random, spread, total } from './test-fixtures.ts';

describe('largestRemainder', () => {
  it('shares exact integers by largest remainder', () => {
    expect(largestRemainder(5, [60, 40])).toEqual([3, 2]);
    expect(largestRemainder(5, [50, 50])).toEqual([3, 2]);
    expect(largestRemainder(7, [1, 1, 1])).toEqual([3, 2, 2]);
    expect(largestRemainder(10, [1, 1, 1])).toEqual([4, 3, 3]);
    expect(largestRemainder(2, [1, 1, 1])).toEqual([1, 1, 0]);
    expect(largestRemainder(100, [33, 33, 34])).toEqual([33, 33, 34]);
    expect(largestRemainder(0, [3, 1])).toEqual([0, 0]);
    expect(largestRemainder(4, [1])).toEqual([4]);
  });

  it('gives the leftover unit to the largest remainder, ties to the earlier weight', () => {
    // Quotas 1.5, 1.2, 0.3 for 3 → floors 1,1,0 and one unit left: the 0.5 remainder wins.
    expect(largestRemainder(3, [5, 4, 1])).toEqual([2, 1, 0]);
    // Quotas 1.0, 0.5, 0.5 → the tie goes to the earlier spread.
    expect(largestRemainder(2, [2, 1, 1])).toEqual([1, 1, 0]);
    expect(largestRemainder(2, [1, 1, 2])).toEqual([1, 0, 1]);
  });

  it('always sums to the total and stays within one of the quota', () => {
    for (let total = 0; total < 40; total++) {
      for (const weights of [[1], [1, 2], [3, 3, 3], [7, 1, 1, 5], [60, 40], [1, 1, 1, 1, 1, 1, 1]]) {
        const shares = largestRemainder(total, weights);
        const sum = weights.reduce((a, b) => a + b, 0);
        expect(shares.reduce((a, b) => a + b, 0)).toBe(total);
        shares.forEach((s, i) => expect(Math.abs(s - (total * weights[i]!) / sum)).toBeLessThan(1));
      }
    }
  });

  it('refuses weights that are not positive integers', () => {
    expect(() => largestRemainder(3, [1, 0])).toThrow(RangeError);
    expect(() => largestRemainder(3, [1.5])).toThrow(RangeError);
    expect(() => largestRemainder(-1, [1])).toThrow(RangeError);
  });
});

const cloudHosts = (): PlacementHost[] => [
  host('h1', { cloud: 'aws', region: 'eu' }),
  host('h2', { cloud: 'aws', region: 'us' }),
  host('h3', { cloud: 'gcp', region: 'eu' }),
  host('h4', { cloud: 'gcp', region: 'us' }),
  host('h5', { cloud: 'gcp', region: 'asia' }),
];

describe('plan: spreads', () => {
  it('lands a 60/40 spread of 5 replicas over 5 hosts by cloud exactly (3/2)', () => {
    const shop = app('shop', [actor('api', 5, { spread: [spread('aws', { cloud: 'aws' }, 60), spread('gcp', { cloud: 'gcp' }, 40)] })]);
    const p = plan({ apps: [shop], hosts: cloudHosts() });
    expect(p.actions.every((a) => a.kind === 'start' && a.reason === 'place')).toBe(true);
    const { hosts } = converge([shop], cloudHosts());
    const c = counts(hosts, 'api');
    expect(c.h1! + c.h2!).toBe(3);
    expect((c.h3 ?? 0) + (c.h4 ?? 0) + (c.h5 ?? 0)).toBe(2);
    // Least loaded first: 2/1 on aws, 1/1/0 on gcp.
    expect(c).toEqual({ h1: 2, h2: 1, h3: 1, h4: 1 });
    const spreads = p.apps[0]!.actors[0]!.spreads;
    expect(spreads).toEqual([
      { name: 'aws', desired: 3, placed: 3, running: 0 },
      { name: 'gcp', desired: 2, placed: 2, running: 0 },
    ]);
  });

  it('honours several label requirements at once', () => {
    const shop = app('shop', [actor('api', 4, { spread: [spread('gcp-eu', { cloud: 'gcp', region: 'eu' })] })]);
    const { hosts } = converge([shop], cloudHosts());
    expect(counts(hosts, 'api')).toEqual({ h3: 4 });
  });

  it('leaves an unsatisfiable spread unplaced with its reason and other apps unaffected', () => {
    const shop = app('shop', [actor('api', 4, { spread: [spread('aws', { cloud: 'aws' }), spread('azure', { cloud: 'azure' })] })]);
    const blog = app('blog', [actor('web', 3)]);
    const { hosts, last } = converge([shop, blog], cloudHosts());
    expect(total(counts(hosts, 'api'))).toBe(2);
    expect(total(counts(hosts, 'web'))).toBe(3);
    const shopPlan = last.apps.find((a) => a.name === 'shop')!;
    expect(shopPlan.actors[0]!.spreads[1]).toEqual({ name: 'azure', desired: 2, placed: 0, running: 0, reason: 'no host matches cloud=azure' });
    const blogPlan = last.apps.find((a) => a.name === 'blog')!;
    expect(blogPlan.actors[0]).toMatchObject({ desired: 3, placed: 3, running: 3 });
    expect(blogPlan.actors[0]!.spreads[0]!.reason).toBeUndefined();
  });

  it('lets a narrow spread claim its instances before an overlapping catch-all spread', () => {
    const shop = app('shop', [actor('api', 4, { spread: [spread('any', {}), spread('aws', { cloud: 'aws' })] })]);
    const { hosts, last } = converge([shop], cloudHosts());
    const c = counts(hosts, 'api');
    expect((c.h1 ?? 0) + (c.h2 ?? 0)).toBeGreaterThanOrEqual(2);
    expect(last.apps[0]!.actors[0]!.spreads.map((s) => [s.name, s.desired, s.running])).toEqual([
      ['any', 2, 2],
      ['aws', 2, 2],
    ]);
  });

  it('places "all" as one instance per eligible host, and on a host that joins', () => {
    const shop = app('shop', [actor('agent', 'all', { spread: [spread('gcp', { cloud: 'gcp' })] })]);
    const first = converge([shop], cloudHosts(), { heldOut: ['h5'] });
    expect(counts(first.hosts, 'agent')).toEqual({ h3: 1, h4: 1 });
    expect(first.last.apps[0]!.actors[0]).toMatchObject({ desired: 2, placed: 2, running: 2 });
    const joined = converge([shop], [...first.hosts, host('h6', { cloud: 'gcp' })], { heldOut: ['h5'] });
    expect(counts(joined.hosts, 'agent')).toEqual({ h3: 1, h4: 1, h6: 1 });
    expect(joined.rounds).toBe(1);
  });

  it('reports "all" with no eligible host', () => {
    const shop = app('shop', [actor('agent', 'all', { spread: [spread('azure', { cloud: 'azure' })] })]);
    const p = plan({ apps: [shop], hosts: cloudHosts() });
    expect(p.actions).toEqual([]);
    expect(p.apps[0]!.actors[0]!.spreads[0]!.reason).toBe('no host matches cloud=azure');
  });
});

describe('plan: least-loaded placement', () => {
  it('places on the least-loaded eligible host first, counting its own placements', () => {
    const hand = (n: number) => ({ name: 'other', version: '1.0.0', digest: digest(9), instances: n });
    const hosts = [host('a', {}, [hand(3)]), host('b', {}, [hand(1)]), host('c')];
    const shop = app('shop', [actor('api', 3)]);
    const p = plan({ apps: [shop], hosts });
    // c (0) → then b and c tie at 1: b has fewer of api → then c (1) before a (3).
    expect(p.actions.map((a) => [a.hostId, a.count])).toEqual([
      ['b', 1],
      ['c', 2],
    ]);
  });

  it('breaks ties by host id whatever order the hosts come in', () => {
    const shop = app('shop', [actor('api', 2)]);
    const a = plan({ apps: [shop], hosts: [host('z'), host('m'), host('a')] });
    const b = plan({ apps: [shop], hosts: [host('a'), host('z'), host('m')] });
    expect(a).toEqual(b);
    expect(a.actions.map((x) => x.hostId)).toEqual(['a', 'm']);
  });

  it('keeps held-out hosts for what already runs there, and gives their instances up first', () => {
    const owner = { app: 'shop', revision: 1 };
    const hosts = [host('a', {}, [{ name: 'api', version: '1.0.0', digest: digest(1), instances: 2, owner }]), host('b', {}, [{ name: 'api', version: '1.0.0', digest: digest(1), instances: 2, owner }]), host('c')];
    const kept = plan({ apps: [app('shop', [actor('api', 4)])], hosts, heldOut: ['a', 'c'] });
    expect(kept.actions).toEqual([]);
    const down = plan({ apps: [app('shop', [actor('api', 3)])], hosts, heldOut: ['a', 'c'] });
    expect(down.actions.map((x) => [x.kind, x.hostId, x.count, x.reason])).toEqual([['scale', 'a', 1, 'scale-down']]);
    const up = plan({ apps: [app('shop', [actor('api', 6)])], hosts, heldOut: ['a', 'c'] });
    expect(up.actions.map((x) => [x.kind, x.hostId, x.count])).toEqual([['scale', 'b', 4]]);
  });
});

describe('plan: idempotence and hysteresis', () => {
  it('plans nothing for the state it produced', () => {
    const shop = app('shop', [actor('api', 5, { spread: [spread('aws', { cloud: 'aws' }, 60), spread('gcp', { cloud: 'gcp' }, 40)] }), actor('agent', 'all')], {
      providers: [{ kind: 'keyvalue-nats', replicas: 'all', spread: [spread('any')] }],
    });
    const { hosts, rounds } = converge([shop], cloudHosts());
    expect(rounds).toBe(1);
    const again = plan({ apps: [shop], hosts: [...hosts].reverse() });
    expect(again.actions).toEqual([]);
    expect(again.providers).toEqual([]);
  });

  it('reaches a fixed point from random lattices, and again after hosts die and join', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rnd = random(seed);
      const clouds = ['aws', 'gcp', 'azure'];
      let hosts: PlacementHost[] = Array.from({ length: 2 + Math.floor(rnd() * 10) }, (_, i) => host(`h${String(i).padStart(2, '0')}`, { cloud: clouds[Math.floor(rnd() * 3)]! }));
      // Some foreign load, started by hand.
      for (const h of hosts) if (rnd() < 0.3) (h.actors as unknown[]).push({ name: 'manual', version: '1.0.0', digest: digest(7), instances: 1 + Math.floor(rnd() * 4) });
      const apps = Array.from({ length: 1 + Math.floor(rnd() * 4) }, (_, i) =>
        app(`app${i}`, [
          actor(`a${i}`, rnd() < 0.2 ? 'all' : Math.floor(rnd() * 12), {
            spread: rnd() < 0.5 ? [spread('any')] : [spread('aws', { cloud: 'aws' }, 1 + Math.floor(rnd() * 3)), spread('gcp', { cloud: 'gcp' }, 1 + Math.floor(rnd() * 3))],
          }),
        ]),
      );
      hosts = converge(apps, hosts, { maxRounds: 30 }).hosts;
      // One dies, one joins: a new fixed point, and never fewer ready than the survivors had.
      const dead = hosts[Math.floor(rnd() * hosts.length)]!.id;
      const survivors = hosts.filter((h) => h.id !== dead);
      const floor = apps.map((a) => total(counts(survivors, a.spec.actors[0]!.name)));
      const changed = [...survivors, host('zz', { cloud: clouds[Math.floor(rnd() * 2)]! })];
      converge(apps, changed, {
        maxRounds: 30,
        check: (state) => apps.forEach((a, i) => expect(total(counts(state, a.spec.actors[0]!.name))).toBeGreaterThanOrEqual(floor[i]!)),
      });
    }
  });
});

describe('plan: no oscillation under jittering input', () => {
  it('bounds rebalance moves while hand-started load on the hosts jitters every round', () => {
    // Each move takes an instance from a host with 2 more of them, so it lowers the sum of
    // squares of the per-host counts by at least 2: however the other load jitters, the moves
    // are bounded by that sum. A load-only rule would chase the jitter forever.
    const shop = app('shop', [actor('api', 12)]);
    const manual = (n: number) => (n > 0 ? [{ name: 'manual', version: '1.0.0', digest: digest(8), instances: n }] : []);
    let hosts = converge([shop], [host('a', {}, manual(6)), host('b'), host('c', {}, manual(3)), host('d')]).hosts;
    const squares = Object.values(counts(hosts, 'api')).reduce((n, c) => n + c * c, 0);
    const rnd = random(7);
    let moves = 0;
    for (let round = 0; round < 300; round++) {
      const i = Math.floor(rnd() * hosts.length);
      hosts = hosts.map((h, j) => {
        if (j !== i) return h;
        const mine = h.actors.filter((g) => g.name !== 'manual');
        const now = h.actors.find((g) => g.name === 'manual')?.instances ?? 0;
        return { ...h, actors: [...mine, ...manual(Math.max(0, Math.min(8, now + (rnd() < 0.5 ? -1 : 1))))] };
      });
      const p = plan({ apps: [shop], hosts });
      moves += p.actions.filter((a) => a.reason === 'rebalance').length;
      hosts = applyPlan(hosts, p);
      expect(total(counts(hosts, 'api'))).toBeGreaterThanOrEqual(12);
    }
    expect(moves).toBeLessThanOrEqual(squares / 2);
    converge([shop], hosts, { maxRounds: 4 });
  });
});

describe('plan: start before stop', () => {
  it('keeps instances on a relabelled host until their replacements run, and while none can be placed', () => {
    const shop = app('shop', [actor('api', 2, { spread: [spread('aws', { cloud: 'aws' })] })]);
    const { hosts } = converge([shop], [host('a', { cloud: 'aws' }), host('b', { cloud: 'gcp' })]);
    expect(counts(hosts, 'api')).toEqual({ a: 2 });
    // a is relabelled: nothing matches aws, nothing stops.
    const relabelled = hosts.map((h) => (h.id === 'a' ? { ...h, labels: { cloud: 'gcp' } } : h));
    const p = plan({ apps: [shop], hosts: relabelled });
    expect(p.actions).toEqual([]);
    expect(p.apps[0]!.actors[0]!.spreads[0]!.reason).toBe('no host matches cloud=aws');
    // An aws host joins: the replacements start there first, then a's instances stop.
    const seen: string[][] = [];
    const done = converge([shop], [...relabelled, host('c', { cloud: 'aws' })], {
      check: (s, q) => {
        expect(total(counts(s, 'api'))).toBeGreaterThanOrEqual(2);
        seen.push(q.actions.map((a) => `${a.kind} ${a.hostId} ${a.count}`));
      },
    });
    expect(seen).toEqual([['start c 2'], ['stop a 0'], []]);
    expect(counts(done.hosts, 'api')).toEqual({ c: 2 });
  });

  it('does not act on a stale revision: hosts run a newer one', () => {
    const r3 = app('shop', [actor('api', 2, { version: '2.0.0', digest: digest(2) })], { revision: 3 });
    const { hosts } = converge([r3], [host('a'), host('b')]);
    const stale = app('shop', [actor('api', 2)], { revision: 2 });
    const p = plan({ apps: [stale], hosts });
    expect(p.actions).toEqual([]);
    expect(p.apps[0]!.stale).toBe('hosts run revision 3 of shop, newer than revision 2 being planned: read the app again');
    expect(p.targets.map((t) => `${t.hostId} ${t.version} ${t.owner.revision}`)).toEqual(['a 2.0.0 3', 'b 2.0.0 3']);
  });
});

describe('plan: self-healing and rebalancing', () => {
  it("places a dead host's instances on the eligible hosts that remain", () => {
    const shop = app('shop', [actor('api', 6, { spread: [spread('gcp', { cloud: 'gcp' })] })]);
    const { hosts } = converge([shop], cloudHosts());
    expect(counts(hosts, 'api')).toEqual({ h3: 2, h4: 2, h5: 2 });
    const after = hosts.filter((h) => h.id !== 'h4');
    const p = plan({ apps: [shop], hosts: after });
    expect(p.actions.map((a) => [a.kind, a.hostId, a.count, a.reason])).toEqual([
      ['scale', 'h3', 3, 'place'],
      ['scale', 'h5', 3, 'place'],
    ]);
    expect(counts(converge([shop], after).hosts, 'api')).toEqual({ h3: 3, h5: 3 });
  });

  it('rebalances onto a joining host by starting before stopping, never below desired', () => {
    const shop = app('shop', [actor('api', 4)]);
    const { hosts } = converge([shop], [host('a'), host('b')]);
    expect(counts(hosts, 'api')).toEqual({ a: 2, b: 2 });
    let state = [...hosts, host('c')];
    const steps: string[][] = [];
    const done = converge([shop], state, {
      check: (s, p) => {
        expect(total(counts(s, 'api'))).toBeGreaterThanOrEqual(4);
        steps.push(p.actions.map((a) => `${a.kind} ${a.hostId} ${a.count} ${a.reason}`));
      },
    });
    state = done.hosts;
    // The tie between a and b (2 each) goes to the later host id.
    expect(steps).toEqual([['start c 1 rebalance'], ['scale b 1 scale-down'], []]);
    expect(counts(state, 'api')).toEqual({ a: 2, b: 1, c: 1 });
  });

  it('spreads evenly over many joining hosts, never below desired', () => {
    const shop = app('shop', [actor('api', 20)]);
    const { hosts } = converge([shop], [host('a'), host('b')]);
    const joined = [...hosts, host('c'), host('d'), host('e')];
    const done = converge([shop], joined, { check: (s) => expect(total(counts(s, 'api'))).toBeGreaterThanOrEqual(20) });
    expect(done.rounds).toBeLessThanOrEqual(3);
    expect(counts(done.hosts, 'api')).toEqual({ a: 4, b: 4, c: 4, d: 4, e: 4 });
  });

  it('does not use a flapping host during its hold-down, and rebalances onto it afterwards', () => {
    const shop = app('shop', [actor('api', 6)]);
    const { hosts } = converge([shop], [host('a'), host('b'), host('c')]);
    expect(counts(hosts, 'api')).toEqual({ a: 2, b: 2, c: 2 });
    // c dies: its two instances go to a and b.
    const healed = converge([shop], hosts.filter((h) => h.id !== 'c')).hosts;
    expect(counts(healed, 'api')).toEqual({ a: 3, b: 3 });
    // c is back (restarted: empty) but held out: nothing moves.
    const back = [...healed, host('c')];
    expect(plan({ apps: [shop], hosts: back, heldOut: ['c'] }).actions).toEqual([]);
    // The hold-down ends: instances move to c, started there before stopped elsewhere.
    const done = converge([shop], back, { check: (s) => expect(total(counts(s, 'api'))).toBeGreaterThanOrEqual(6) });
    expect(counts(done.hosts, 'api')).toEqual({ a: 2, b: 2, c: 2 });
  });

  it('moves only with both margins: 2 more of the version and 2 more load (hysteresis)', () => {
    const shop = app('shop', [actor('api', 3)]);
    const { hosts } = converge([shop], [host('a'), host('b')]);
    expect(counts(hosts, 'api')).toEqual({ a: 2, b: 1 });
    // c joins with one hand-started instance: a has 2 more of api but only 1 more load.
    const busy = host('c', {}, [{ name: 'other', version: '1.0.0', digest: digest(9), instances: 1 }]);
    expect(plan({ apps: [shop], hosts: [...hosts, busy] }).actions).toEqual([]);
    // An empty c: both margins hold, one instance moves and the spread ends 1/1/1.
    expect(counts(converge([shop], [...hosts, host('c')]).hosts, 'api')).toEqual({ a: 1, b: 1, c: 1 });
    // One instance of difference moves nothing.
    const five = converge([app('shop', [actor('api', 5)])], [host('a'), host('b'), host('c')]);
    expect(counts(five.hosts, 'api')).toEqual({ a: 2, b: 2, c: 1 });
  });

  it('moves a weight change with new instances first', () => {
    const v1 = app('shop', [actor('api', 4, { spread: [spread('aws', { cloud: 'aws' }), spread('gcp', { cloud: 'gcp' })] })]);
    const { hosts } = converge([v1], cloudHosts());
    const v2 = app('shop', [actor('api', 4, { spread: [spread('aws', { cloud: 'aws' }, 3), spread('gcp', { cloud: 'gcp' }, 1)] })], { revision: 2 });
    const done = converge([v2], hosts, { check: (s) => expect(total(counts(s, 'api'))).toBeGreaterThanOrEqual(4) });
    const c = counts(done.hosts, 'api');
    expect((c.h1 ?? 0) + (c.h2 ?? 0)).toBe(3);
    expect(done.hosts.flatMap((h) => h.actors).every((g) => g.owner?.revision === 2)).toBe(true);
  });

  it('scales down at once, from the most crowded hosts', () => {
    const { hosts } = converge([app('shop', [actor('api', 5)])], [host('a'), host('b')]);
    const p = plan({ apps: [app('shop', [actor('api', 2)])], hosts });
    expect(p.actions.map((a) => [a.kind, a.hostId, a.count])).toEqual([
      ['scale', 'a', 1],
      ['scale', 'b', 1],
    ]);
  });
});
