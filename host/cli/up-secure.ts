/**
 * `trellis up --secure`: the embedded nats-server requires credentials. One nkey user per role
 * (host, controller, provider, gateway, operator) is made on first use and kept in
 * `<data dir>/creds/<role>.nk` (0600, in a 0700 folder), and the server's `authorization` block
 * gives each exactly its role's permissions (lattice/security). The host, its controller and
 * its providers connect with their own keys; the operator's key is what the CLI needs
 * (TRELLIS_NATS_NKEY). Seeds are read from and written to files only, never printed.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createUser, fromSeed } from 'nkeys.js';
import type { NatsAuthOptions, Role } from '../../lattice/options/index.ts';
import { permissionsConf, rolePermissions } from '../../lattice/security/index.ts';
import { TrellisError } from '../../lattice/errors/index.ts';

export interface SecureUp {
  /** The server's `authorization` block. */
  serverConfig: string;
  /** Seed file of each role. */
  files: Record<Role, string>;
  auth: Record<Role, NatsAuthOptions>;
}

/** The seed file of one role, made on first use. */
async function roleSeed(dir: string, role: Role): Promise<{ file: string; publicKey: string }> {
  const file = `${dir}/${role}.nk`;
  let seed: string;
  try {
    seed = (await readFile(file, 'utf8')).trim();
    // A key others can read is no secret: keep it to its owner.
    await chmod(file, 0o600);
  } catch (err) {
    // Only a missing key is made; any other failure must not replace (and lose) an existing one.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TrellisError('TRELLIS_FILE_UNREADABLE', `cannot read the ${role} key ${file}: ${(err as Error).message}`);
    seed = new TextDecoder().decode(createUser().getSeed());
    // 'wx': never over a file that appeared meanwhile.
    await writeFile(file, `${seed}\n`, { mode: 0o600, flag: 'wx' });
  }
  return { file, publicKey: fromSeed(new TextEncoder().encode(seed)).getPublicKey() };
}

/** Make (or reuse) the role keys of `lattice` under `dataDir` and the server config that admits them. */
export async function prepareSecureUp(dataDir: string, lattice: string, hostId: string): Promise<SecureUp> {
  const dir = `${dataDir}/creds`;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const roles: Role[] = ['host', 'controller', 'provider', 'gateway', 'operator'];
  const files = {} as Record<Role, string>;
  const auth = {} as Record<Role, NatsAuthOptions>;
  const users: string[] = [];
  for (const role of roles) {
    const { file, publicKey } = await roleSeed(dir, role);
    files[role] = file;
    auth[role] = { natsNkey: file };
    const permissions = rolePermissions(role, { lattice, user: publicKey, ...(role === 'host' ? { hostId } : {}) });
    users.push(`    # ${role}\n    { nkey: ${publicKey}, permissions: ${permissionsConf(permissions, '    ')} }`);
  }
  return { serverConfig: `authorization {\n  users = [\n${users.join(',\n')}\n  ]\n}`, files, auth };
}
