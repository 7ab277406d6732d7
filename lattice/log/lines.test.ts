import { describe, expect, it } from 'vitest';
import { subjects } from '../subjects/index.ts';
import { decodeLogLine, formatLogLine, LatticeLogSink, logFilterSubject } from './index.ts';

const host = 'NCSCYMFIRK4SHRPMR6JVWAFBYR3Z3K4QIQRE2RLMZ42GDSSO3EKI6HNB';

describe('log lines', () => {
  it('logs - a guest line reads at a glance: time, level, host, actor@version, ids, message, other fields', () => {
    const line = { level: 40, time: '2026-12-02T01:00:00.000Z', component: 'host', hostId: host, lattice: 'l', actor: 'hello', version: '1.0.0', invocationId: '0123abcd-0000-4000-8000-000000000000', traceId: 'aaaabbbbccccddddeeeeffff00001111', guest: true, code: 'TRELLIS_WASM_TRAP', msg: 'invocation failed' };
    expect(formatLogLine(line)).toBe(`2026-12-02T01:00:00.000Z WARN  ${host.slice(-8)} hello@1.0.0 [0123abcd aaaabbbbccccdddd] guest: invocation failed code=TRELLIS_WASM_TRAP`);
    expect(formatLogLine({ level: 30, time: 't', component: 'controller', hostId: host, msg: 'leading' })).toBe(`t INFO  ${host.slice(-8)} controller leading`);
  });

  it('logs - decoding never throws: non-JSON and non-objects are skipped', () => {
    const enc = new TextEncoder();
    expect(decodeLogLine(enc.encode('{"msg":"x"}'))).toEqual({ msg: 'x' });
    expect(decodeLogLine(enc.encode('not json'))).toBeUndefined();
    expect(decodeLogLine(enc.encode('[1]'))).toBeUndefined();
  });

  it('logs - filters address one host and/or one actor; the sink publishes nothing until attached', () => {
    const s = subjects('prod');
    expect(logFilterSubject(s, {})).toBe('trellis.prod.log.v1.*.*');
    expect(logFilterSubject(s, { actor: 'hello', host })).toBe(`trellis.prod.log.v1.${host}.hello`);
    expect(s.log(host)).toBe(`trellis.prod.log.v1.${host}.-`);
    expect(() => logFilterSubject(s, { actor: 'a.b' })).toThrow(/may not contain/);
    // Not attached: a write is dropped, never thrown.
    expect(() => new LatticeLogSink().write('{"msg":"x"}\n')).not.toThrow();
  });
});
