/** `link put --secret name=value` / `--secret-file name=<file>`: sealed here, before anything is sent. */
import { readFile } from 'node:fs/promises';
import type { ControlClient } from '../control/index.ts';
import { TrellisError } from '../errors/index.ts';
import { openSecretsKey, sealSecret } from '../secrets/index.ts';

/** Seal the secrets of a `link put` to the lattice key; undefined when there are none. */
export async function sealLinkSecrets(client: ControlClient, actor: string, provider: string, values: Record<string, string>, files: Record<string, string>): Promise<Record<string, string> | undefined> {
  const plain: Record<string, string> = { ...values };
  for (const [name, file] of Object.entries(files)) {
    if (Object.hasOwn(plain, name)) throw new TrellisError('TRELLIS_BAD_OPTION', `secret ${name} is given twice (--secret and --secret-file)`);
    try {
      // One trailing newline is the file's, not the secret's (echo, editors).
      plain[name] = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new TrellisError('TRELLIS_FILE_UNREADABLE', `cannot read secret ${name} from ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (Object.keys(plain).length === 0) return undefined;
  const recipient = await (await openSecretsKey(client.nc, client.subjects)).get();
  if (!recipient) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', 'the lattice has no secrets key to seal to; make one: trellis keys gen --kind curve -o lattice.xk, then trellis secrets key set <public key>');
  }
  return Object.fromEntries(Object.entries(plain).map(([name, value]) => [name, sealSecret(value, { actor, provider, name }, recipient)]));
}
