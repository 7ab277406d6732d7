import { describe, expect, it } from 'vitest';
import { compareVersions } from './index.ts';

describe('compareVersions', () => {
  it('orders major, minor and patch numerically, not as text', () => {
    expect(['1.10.0', '1.2.0', '1.9.3', '10.0.0', '2.0.0', '1.2.10', '1.2.9'].sort(compareVersions)).toEqual(['1.2.0', '1.2.9', '1.2.10', '1.9.3', '1.10.0', '2.0.0', '10.0.0']);
  });

  it('follows semver precedence for pre-releases (the example of semver.org §11)', () => {
    const ordered = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0'];
    expect([...ordered].reverse().sort(compareVersions)).toEqual(ordered);
    for (let i = 1; i < ordered.length; i++) {
      expect(compareVersions(ordered[i - 1]!, ordered[i]!), `${ordered[i - 1]} < ${ordered[i]}`).toBeLessThan(0);
      expect(compareVersions(ordered[i]!, ordered[i - 1]!), `${ordered[i]} > ${ordered[i - 1]}`).toBeGreaterThan(0);
    }
  });

  it('reads the whole pre-release, hyphens included', () => {
    expect(compareVersions('1.0.0-rc-1', '1.0.0-rc-2')).toBeLessThan(0);
    expect(compareVersions('1.0.0-x-y.2', '1.0.0-x-y.10')).toBeLessThan(0);
  });

  it('a pre-release sorts before its release but after the release before it', () => {
    expect(compareVersions('2.0.0-rc.1', '2.0.0')).toBeLessThan(0);
    expect(compareVersions('2.0.0-rc.1', '1.9.9')).toBeGreaterThan(0);
  });

  it('equal versions compare 0, build metadata ignored', () => {
    expect(compareVersions('1.2.3', '1.2.3')).toBe(0);
    expect(compareVersions('1.2.3-rc.1', '1.2.3-rc.1')).toBe(0);
    expect(compareVersions('1.2.3+build.5', '1.2.3+build.7')).toBe(0);
    expect(compareVersions('1.2.3-rc.1+b', '1.2.3')).toBeLessThan(0);
  });
});
