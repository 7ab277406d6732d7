import { describe, expect, it } from 'vitest';
import { subjects } from '../subjects/index.ts';
import { mergePermissions, permissionsConf, roleOf, rolePermissions, storeSubjects } from './index.ts';

/** Does a NATS subject pattern list match a subject? (`*` one token, `>` the rest.) */
function matches(patterns: string[] | undefined, subject: string): boolean {
  const s = subject.split('.');
  return (patterns ?? []).some((p) => {
    const t = p.split('.');
    for (let i = 0; i < t.length; i++) {
      if (t[i] === '>') return s.length > i;
      if (i >= s.length || (t[i] !== '*' && t[i] !== s[i])) return false;
    }
    return t.length === s.length;
  });
}
const can = (p: { allow: string[]; deny?: string[] }, subject: string) => matches(p.allow, subject) && !matches(p.deny, subject);

describe('security - role permissions', () => {
  const s = subjects('prod');
  const other = subjects('dev');

  it('permissions - a gateway invokes actors and reads weights and routes, but sends no control command and writes no KV', () => {
    const p = rolePermissions('gateway', { lattice: 'prod' });
    expect(can(p.publish, s.rpc('hello', '1.0.0'))).toBe(true);
    expect(can(p.publish, s.control('hostPing'))).toBe(true);
    expect(can(p.publish, s.control('actorStart', 'NHOST'))).toBe(false);
    expect(can(p.publish, s.control('hostStop', 'NHOST'))).toBe(false);
    expect(can(p.publish, `$JS.API.STREAM.INFO.KV_${s.buckets.weights}`)).toBe(true);
    expect(can(p.publish, `$KV.${s.buckets.weights}.hello`)).toBe(false);
    expect(can(p.publish, `$KV.${s.buckets.httpRoutes}.x`)).toBe(false);
    expect(can(p.publish, `$JS.API.STREAM.UPDATE.KV_${s.buckets.weights}`)).toBe(false);
    expect(can(p.publish, `$JS.API.STREAM.PURGE.KV_${s.buckets.weights}`)).toBe(false);
    expect(can(p.subscribe, '_INBOX.prod.gateway.abc.1')).toBe(true);
    expect(can(p.subscribe, '_INBOX.prod.operator.abc.1')).toBe(false);
    expect(can(p.subscribe, '_INBOX.abc')).toBe(false);
  });

  it('permissions - a host serves its own control subjects and never sends commands, nor touches another lattice', () => {
    const p = rolePermissions('host', { lattice: 'prod', hostId: 'NME' });
    expect(can(p.subscribe, s.control('actorStart', 'NME'))).toBe(true);
    expect(can(p.subscribe, s.control('hostPing'))).toBe(true);
    expect(can(p.subscribe, s.control('actorStart', 'NOTHER'))).toBe(false);
    expect(can(p.publish, s.control('actorStart', 'NOTHER'))).toBe(false);
    expect(can(p.publish, s.control('hostStop'))).toBe(false);
    expect(can(p.publish, s.beat('NME'))).toBe(true);
    expect(can(p.publish, s.beat('NOTHER'))).toBe(false);
    expect(can(p.publish, s.log('NME', 'hello'))).toBe(true);
    expect(can(p.publish, s.log('NOTHER', 'hello'))).toBe(false);
    expect(can(p.publish, `$JS.API.STREAM.CREATE.${s.streams.logs}`)).toBe(true);
    expect(can(p.publish, `$JS.API.STREAM.PURGE.${s.streams.events}`)).toBe(false);
    expect(can(p.publish, s.event('host_started'))).toBe(true);
    expect(can(p.publish, s.event('app_deployed'))).toBe(false);
    expect(can(p.publish, `$KV.${s.buckets.hosts}.NME`)).toBe(true);
    expect(can(p.publish, `$KV.${s.buckets.apps}.demo`)).toBe(false);
    // Reading an artifact: nats.js looks its stream up by subject.
    expect(can(p.publish, '$JS.API.STREAM.NAMES')).toBe(true);
    expect(can(p.publish, `$O.${s.buckets.artifacts}.C.x`)).toBe(false);
    for (const subject of [other.rpc('hello', '1.0.0'), other.control('hostPing'), other.beat('NME'), `$KV.${other.buckets.hosts}.NME`, `$JS.API.STREAM.INFO.KV_${other.buckets.links}`, '_INBOX.dev.x.y']) {
      expect(can(p.publish, subject), subject).toBe(false);
      expect(can(p.subscribe, subject), subject).toBe(false);
    }
  });

  it('permissions - a controller commands hosts and writes apps, weights and the lease; a provider keeps off the lattice state', () => {
    const c = rolePermissions('controller', { lattice: 'prod' });
    expect(can(c.publish, s.control('actorStart', 'NHOST'))).toBe(true);
    expect(can(c.publish, s.control('hostPing'))).toBe(true);
    expect(can(c.publish, `$KV.${s.buckets.apps}.demo`)).toBe(true);
    expect(can(c.publish, `$KV.${s.buckets.leader}.leader`)).toBe(true);
    expect(can(c.publish, `$KV.${s.buckets.canaries}.demo`)).toBe(true);
    expect(can(c.publish, s.event('canary_step'))).toBe(true);
    expect(can(rolePermissions('host', { lattice: 'prod' }).publish, s.event('canary_step'))).toBe(false);
    expect(can(c.publish, `$KV.${s.buckets.links}.x`)).toBe(true);
    expect(can(c.publish, `$O.${s.buckets.artifacts}.C.x`)).toBe(false);
    expect(can(c.publish, s.rpc('hello', '1.0.0'))).toBe(false);
    const p = rolePermissions('provider', { lattice: 'prod' });
    expect(can(p.subscribe, s.provider('keyvalue-nats'))).toBe(true);
    expect(can(p.publish, '$KV.counters.k')).toBe(true);
    expect(can(p.publish, '$JS.API.STREAM.CREATE.KV_counters')).toBe(true);
    for (const bucket of Object.values(s.buckets)) {
      expect(can(p.publish, `$KV.${bucket}.k`), bucket).toBe(false);
      expect(can(p.publish, `$JS.API.STREAM.INFO.KV_${bucket}`), bucket).toBe(false);
    }
    const scoped = rolePermissions('provider', { lattice: 'prod', buckets: ['counters'], providers: ['keyvalue-nats'] });
    expect(can(scoped.publish, '$KV.counters.k')).toBe(true);
    expect(can(scoped.publish, '$KV.other.k')).toBe(false);
    expect(can(scoped.subscribe, s.provider('http-client'))).toBe(false);
  });

  it('permissions - an operator does everything in its lattice and nothing in another', () => {
    const p = rolePermissions('operator', { lattice: 'prod', user: 'alice' });
    for (const subject of [s.control('hostStop', 'N1'), s.rpc('a', '1.0.0'), `$KV.${s.buckets.links}.x`, `$O.${s.buckets.artifacts}.C.x`, `$JS.API.STREAM.CREATE.OBJ_${s.buckets.artifacts}`]) {
      expect(can(p.publish, subject), subject).toBe(true);
    }
    expect(can(p.subscribe, '_INBOX.prod.alice.x.1')).toBe(true);
    expect(can(p.subscribe, '_INBOX.prod.bob.x.1')).toBe(false);
    expect(can(p.publish, other.control('hostStop', 'N1'))).toBe(false);
    expect(can(p.publish, `$KV.${other.buckets.links}.x`)).toBe(false);
  });

  it('permissions - two roles merge into their union; a role\'s deny does not remove what the other allows', () => {
    const merged = mergePermissions(rolePermissions('host', { lattice: 'prod' }), rolePermissions('controller', { lattice: 'prod' }));
    expect(can(merged.publish, s.control('actorStart', 'N1'))).toBe(true);
    expect(can(merged.publish, `$KV.${s.buckets.hosts}.N1`)).toBe(true);
    const withProvider = mergePermissions(rolePermissions('provider', { lattice: 'prod' }), rolePermissions('host', { lattice: 'prod' }));
    expect(can(withProvider.publish, `$KV.${s.buckets.hosts}.N1`)).toBe(true);
    expect(can(withProvider.publish, `$KV.${s.buckets.apps}.x`)).toBe(false);
  });

  it('permissions - KV reads never include writes; conf text quotes every subject; bad roles are refused', () => {
    const read = storeSubjects({ kind: 'kv', name: 'b' }, 'read');
    expect(read.some((x) => x.startsWith('$KV.') || /STREAM\.(UPDATE|PURGE|MSG\.DELETE)/.test(x))).toBe(false);
    const conf = permissionsConf(rolePermissions('gateway', { lattice: 'prod' }));
    expect(conf).toContain('"$JS.API.INFO"');
    expect(conf).toMatch(/^\{\n  publish: \{\n    allow: \[/);
    expect(() => roleOf('admin')).toThrow(/--role: "admin" is not a role/);
    expect(() => rolePermissions('host', { lattice: 'a.b' })).toThrow(/lattice/);
  });
});
