import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../policy/index.ts';
import { policyBeyondCaps, requireCapability } from './bounds.ts';
import type { Capability } from './claims.ts';

const caps = (...c: Capability[]) => new Set<Capability>(c);

describe('signing - capability bounds', () => {
  it('bounds - each policy grant needs its capability; a policy granting nothing needs none', () => {
    expect(policyBeyondCaps(compilePolicy({}), caps())).toBeUndefined();
    const all = compilePolicy({ allowedHosts: ['api.example.com'], allowedEnvVars: ['MODE'], allowedDirs: [{ guestPath: '/data', hostPath: '/tmp' }] });
    expect(policyBeyondCaps(all, caps('http-client', 'env', 'filesystem'))).toBeUndefined();
    expect(policyBeyondCaps(all, caps('http-client'))).toBe('the policy grants allowedEnvVars (needs capability env), allowedDirs (needs capability filesystem), but the component is signed with capabilities [http-client]');
  });

  it('bounds - a signed actor may use only the links it was signed for; an unsigned one (no bound) any', () => {
    expect(() => requireCapability('counter@1', caps('keyvalue'), 'keyvalue')).not.toThrow();
    expect(() => requireCapability('counter@1', undefined, 'keyvalue')).not.toThrow();
    expect(() => requireCapability('counter@1', caps('http-client'), 'keyvalue')).toThrow(expect.objectContaining({ code: 'TRELLIS_CAPABILITY_DENIED', message: expect.stringContaining('signed without capability keyvalue') }));
    expect(() => requireCapability('counter@1', caps(), 'actor-call')).toThrow(/may not use other actors/);
  });
});
