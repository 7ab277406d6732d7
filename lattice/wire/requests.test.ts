import { describe, expect, it } from 'vitest';
import { checkActorRequest, decodeActorRequest } from './actor.ts';
import { encode } from './codec.ts';
import { checkInvocationId } from './rpc.ts';
import { checkProviderRequest } from './provider.ts';

const fails = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return `${(err as { code: string }).code}: ${(err as Error).message}`;
  }
  return 'ok';
};

describe('invocation and provider request checks', () => {
  it('invocation check - a valid request comes back complete, unknown fields left behind', () => {
    const body = new Uint8Array([1, 2]);
    expect(checkActorRequest({ method: 'CALL', body })).toEqual({ method: 'CALL', path: '/', query: '', headers: [], body });
    const decoded = decodeActorRequest(encode({ method: 'GET', path: '/a', query: 'x=1', headers: [['h', 'v']], body, extra: 1 }));
    expect({ ...decoded, body: [...decoded.body] }).toEqual({ method: 'GET', path: '/a', query: 'x=1', headers: [['h', 'v']], body: [1, 2] });
    expect(checkActorRequest({ method: 'GET', path: null, query: null, headers: null, body: null })).toMatchObject({ path: '/', query: '', headers: [], body: new Uint8Array() });
  });

  it('invocation check - every wrong field is named, with TRELLIS_BAD_REQUEST', () => {
    expect(fails(() => checkActorRequest([1]))).toBe('TRELLIS_BAD_REQUEST: invocation: must be a msgpack map (an ActorRequest)');
    expect(fails(() => checkActorRequest({ body: new Uint8Array() }))).toBe('TRELLIS_BAD_REQUEST: invocation.method: must be a string of 1 to 32 characters');
    expect(fails(() => checkActorRequest({ method: 'X'.repeat(33) }))).toMatch(/invocation\.method/);
    expect(fails(() => checkActorRequest({ method: 'GET', path: 7 }))).toBe('TRELLIS_BAD_REQUEST: invocation.path: must be a string');
    expect(fails(() => checkActorRequest({ method: 'GET', query: [] }))).toBe('TRELLIS_BAD_REQUEST: invocation.query: must be a string');
    expect(fails(() => checkActorRequest({ method: 'GET', body: 'text' }))).toBe('TRELLIS_BAD_REQUEST: invocation.body: must be binary');
    expect(fails(() => checkActorRequest({ method: 'GET', headers: {} }))).toBe('TRELLIS_BAD_REQUEST: invocation.headers: must be a list of [name, value] pairs');
    expect(fails(() => checkActorRequest({ method: 'GET', headers: [['a', 'b'], ['c', 1]] }))).toBe('TRELLIS_BAD_REQUEST: invocation.headers[1]: must be a [name, value] pair of strings');
    expect(fails(() => checkActorRequest({ method: 'GET', headers: [['a', 'b', 'c']] }))).toMatch(/headers\[0\]/);
    // The frame limits come first: 5,000 headers is more than one list may hold.
    expect(fails(() => decodeActorRequest(encode({ method: 'GET', headers: Array.from({ length: 5000 }, () => ['a', 'b']) })))).toMatch(/^TRELLIS_BAD_REQUEST: invocation: a list of 5000 items exceeds the limit of 4096/);
    expect(fails(() => decodeActorRequest(encode({ method: 'GET', headers: [[['deep']]] })))).toBe('TRELLIS_BAD_REQUEST: invocation.headers[0]: must be a [name, value] pair of strings');
  });

  it('invocation check - the invocation id header is a short printable token, or absent', () => {
    expect(fails(() => checkInvocationId(undefined))).toBe('ok');
    expect(fails(() => checkInvocationId('0b6a1f3e-3c1d-4a57-9f1e-2a4b8c9d0e1f'))).toBe('ok');
    expect(fails(() => checkInvocationId('x'.repeat(129)))).toBe('TRELLIS_BAD_REQUEST: header trellis-invocation-id: must be 1 to 128 printable characters');
    expect(fails(() => checkInvocationId('a b'))).toMatch(/printable/);
    expect(fails(() => checkInvocationId('é'))).toMatch(/printable/);
  });

  it('provider check - the envelope and each operation\'s arguments are checked, the field named', () => {
    const base = { actor: 'api', version: '1.0.0', config: { bucket: 'b' }, invocation: { id: 'i1', seq: 1 } };
    expect(checkProviderRequest({ ...base, op: 'set', args: ['k', new Uint8Array([1])] }, 'keyvalue-nats')).toMatchObject({ op: 'set', args: ['k', new Uint8Array([1])] });
    expect(checkProviderRequest({ ...base, op: 'keys', args: [null] }, 'keyvalue-nats').args).toEqual([undefined]);
    expect(checkProviderRequest({ ...base, op: 'increment', args: ['n', '-12'] }, 'keyvalue-nats').args).toEqual(['n', '-12']);
    expect(fails(() => checkProviderRequest({ ...base, op: 'set', args: ['k', 'not bytes'] }, 'keyvalue-nats'))).toBe('TRELLIS_BAD_REQUEST: keyvalue-nats request.args[1]: must be binary, got string');
    expect(fails(() => checkProviderRequest({ ...base, op: 'get', args: [{}] }, 'keyvalue-nats'))).toBe('TRELLIS_BAD_REQUEST: keyvalue-nats request.args[0]: must be a string, got object');
    expect(fails(() => checkProviderRequest({ ...base, op: 'get', args: ['a', 'b'] }, 'keyvalue-nats'))).toMatch(/request\.args: must hold at most 1 items/);
    expect(fails(() => checkProviderRequest({ ...base, op: 'increment', args: ['n', '1e9'] }, 'keyvalue-nats'))).toMatch(/args\[1\]: must be an integer in decimal/);
    expect(fails(() => checkProviderRequest({ ...base, op: 'drop', args: [] }, 'keyvalue-nats'))).toBe('TRELLIS_UNKNOWN_COMMAND: keyvalue-nats has no operation "drop"');
    expect(fails(() => checkProviderRequest({ ...base, op: 'get', args: ['k'], config: { bucket: 1 } }, 'keyvalue-nats'))).toBe('TRELLIS_BAD_REQUEST: keyvalue-nats request.config.bucket: must be a string, got number');
    expect(fails(() => checkProviderRequest({ ...base, op: 'get', args: ['k'], sneaky: true }, 'keyvalue-nats'))).toBe('TRELLIS_BAD_REQUEST: keyvalue-nats request.sneaky: unknown field');
    expect(fails(() => checkProviderRequest({ ...base, args: [] }, 'keyvalue-nats'))).toMatch(/request\.op: must be a string/);
    const send = { method: 'GET', url: 'https://example.com/', headers: [['a', 'b']], body: new Uint8Array() };
    expect(checkProviderRequest({ ...base, op: 'send', args: [send], allowedHosts: ['example.com'] }, 'http-client').args).toEqual([send]);
    expect(fails(() => checkProviderRequest({ ...base, op: 'send', args: [{ ...send, headers: [['a']] }] }, 'http-client'))).toBe('TRELLIS_BAD_REQUEST: http-client request.args[0].headers[0][1]: must be a string, got undefined');
    expect(fails(() => checkProviderRequest({ ...base, op: 'send', args: [send], allowedHosts: 'example.com' }, 'http-client'))).toMatch(/request\.allowedHosts: must be a list/);
  });
});
