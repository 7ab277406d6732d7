import { describe, expect, it } from 'vitest';
import { cookieValue } from '../../lattice/canary/sticky.ts';
import { stickyKeyOf } from './sticky.ts';

describe('gateway sticky keys', () => {
  it('sticky - finds a cookie among others, unquotes it, and not by a name prefix', () => {
    expect(cookieValue('a=1; session=abc; b=2', 'session')).toBe('abc');
    expect(cookieValue('session="q v"', 'session')).toBe('q v');
    expect(cookieValue('mysession=x; sessionid=y', 'session')).toBeUndefined();
    expect(cookieValue(undefined, 'session')).toBeUndefined();
  });

  it('sticky - takes the key from the configured header or cookie; none when absent or empty', () => {
    expect(stickyKeyOf({ 'x-user': 'u1' }, { header: 'x-user' })).toBe('u1');
    expect(stickyKeyOf({ 'x-user': '' }, { header: 'x-user' })).toBeUndefined();
    expect(stickyKeyOf({ cookie: 'uid=u2' }, { cookie: 'uid' })).toBe('u2');
    expect(stickyKeyOf({ 'x-user': 'u1' }, { cookie: 'uid' })).toBeUndefined();
    // Both configured: the header first, the cookie when the header is absent.
    expect(stickyKeyOf({ 'x-user': 'u1', cookie: 'uid=u2' }, { header: 'x-user', cookie: 'uid' })).toBe('u1');
    expect(stickyKeyOf({ cookie: 'uid=u2' }, { header: 'x-user', cookie: 'uid' })).toBe('u2');
    expect(stickyKeyOf({ 'x-user': 'k'.repeat(1000) }, { header: 'x-user' })).toHaveLength(256);
  });
});
