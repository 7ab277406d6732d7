import { describe, expect, it } from 'vitest';
import { matchRoute, routeHost, type HttpRoute } from './match.ts';

const route = (prefix: string, actor: string, host?: string): HttpRoute => ({ prefix, actor, createdAt: '2026-01-01T00:00:00.000Z', ...(host ? { host } : {}) });
const actorFor = (routes: HttpRoute[], path: string, host?: string) => matchRoute(routes, path, host)?.actor;

describe('matchRoute', () => {
  const routes = [route('/', 'root'), route('/api', 'api'), route('/api/v2', 'v2'), route('/apix', 'apix')];

  it('picks the longest matching prefix, whatever the order of the routes', () => {
    for (const order of [routes, [...routes].reverse()]) {
      expect(actorFor(order, '/api/v2/users')).toBe('v2');
      expect(actorFor(order, '/api/v1/users')).toBe('api');
      expect(actorFor(order, '/elsewhere')).toBe('root');
    }
  });

  it('matches whole segments only', () => {
    expect(actorFor(routes, '/api')).toBe('api');
    expect(actorFor(routes, '/api/')).toBe('api');
    expect(actorFor(routes, '/apix')).toBe('apix');
    expect(actorFor(routes, '/apixyz')).toBe('root');
    expect(actorFor(routes, '/api/v2x')).toBe('api');
    expect(actorFor([route('/api', 'api')], '/apix')).toBeUndefined();
  });

  it('without a root route, an unmatched path has no route', () => {
    expect(matchRoute([route('/api', 'api')], '/', undefined)).toBeUndefined();
    expect(matchRoute([], '/api', 'example.com')).toBeUndefined();
  });

  it('a host-specific route serves only its Host, and wins over an any-host route of the same prefix', () => {
    const hosted = [route('/shop', 'any'), route('/shop', 'mine', 'shop.example.com'), route('/admin', 'admin', 'admin.example.com')];
    for (const order of [hosted, [...hosted].reverse()]) {
      expect(actorFor(order, '/shop/cart', 'shop.example.com')).toBe('mine');
      expect(actorFor(order, '/shop/cart', 'other.example.com')).toBe('any');
      expect(actorFor(order, '/shop/cart')).toBe('any');
      expect(actorFor(order, '/admin', 'admin.example.com')).toBe('admin');
      expect(actorFor(order, '/admin', 'shop.example.com')).toBeUndefined();
    }
  });

  it('routes of the Host come first: a longer any-host prefix does not take a path they cover', () => {
    const mixed = [route('/', 'site', 'example.com'), route('/api', 'api'), route('/api/v2', 'v2')];
    for (const order of [mixed, [...mixed].reverse()]) {
      expect(actorFor(order, '/api/x', 'example.com')).toBe('site');
      expect(actorFor(order, '/api/v2/x', 'example.com')).toBe('site');
      expect(actorFor(order, '/api/v2/x', 'other.com')).toBe('v2');
    }
  });

  it('a Host falls back to the any-host routes for paths its own routes do not cover', () => {
    const mixed = [route('/shop', 'shop', 'example.com'), route('/shop/admin', 'admin', 'example.com'), route('/api', 'api'), route('/', 'site')];
    for (const order of [mixed, [...mixed].reverse()]) {
      expect(actorFor(order, '/shop/admin/users', 'example.com')).toBe('admin');
      expect(actorFor(order, '/shop/cart', 'example.com')).toBe('shop');
      expect(actorFor(order, '/api/x', 'example.com')).toBe('api');
      expect(actorFor(order, '/about', 'example.com')).toBe('site');
    }
  });

  it('compares the Host without its port and case-insensitively', () => {
    const hosted = [route('/', 'mine', 'example.com'), route('/', 'v6', '[::1]')];
    expect(actorFor(hosted, '/', 'example.com:8080')).toBe('mine');
    expect(actorFor(hosted, '/', 'EXAMPLE.com:443')).toBe('mine');
    expect(actorFor(hosted, '/', '[::1]:8080')).toBe('v6');
    expect(actorFor(hosted, '/', 'example.org')).toBeUndefined();
  });
});

describe('routeHost', () => {
  it('drops a port and lower-cases, leaving IPv6 brackets whole', () => {
    expect(routeHost('Example.COM:8080')).toBe('example.com');
    expect(routeHost('example.com')).toBe('example.com');
    expect(routeHost('[::1]')).toBe('[::1]');
    expect(routeHost('[::1]:80')).toBe('[::1]');
    expect(routeHost(undefined)).toBeUndefined();
  });
});
