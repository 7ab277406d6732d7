/**
 * Key files: an nkey seed on one line, readable by its owner only. Issuers sign components with
 * account or user keys; the lattice seals secrets to a curve (xkey) key. Seeds are read from
 * files, never from flags or the environment, so they stay out of `ps`, shell history and logs.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { createAccount, createCurve, createUser, fromCurveSeed, fromSeed, type KeyPair } from 'nkeys.js';
import { TrellisError } from '../errors/index.ts';

/** Kinds of key `trellis keys gen` makes. */
export const KeyKinds = ['account', 'user', 'curve'] as const;
export type KeyKind = (typeof KeyKinds)[number];

/** Seed prefixes by kind: `S` then the public prefix letter. */
const SEED_PREFIX: Record<KeyKind, string> = { account: 'SA', user: 'SU', curve: 'SX' };

/** Make a new key pair of a kind. */
export function createKey(kind: KeyKind): KeyPair {
  return kind === 'account' ? createAccount() : kind === 'user' ? createUser() : createCurve();
}

/**
 * Write a seed file (mode 0600). Refuses an existing file unless `force`: a seed overwritten by
 * mistake is a key lost for good, and every component it signed or secret sealed to it with it.
 * Forced, the seed goes to a new private file beside it that then replaces it: never written
 * through a symlink planted at the path, and the old key stays whole until the new one is.
 */
export async function writeSeedFile(file: string, key: KeyPair, force = false): Promise<void> {
  await writePrivateFile(file, `${new TextDecoder().decode(key.getSeed())}\n`, force, 0o600);
}

/**
 * Write `data` to a new file `file` (mode `mode`), never following a symlink at the path; with
 * `replace`, an existing file is replaced by rename. TRELLIS_BAD_OPTION when it exists and may
 * not be replaced; TRELLIS_FILE_UNREADABLE naming the file for any other failure.
 */
export async function writePrivateFile(file: string, data: string | Uint8Array, replace: boolean, mode = 0o600): Promise<void> {
  const target = replace ? path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`) : file;
  let handle;
  try {
    handle = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new TrellisError('TRELLIS_BAD_OPTION', `${file} exists; pass --force to overwrite it${mode === 0o600 ? ' (its key is then lost)' : ''}`);
    throw new TrellisError('TRELLIS_FILE_UNREADABLE', `cannot write ${file}: ${code ?? (err as Error).message}`, { cause: err });
  }
  try {
    await handle.writeFile(data);
    await handle.close();
    handle = undefined;
    if (replace) await rename(target, file);
  } catch (err) {
    await handle?.close().catch(() => {});
    if (replace) await rm(target, { force: true }).catch(() => {});
    throw new TrellisError('TRELLIS_FILE_UNREADABLE', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * Read a seed file of one of `kinds`. The message never contains the seed. A file others may
 * read is refused: a leaked signing key or secrets key is a breach, better caught at once.
 */
export async function readSeedFile(file: string, kinds: readonly KeyKind[], what: string): Promise<KeyPair> {
  let text: string;
  try {
    const info = await stat(file);
    if ((info.mode & 0o077) !== 0) throw new TrellisError('TRELLIS_BAD_OPTION', `${what} ${file} may be read by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`);
    text = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if (err instanceof TrellisError) throw err;
    throw new TrellisError('TRELLIS_FILE_UNREADABLE', `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const kind = kinds.find((k) => text.startsWith(SEED_PREFIX[k]));
  const expected = kinds.map((k) => `${k} (${SEED_PREFIX[k]}...)`).join(' or ');
  if (!kind) throw new TrellisError('TRELLIS_BAD_OPTION', `${what} ${file} does not hold an nkey seed of kind ${expected}`);
  try {
    const seed = new TextEncoder().encode(text);
    return kind === 'curve' ? fromCurveSeed(seed) : fromSeed(seed);
  } catch {
    throw new TrellisError('TRELLIS_BAD_OPTION', `${what} ${file} does not hold a valid ${kind} seed (bad checksum or length)`);
  }
}
