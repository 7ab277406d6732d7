import { describe, expect, it } from 'vitest';
import { parseWeights, validateSticky, validateWeights, weightsKind } from './index.ts';

const badWeights = expect.objectContaining({ code: 'TRELLIS_BAD_WEIGHTS' });

describe('parseWeights', () => {
  it('reads version=percent words', () => {
    expect(parseWeights(['1.0.0=90', '1.1.0-rc.1=10'])).toEqual({ '1.0.0': 90, '1.1.0-rc.1': 10 });
    expect(parseWeights([])).toEqual({});
  });

  it.each(['1.0.0', '1.0.0=', '=50', '1.0.0=ten', '1.0.0=1e2', '1.0.0=50%', '1.0.0==50'])('refuses %j with TRELLIS_BAD_WEIGHTS', (word) => {
    expect(() => parseWeights([word])).toThrowError(badWeights);
  });

  it('refuses a version given twice, naming it', () => {
    expect(() => parseWeights(['1.0.0=50', '1.0.0=50'])).toThrowError(/version 1\.0\.0 given twice/);
  });

  it('keeps numbers as given so validation can say what is wrong with them', () => {
    expect(parseWeights(['1.0.0=-5', '2.0.0=10.5'])).toEqual({ '1.0.0': -5, '2.0.0': 10.5 });
  });

  it('treats names of Object.prototype members as plain (invalid) versions', () => {
    expect(parseWeights(['constructor=100'])).toEqual({ constructor: 100 });
    const proto = parseWeights(['__proto__=100']);
    expect(Object.keys(proto)).toEqual(['__proto__']);
    expect(() => validateWeights(proto)).toThrowError(/"__proto__" is not a semantic version/);
  });
});

describe('validateWeights', () => {
  it('accepts integers from 0 to 100 summing to 100', () => {
    const weights = { '1.0.0': 100, '2.0.0': 0 };
    expect(validateWeights(weights)).toBe(weights);
    expect(validateWeights({ '1.0.0': 33, '1.1.0': 33, '1.2.0': 34 })).toEqual({ '1.0.0': 33, '1.1.0': 33, '1.2.0': 34 });
  });

  it.each([
    [{}, /no weights given/],
    [{ latest: 100 }, /"latest" is not a semantic version/],
    [{ '1.0.0': 90, '1.1.0': 20 }, /sum to 110/],
    [{ '1.0.0': 50 }, /sum to 50/],
    [{ '1.0.0': 110, '2.0.0': -10 }, /must be an integer from 0 to 100, got 110/],
    [{ '1.0.0': 50.5, '2.0.0': 49.5 }, /got 50\.5/],
    [{ '1.0.0': Number.NaN }, /got NaN/],
    [{ '1.0.0': '100' as unknown as number }, /must be an integer/],
  ])('refuses %j', (weights, message) => {
    expect(() => validateWeights(weights)).toThrowError(badWeights);
    expect(() => validateWeights(weights)).toThrowError(message);
  });

  it('with known versions, refuses a version that runs nowhere and lists the known ones', () => {
    expect(validateWeights({ '1.0.0': 100 }, ['1.0.0', '2.0.0'])).toEqual({ '1.0.0': 100 });
    expect(() => validateWeights({ '1.0.0': 50, '7.0.0': 50 }, ['1.0.0', '2.0.0'])).toThrowError(/7\.0\.0 is not running anywhere .*known: 1\.0\.0, 2\.0\.0/);
    expect(() => validateWeights({ '1.0.0': 100 }, [])).toThrowError(/known: none/);
  });
});

describe('weights documents', () => {
  it('are keyed by actor and decoded with validation, so a bad stored document is refused', () => {
    const doc = { actor: 'shop', weights: { '1.0.0': 100 }, updatedAt: '2026-01-01T00:00:00.000Z' };
    expect(weightsKind.key(doc)).toBe('shop');
    expect(weightsKind.decode(JSON.parse(JSON.stringify(doc)))).toEqual(doc);
    expect(() => weightsKind.decode({ ...doc, weights: { '1.0.0': 99 } })).toThrowError(badWeights);
    expect(() => weightsKind.decode({ ...doc, actor: 'a.b' })).toThrowError(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
    expect(() => weightsKind.decode([doc])).toThrowError(badWeights);
  });
});

describe('weights - sticky', () => {
  it('weights - sticky takes a header (kept lower-case) and/or a cookie, not neither, valid names only, a canary version', () => {
    expect(validateSticky({ header: 'X-User' })).toEqual({ header: 'x-user' });
    expect(validateSticky({ cookie: 'session' })).toEqual({ cookie: 'session' });
    expect(validateSticky({ header: 'x-user', cookie: 'session', canary: '1.1.0' })).toEqual({ header: 'x-user', cookie: 'session', canary: '1.1.0' });
    for (const bad of [{}, { header: 'bad name' }, { cookie: '' }, 'x-user', { header: 'x-user', canary: 'latest' }]) {
      expect(() => validateSticky(bad)).toThrow(expect.objectContaining({ code: 'TRELLIS_BAD_WEIGHTS' }));
    }
  });

  it('weights - a stored document carries sticky through decode', () => {
    const doc = weightsKind.decode({ actor: 'a', weights: { '1.0.0': 90, '1.1.0': 10 }, sticky: { cookie: 'uid' }, updatedAt: 'now' });
    expect(doc.sticky).toEqual({ cookie: 'uid' });
    expect(() => weightsKind.decode({ actor: 'a', weights: { '1.0.0': 100 }, sticky: { header: 'a b' }, updatedAt: 'now' })).toThrow(/sticky header/);
  });
});
