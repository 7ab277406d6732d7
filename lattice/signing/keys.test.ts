import { chmod, lstat, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKey, readSeedFile, writeSeedFile } from './keys.ts';

describe('signing - key files', () => {
  it('keys - a seed file is private, never overwritten by accident, and read back by kind', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-keys-'));
    const file = path.join(dir, 'issuer.nk');
    const key = createKey('account');
    await writeSeedFile(file, key);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await expect(writeSeedFile(file, createKey('account'))).rejects.toMatchObject({ code: 'TRELLIS_BAD_OPTION', message: expect.stringContaining('--force') });
    expect((await readSeedFile(file, ['account', 'user'], 'issuer seed')).getPublicKey()).toBe(key.getPublicKey());
    await expect(readSeedFile(file, ['curve'], 'secrets key')).rejects.toThrow(/curve \(SX\.\.\.\)/);
    // Forced, over a file others could read: the new one is private again.
    await chmod(file, 0o644);
    await expect(readSeedFile(file, ['account'], 'issuer seed')).rejects.toThrow(/may be read by others \(mode 644\)/);
    const curve = createKey('curve');
    await writeSeedFile(file, curve, true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readSeedFile(file, ['curve'], 'secrets key')).getPublicKey()).toBe(curve.getPublicKey());
    // A damaged seed names the file, not the seed.
    const text = (await readFile(file, 'utf8')).trim();
    await writeFile(file, `${text.slice(0, -2)}AA\n`, { mode: 0o600 });
    const err = await readSeedFile(file, ['curve'], 'secrets key').catch((e: Error) => e);
    expect((err as Error).message).toContain('not hold a valid curve seed');
    expect((err as Error).message).not.toContain(text.slice(0, 20));
    await expect(readSeedFile(path.join(dir, 'missing'), ['curve'], 'secrets key')).rejects.toMatchObject({ code: 'TRELLIS_FILE_UNREADABLE' });
  });

  it('keys - a forced overwrite replaces a symlink at the path instead of writing through it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-keys-'));
    const victim = path.join(dir, 'victim.txt');
    await writeFile(victim, 'keep me\n');
    const file = path.join(dir, 'issuer.nk');
    await symlink(victim, file);
    await expect(writeSeedFile(file, createKey('account'))).rejects.toMatchObject({ code: 'TRELLIS_BAD_OPTION' });
    const key = createKey('account');
    await writeSeedFile(file, key, true);
    expect(await readFile(victim, 'utf8')).toBe('keep me\n');
    expect((await lstat(file)).isSymbolicLink()).toBe(false);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readSeedFile(file, ['account'], 'issuer seed')).getPublicKey()).toBe(key.getPublicKey());
    // No temporary file is left beside it.
    expect((await readdir(dir)).sort()).toEqual(['issuer.nk', 'victim.txt']);
    // A directory that cannot be written is a clear error naming the file.
    await expect(writeSeedFile(path.join(dir, 'missing', 'x.nk'), key)).rejects.toMatchObject({ code: 'TRELLIS_FILE_UNREADABLE', message: expect.stringContaining('x.nk') });
  });
});
