/** `link put --secret name=value` / `--secret-file name=<file>`: sealed here, before anything is sent. */
import { readFile } from 'node:fs/promises';
import type { ControlClient } from '../control/index.ts';
import { TrellisError } from '../errors/index.ts';
import { openSecretsKey, sealSecret, secretHosts } from '../secrets/index.ts';

/** `name=value` words into a record; a malformed one is named by its position, never quoted. */
function secretPairs(words: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  words.forEach((word, i) => {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new TrellisError('TRELLIS_BAD_OPTION', `${flag} number ${i + 1} is not name=value (its text is not shown: it may be the secret)`);
    const name = word.slice(0, eq);
    if (Object.hasOwn(out, name)) throw new TrellisError('TRELLIS_BAD_OPTION', `${flag} ${name} is given twice`);
    out[name] = word.slice(eq + 1);
  });
  return out;
}

/** Providers that send secrets over the network: each secret must name its destinations. */
const SENDS_SECRETS: ReadonlySet<string> = new Set(['http-client']);

/**
 * Seal the secrets of a `link put` to the lattice key, bound to `hostWords` (`--secret-host`);
 * undefined when there are none.
 */
export async function sealLinkSecrets(client: ControlClient, actor: string, provider: string, valueWords: string[], fileWords: string[], hostWords: string[] = [], pinned?: string): Promise<{ secrets: Record<string, string>; recipient: string } | undefined> {
  const hosts = secretHosts(hostWords);
  const plain = secretPairs(valueWords, '--secret');
  for (const [name, file] of Object.entries(secretPairs(fileWords, '--secret-file'))) {
    if (Object.hasOwn(plain, name)) throw new TrellisError('TRELLIS_BAD_OPTION', `secret ${name} is given twice (--secret and --secret-file)`);
    try {
      // One trailing newline is the file's, not the secret's (echo, editors).
      plain[name] = (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new TrellisError('TRELLIS_FILE_UNREADABLE', `cannot read secret ${name} from ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (Object.keys(plain).length === 0) {
    if (hosts.length > 0) throw new TrellisError('TRELLIS_BAD_OPTION', '--secret-host binds secrets to destinations, but no --secret or --secret-file is given');
    return undefined;
  }
  if (SENDS_SECRETS.has(provider) && hosts.length === 0) {
    throw new TrellisError('TRELLIS_BAD_OPTION', `${provider} sends its secrets over the network: name where each may go with --secret-host <host|host:port|*.domain> (repeatable)`);
  }
  const recipient = await (await openSecretsKey(client.nc, client.subjects)).get();
  if (!recipient) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', 'the lattice has no secrets key to seal to; make one: trellis keys gen --kind curve -o lattice.xk, then trellis secrets key set <public key>');
  }
  // The key document has no integrity of its own: whoever may write the config bucket could
  // swap in a key they hold. So a key given with --recipient must match, and without it a key
  // other than the one this link's secrets were sealed to is refused until confirmed.
  if (pinned !== undefined && pinned !== recipient) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `the lattice secrets key is ${recipient}, not the --recipient ${pinned}; nothing was sealed (check \`trellis secrets key get\` with whoever holds the seed)`);
  }
  if (pinned === undefined) {
    const { openLinks, ProviderKinds, providerKind } = await import('../links/index.ts');
    const existing = await (await openLinks(client.nc, client.subjects)).get(actor, ProviderKinds[providerKind(provider)].interface);
    const before = Object.values(existing?.secrets ?? {}).map((v) => v.split('.')[2]).find((k) => k !== recipient);
    if (before) throw new TrellisError('TRELLIS_BAD_REQUEST', `the lattice secrets key changed since this link's secrets were sealed (to ${before}; now ${recipient}); if that change is yours, confirm it with --recipient ${recipient}`);
  }
  return { recipient, secrets: Object.fromEntries(Object.entries(plain).map(([name, value]) => [name, sealSecret(value, { actor, provider, name }, recipient, hosts)])) };
}
