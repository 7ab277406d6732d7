import { describe, expect, it } from 'vitest';
import { applyPlan, plan, status } from './index.ts';
import type { PlacementHost } from './index.ts';
import { actor, app, converge, digest, host, spread } from './test-fixtures.ts';

const now = '2026-01-02T03:04:05.000Z';
const statusOf = (a: ReturnType<typeof app>, hosts: PlacementHost[], options: Omit<Parameters<typeof status>[3], 'now'> = {}, heldOut?: string[]) =>
  status(a, hosts, plan({ apps: [a], hosts, heldOut }), { now, ...options });

describe('status', () => {
  const shop = app('shop', [actor('api', 5, { spread: [spread('aws', { cloud: 'aws' }, 60), spread('gcp', { cloud: 'gcp' }, 40)] })]);
  const hosts = () => [host('h1', { cloud: 'aws' }), host('h2', { cloud: 'aws' }), host('h3', { cloud: 'gcp' }), host('h4', { cloud: 'gcp' })];

  it('is Deploying until every desired instance runs, then Deployed with counts per spread', () => {
    const empty = statusOf(shop, hosts());
    expect(empty).toMatchObject({ name: 'shop', revision: 1, phase: 'Deploying', observedAt: now });
    expect(empty.actors).toEqual([
      {
        name: 'api',
        version: '1.0.0',
        desired: 5,
        running: 0,
        spreads: [
          { name: 'aws', desired: 3, running: 0 },
          { name: 'gcp', desired: 2, running: 0 },
        ],
      },
    ]);
    const done = converge([shop], hosts()).hosts;
    const deployed = statusOf(shop, done);
    expect(deployed.phase).toBe('Deployed');
    expect(deployed.reasons).toEqual([]);
    expect(deployed.actors[0]!.spreads).toEqual([
      { name: 'aws', desired: 3, running: 3 },
      { name: 'gcp', desired: 2, running: 2 },
    ]);
  });

  it('is Degraded once a Deployed revision loses instances, Deployed again when repaired', () => {
    const done = converge([shop], hosts()).hosts;
    const lost = done.filter((h) => h.id !== 'h1');
    const s = statusOf(shop, lost, { previous: { revision: 1, phase: 'Deployed' } });
    expect(s.phase).toBe('Degraded');
    expect(s.reasons).toEqual(['api@1.0.0: 3 of 5 running']);
    expect(s.actors[0]!.spreads[0]).toEqual({ name: 'aws', desired: 3, running: 1 });
    // A new revision that is short is still deploying.
    expect(statusOf({ ...shop, revision: 2 }, lost, { previous: { revision: 1, phase: 'Deployed' } }).phase).toBe('Deploying');
    const repaired = converge([shop], lost).hosts;
    expect(statusOf(shop, repaired, { previous: { revision: 1, phase: 'Degraded' } }).phase).toBe('Deployed');
  });

  it('is Degraded with the reason when a spread cannot be satisfied', () => {
    const azure = app('shop', [actor('api', 2, { spread: [spread('aws', { cloud: 'aws' }), spread('azure', { cloud: 'azure' })] })]);
    const s = statusOf(azure, converge([azure], hosts()).hosts);
    expect(s.phase).toBe('Degraded');
    expect(s.actors[0]!.spreads[1]).toEqual({ name: 'azure', desired: 1, running: 0, reason: 'no host matches cloud=azure' });
    expect(s.reasons).toContain('api@1.0.0 spread azure: no host matches cloud=azure');
  });

  it('is Failed when a version cannot start anywhere, Degraded when some of it runs', () => {
    const failure = { actor: 'api', version: '1.0.0', digest: digest(1), hostId: 'h1', code: 'TRELLIS_DIGEST_NOT_FOUND', message: 'no artifact sha256:…' };
    const failed = statusOf(shop, hosts(), { failures: [failure] });
    expect(failed.phase).toBe('Failed');
    expect(failed.reasons).toContain('api@1.0.0: TRELLIS_DIGEST_NOT_FOUND: no artifact sha256:… (host h1)');
    const partly = statusOf(shop, converge([shop], hosts()).hosts, { failures: [failure] });
    expect(partly.phase).toBe('Degraded');
    // A failure of a version the spec does not hold does not count.
    expect(statusOf(shop, converge([shop], hosts()).hosts, { failures: [{ ...failure, version: '0.9.0' }] }).phase).toBe('Deployed');
  });

  it('shows both versions side by side during a rolling update, Deployed once the old is gone', () => {
    const done = converge([shop], hosts()).hosts;
    const v2 = app('shop', [actor('api', 5, { version: '1.1.0', digest: digest(2), spread: shop.spec.actors[0]!.spread })], { revision: 2 });
    const surge = applyPlan(done, plan({ apps: [v2], hosts: done }));
    const s = statusOf(v2, surge);
    expect(s.phase).toBe('Deploying');
    expect(s.actors.map((a) => [a.version, a.desired, a.running])).toEqual([
      ['1.1.0', 5, 5],
      ['1.0.0', 0, 5],
    ]);
    expect(statusOf(v2, converge([v2], surge).hosts).phase).toBe('Deployed');
  });

  it('is Deleting for an app being deleted, listing what still runs', () => {
    const done = converge([shop], hosts()).hosts;
    const s = statusOf({ ...shop, deleting: true }, done);
    expect(s.phase).toBe('Deleting');
    expect(s.actors).toEqual([{ name: 'api', version: '1.0.0', desired: 0, running: 5, spreads: [] }]);
  });

  it('is Failed for a spec that cannot be planned', () => {
    const bad = app('shop', [actor('api', 2, { spread: [] })]);
    const s = statusOf(bad, hosts());
    expect(s.phase).toBe('Failed');
    expect(s.reasons).toEqual(['the spec cannot be planned: spec.actors[0].spread: must list at least one spread']);
  });

  it('refuses a plan made without the app', () => {
    expect(() => status(shop, hosts(), plan({ apps: [], hosts: hosts() }), { now })).toThrowError(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
  });
});
