import { describe, expect, it } from 'vitest';
import { ControlRequests, MAX_INSTANCES_PER_HOST } from './control.ts';

const digest = `sha256:${'a'.repeat(64)}`;

describe('control contract', () => {
  it('control contract - a valid request comes back typed, absent optional fields stay absent', () => {
    expect(ControlRequests.actorStart({ lattice: 'l', actor: 'api', version: '1.2.0', digest }, 'actorStart')).toEqual({ lattice: 'l', actor: 'api', version: '1.2.0', digest });
    expect(ControlRequests.actorStart({ lattice: 'l', actor: 'api', version: '1.2.0-rc.1', digest, count: 1000, policy: { maxMemoryPages: 4 } }, 'actorStart')).toMatchObject({ count: 1000, policy: { maxMemoryPages: 4 } });
    expect(ControlRequests.actorStop({ lattice: 'l', actor: 'api', version: null }, 'actorStop')).toEqual({ lattice: 'l', actor: 'api' });
  });

  it('control contract - every wrong field is named by its path', () => {
    const bad = (op: keyof typeof ControlRequests, body: unknown) => () => ControlRequests[op](body, op);
    expect(bad('actorStart', [1])).toThrow('actorStart: must be a map, got a list');
    expect(bad('actorStart', { lattice: 'l', actor: 'api', version: '1.0.0' })).toThrow('actorStart.digest: must be a string, got undefined');
    expect(bad('actorStart', { lattice: 'l', actor: 'api', version: '1.0.0', digest, count: MAX_INSTANCES_PER_HOST + 1 })).toThrow(/actorStart\.count: must be an integer from 1 to/);
    expect(bad('actorStart', { lattice: 'l', actor: 'api', version: '1.0.0', digest, policy: 'open' })).toThrow('actorStart.policy: must be a map, got string');
    expect(bad('actorScale', { lattice: 'l', actor: 'api', version: '1.0.0', count: -1 })).toThrow(/actorScale\.count/);
    expect(bad('labelPut', { lattice: 'l', key: 'k', value: 'v'.repeat(257) })).toThrow('labelPut.value: must hold at most 256 characters');
    expect(bad('hostStop', { lattice: 'l', timeoutMs: 1.5 })).toThrow(/hostStop\.timeoutMs/);
    expect(bad('hostPing', { lattice: 'l', extra: true })).toThrow('hostPing.extra: unknown field');
    expect(bad('hostPing', {})).toThrow('hostPing.lattice: must be a string, got undefined');
  });

  it('control contract - failures carry the stable code TRELLIS_BAD_REQUEST', () => {
    try {
      ControlRequests.providerStart({ lattice: 'l', provider: 'a>b' }, 'providerStart');
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'TRELLIS_BAD_REQUEST' });
    }
  });
});
