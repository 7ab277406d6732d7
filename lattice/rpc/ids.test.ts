import { describe, expect, it } from 'vitest';
import { invocationIdFor } from './ids.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('invocation ids', () => {
  it('ids - fresh ids are unique UUIDs', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => invocationIdFor()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(UUID);
  });

  it("ids - a nested call's id is derived from its caller's id and sequence: the same on a retry, distinct per call", () => {
    const parent = { id: '0b7f3c2e-6a51-4c0e-9d2a-1f4e5b6c7d8e', seq: 3 };
    expect(invocationIdFor(parent)).toBe(invocationIdFor({ ...parent }));
    expect(invocationIdFor(parent)).toMatch(UUID);
    expect(invocationIdFor(parent)).not.toBe(invocationIdFor({ ...parent, seq: 4 }));
    expect(invocationIdFor(parent)).not.toBe(invocationIdFor({ id: '0b7f3c2e-6a51-4c0e-9d2a-1f4e5b6c7d8f', seq: 3 }));
    // The separator keeps (id "a1", seq 2) and (id "a", seq 12) apart.
    expect(invocationIdFor({ id: 'a1', seq: 2 })).not.toBe(invocationIdFor({ id: 'a', seq: 12 }));
  });
});
