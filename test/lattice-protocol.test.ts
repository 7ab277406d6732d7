import { describe, expect, it } from 'vitest';
import { ErrorCodes, TrellisError, fromWire, httpStatus } from '../lattice/errors/index.ts';
import { parseControlSubject, subjects, token, versionToken } from '../lattice/subjects/index.ts';
import { decode, decodeEvent, encode, encodeEvent, makeEvent, encodeJson } from '../lattice/wire/index.ts';
import { hostAllowed } from '../lattice/http/index.ts';

describe('subjects', () => {
  it('subjects - carry the lattice name and protocol version', () => {
    const s = subjects('prod');
    expect(s.control('hostPing')).toBe('trellis.prod.ctl.v1.host.ping');
    expect(s.control('labelPut', 'NABC')).toBe('trellis.prod.ctl.v1.label.put.NABC');
    expect(s.event('host_started')).toBe('trellis.prod.evt.host_started');
    expect(s.rpc('echo', '1.2.0')).toBe('trellis.prod.rpc.echo.1_2_0');
    expect(parseControlSubject(s.control('labelDel', 'NX'))).toEqual({ noun: 'label', verb: 'del', hostId: 'NX' });
  });

  it.each(['a.b', 'a*', 'a>', 'a b', '', 'x\t'])('subjects - token %j is refused with TRELLIS_BAD_REQUEST', (bad) => {
    expect(() => token(bad, 'lattice name')).toThrowError(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
    expect(() => subjects(bad)).toThrow(TrellisError);
  });

  it('subjects - versions must be semantic versions', () => {
    expect(versionToken('1.0.0-rc.1')).toBe('1_0_0-rc_1');
    expect(() => versionToken('latest')).toThrowError(/semantic version/);
  });
});

describe('wire', () => {
  it('wire - msgpack round-trips bytes and nested values', () => {
    const value = { a: 1, b: 'x', body: new Uint8Array([0, 1, 255]), list: [1, 2, { c: true }] };
    const back = decode<typeof value>(encode(value));
    expect(back.a).toBe(1);
    expect(Buffer.from(back.body)).toEqual(Buffer.from([0, 1, 255]));
    expect(back.list).toEqual([1, 2, { c: true }]);
  });

  it('wire - malformed msgpack becomes TRELLIS_BAD_REQUEST, never a raw library error', () => {
    for (const bytes of [new Uint8Array([0xc1]), new Uint8Array([0xdd, 0xff, 0xff]), new Uint8Array()]) {
      expect(() => decode(bytes)).toThrowError(expect.objectContaining({ code: 'TRELLIS_BAD_REQUEST' }));
    }
  });

  it('wire - events are CloudEvents 1.0 and decode to the typed union', () => {
    const event = makeEvent('labels_changed', '/trellis/x/host/N1', { hostId: 'N1', labels: { a: 'b' } });
    const back = decodeEvent(encodeEvent(event));
    expect(back.specversion).toBe('1.0');
    expect(back.type).toBe('dev.trellis.labels_changed');
    if (back.kind !== 'labels_changed') throw new Error('wrong kind');
    expect(back.data.labels).toEqual({ a: 'b' });
  });

  it('wire - foreign or malformed events are refused', () => {
    expect(() => decodeEvent(new TextEncoder().encode('{nope'))).toThrowError(/malformed JSON/);
    expect(() => decodeEvent(encodeJson({ specversion: '1.0', type: 'com.other.thing', data: {} }))).toThrowError(/unknown type/);
    expect(() => decodeEvent(encodeJson({ specversion: '1.0', type: 'dev.trellis.nope', kind: 'nope', data: {} }))).toThrowError(/unknown type/);
  });
});

describe('errors', () => {
  it('errors - every code maps to an HTTP status and a hint', () => {
    for (const code of Object.keys(ErrorCodes) as (keyof typeof ErrorCodes)[]) {
      expect(httpStatus(code)).toBeGreaterThanOrEqual(400);
      expect(new TrellisError(code, 'x').hint.length).toBeGreaterThan(5);
    }
  });

  it('errors - unknown wire codes are kept as text under TRELLIS_INTERNAL', () => {
    const e = fromWire({ code: 'SOMETHING_ELSE', message: 'boom' });
    expect(e.code).toBe('TRELLIS_INTERNAL');
    expect(e.message).toBe('boom');
    expect(fromWire({ code: 'TRELLIS_TIMEOUT', message: 't' }).code).toBe('TRELLIS_TIMEOUT');
  });
});

describe('outbound host policy', () => {
  it('allowedHosts - a host, host:port (explicit or the scheme default) or *.domain, case-insensitive', () => {
    const allowed = (patterns: string[], url: string) => hostAllowed(patterns, new URL(url));
    expect(allowed(['example.com'], 'http://example.com:8080/x')).toBe(true);
    expect(allowed(['example.com:443'], 'https://example.com/x')).toBe(true);
    expect(allowed(['example.com:443'], 'https://example.com:443/x')).toBe(true);
    expect(allowed(['example.com:443'], 'http://example.com/x')).toBe(false);
    expect(allowed(['Example.COM:8080'], 'http://example.com:8080/')).toBe(true);
    expect(allowed(['*.example.com'], 'https://api.example.com/')).toBe(true);
    expect(allowed(['*.example.com'], 'https://example.com.evil.test/')).toBe(false);
    expect(allowed(['api.allowed.test'], 'http://evil.example.com/')).toBe(false);
  });
});
