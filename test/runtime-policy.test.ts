import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePolicy, DEFAULT_POLICY, loadPolicyFile } from '../host/runtime/index.ts';
import { TrellisError } from '../lattice/errors/index.ts';

function badOption(fn: () => unknown, field: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TrellisError);
    expect((err as TrellisError).code).toBe('TRELLIS_BAD_OPTION');
    expect((err as TrellisError).message).toContain(field);
    return;
  }
  throw new Error('expected TRELLIS_BAD_OPTION');
}

describe('runtime policy', () => {
  it('runtime policy - defaults grant nothing', () => {
    const p = compilePolicy();
    expect(p).toEqual(DEFAULT_POLICY);
    expect(p.allowedHosts).toEqual([]);
    expect(p.allowedEnvVars).toEqual([]);
    expect(p.allowedDirs).toEqual([]);
  });

  it('runtime policy - unknown keys and wrong types name the field', () => {
    badOption(() => compilePolicy({ maxMemoryPage: 10 }), 'maxMemoryPage');
    badOption(() => compilePolicy({ maxMemoryPages: '10' }), 'maxMemoryPages');
    badOption(() => compilePolicy({ executionTimeoutMs: -1 }), 'executionTimeoutMs');
    badOption(() => compilePolicy({ allowedHosts: 'a.com' }), 'allowedHosts');
    badOption(() => compilePolicy({ allowedDirs: [{ guestPath: 'rel', hostPath: '/tmp' }] }), 'allowedDirs[0].guestPath');
    badOption(() => compilePolicy({ allowedDirs: [{ guestPath: '/d', hostPath: '/tmp', mode: 'rw' }] }), 'allowedDirs[0].mode');
    badOption(() => compilePolicy({ env: { X: '1' } }), 'env.X');
    badOption(() => compilePolicy({ minInstances: 5, maxConcurrency: 2 }), 'minInstances');
  });

  it('runtime policy - dir grants are read-only unless they say otherwise', () => {
    const p = compilePolicy({ allowedDirs: [{ guestPath: '/data/', hostPath: '/tmp' }, { guestPath: '/out', hostPath: '/tmp', readonly: false }] });
    expect(p.allowedDirs).toEqual([
      { guestPath: '/data', hostPath: '/tmp', readonly: true },
      { guestPath: '/out', hostPath: '/tmp', readonly: false },
    ]);
  });

  it('runtime policy - loads YAML and JSON files, relative host paths from the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-policy-'));
    await writeFile(
      join(dir, 'p.yaml'),
      'maxMemoryPages: 100\nallowedHosts: [Example.COM]\nallowedEnvVars: [A]\nenv: { A: "1" }\nallowedDirs:\n  - { guestPath: /d, hostPath: data, readonly: false }\n',
    );
    const y = await loadPolicyFile(join(dir, 'p.yaml'));
    expect(y.maxMemoryPages).toBe(100);
    expect(y.allowedHosts).toEqual(['example.com']);
    expect(y.env).toEqual({ A: '1' });
    expect(y.allowedDirs[0]).toEqual({ guestPath: '/d', hostPath: join(dir, 'data'), readonly: false });
    await writeFile(join(dir, 'p.json'), JSON.stringify({ executionTimeoutMs: 50, instancePerRequest: true }));
    const j = await loadPolicyFile(join(dir, 'p.json'));
    expect(j.executionTimeoutMs).toBe(50);
    expect(j.instancePerRequest).toBe(true);
    await writeFile(join(dir, 'bad.yaml'), 'maxConcurrency: lots\n');
    await expect(loadPolicyFile(join(dir, 'bad.yaml'))).rejects.toMatchObject({ code: 'TRELLIS_BAD_OPTION' });
  });
});
