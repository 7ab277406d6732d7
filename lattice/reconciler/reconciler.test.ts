import { describe, expect, it } from 'vitest';
import type { AppRevision } from '../wire/index.ts';
import { backoffMs, BACKOFF_MAX_MS, BACKOFF_MIN_MS } from './actions.ts';
import { declaredOf, withKeptSecrets } from './declared.ts';

const digest = `sha256:${'a'.repeat(64)}`;
const app = (extra: Partial<AppRevision> = {}): AppRevision => ({
  name: 'shop',
  revision: 3,
  specHash: 'x',
  createdAt: '2026-01-01T00:00:00.000Z',
  spec: {
    name: 'shop',
    actors: [
      {
        name: 'api',
        version: '1.0.0',
        digest,
        replicas: 2,
        spread: [{ name: 'default', requirements: {}, weight: 1 }],
        policy: {},
        links: [{ provider: 'keyvalue-nats', config: { bucket: 'carts' } }],
        routes: [{ prefix: '/api/' }, { prefix: '/v2', host: 'Shop.Example.com:8080' }],
      },
    ],
    providers: [],
  },
  ...extra,
});

describe('reconciler pure parts', () => {
  it('reconciler - backoff doubles from 1 s to at most 30 s, jittered ±20 %', () => {
    expect(backoffMs(1, () => 0.5)).toBe(BACKOFF_MIN_MS);
    expect(backoffMs(2, () => 0.5)).toBe(2 * BACKOFF_MIN_MS);
    expect(backoffMs(4, () => 0.5)).toBe(8 * BACKOFF_MIN_MS);
    expect(backoffMs(50, () => 0.5)).toBe(BACKOFF_MAX_MS);
    expect(backoffMs(1, () => 0)).toBe(800);
    expect(backoffMs(1, () => 0.999999)).toBe(1200);
  });

  it('reconciler - an app declares its links and routes marked with its name, normalized as the stores key them', () => {
    const { links, routes } = declaredOf(app(), 'now');
    expect([...links]).toEqual([['api.keyvalue', { actor: 'api', provider: 'keyvalue-nats', interface: 'keyvalue', config: { bucket: 'carts' }, updatedAt: 'now', app: 'shop' }]]);
    expect([...routes.values()].map((r) => ({ prefix: r.prefix, host: r.host, actor: r.actor, app: r.app }))).toEqual([
      { prefix: '/api', host: undefined, actor: 'api', app: 'shop' },
      { prefix: '/v2', host: 'shop.example.com', actor: 'api', app: 'shop' },
    ]);
  });

  it('reconciler - a deleting app declares nothing, so its links and routes go', () => {
    const { links, routes } = declaredOf(app({ deleting: true }), 'now');
    expect(links.size + routes.size).toBe(0);
  });

  it('reconciler - an unknown provider in a link is a clear error', () => {
    const bad = app();
    bad.spec.actors[0]!.links = [{ provider: 'nope', config: {} }];
    expect(() => declaredOf(bad, 'now')).toThrow(/unknown provider "nope"/);
  });

  it('reconciler - a declared link keeps the sealed secrets of the link it replaces, unless the app declares that name as config', () => {
    const { links } = declaredOf(app(), 'now');
    const sealed = `sealed.v1.X${'A'.repeat(55)}.X${'B'.repeat(55)}.box`;
    const hand = { actor: 'api', provider: 'keyvalue-nats' as const, interface: 'keyvalue' as const, config: {}, secrets: { password: sealed, bucket: sealed }, updatedAt: 'then' };
    const kept = withKeptSecrets(links, new Map([['api.keyvalue', hand]]));
    expect(kept.get('api.keyvalue')).toMatchObject({ app: 'shop', config: { bucket: 'carts' }, secrets: { password: sealed } });
    expect(kept.get('api.keyvalue')!.secrets).not.toHaveProperty('bucket');
    // Another provider's secrets are not carried over, and no current link means none to keep.
    expect(withKeptSecrets(links, new Map([['api.keyvalue', { ...hand, provider: 'http-client' as never }]])).get('api.keyvalue')!.secrets).toBeUndefined();
    expect(withKeptSecrets(links, new Map()).get('api.keyvalue')).toEqual(links.get('api.keyvalue'));
  });
});
