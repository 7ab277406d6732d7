import { describe, expect, it } from 'vitest';
import { compileGatewayOptions } from './options.ts';

describe('gateway options', () => {
  it('gateway options - defaults, and values that would make every request fail are refused naming the flag', () => {
    expect(compileGatewayOptions({ lattice: 'l' })).toEqual({ lattice: 'l', listenHost: '127.0.0.1', listenPort: 8080, maxBodyBytes: 1024 * 1024, deadlineMs: 10_000 });
    expect(compileGatewayOptions({ lattice: 'l', listen: ':9000' })).toMatchObject({ listenHost: '0.0.0.0', listenPort: 9000 });
    expect(() => compileGatewayOptions({ lattice: 'l', deadlineMs: 0 })).toThrow(/option --deadline-ms: must be an integer from 1/);
    expect(() => compileGatewayOptions({ lattice: 'l', maxBodyBytes: 0 })).toThrow(/option --max-body-bytes: must be an integer from 1/);
    expect(() => compileGatewayOptions({ lattice: 'l', deadlineMs: -5 })).toThrow(/--deadline-ms/);
    expect(() => compileGatewayOptions({ lattice: 'l', maxBodyBytes: 2 ** 40 })).toThrow(/--max-body-bytes/);
    expect(() => compileGatewayOptions({ lattice: 'l', listen: 'nowhere' })).toThrow(/--listen "nowhere" is not host:port/);
  });
});
