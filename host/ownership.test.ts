import { describe, expect, it } from 'vitest';
import { ownershipConflict } from './actors.ts';

describe('host ownership rule', () => {
  const shop = (revision: number) => ({ app: 'shop', revision });
  it('ownership - hand over hand and a newer or equal revision of the owner pass', () => {
    expect(ownershipConflict('api@1.0.0', undefined, undefined)).toBeUndefined();
    expect(ownershipConflict('api@1.0.0', shop(1), shop(1))).toBeUndefined();
    expect(ownershipConflict('api@1.0.0', shop(1), shop(2))).toBeUndefined();
  });
  it('ownership - another app, a hand command over an app, an app over a hand start, and an older revision are refused, naming the owner', () => {
    expect(ownershipConflict('api@1.0.0', shop(1), { app: 'cart', revision: 9 })).toMatch(/owned by app shop \(revision 1\); app cart may not take it over/);
    expect(ownershipConflict('api@1.0.0', shop(1), undefined)).toMatch(/owned by app shop/);
    expect(ownershipConflict('api@1.0.0', undefined, shop(1))).toMatch(/started by hand; app shop may not/);
    expect(ownershipConflict('api@1.0.0', shop(3), shop(2))).toMatch(/revision 3, newer than 2/);
  });
});
