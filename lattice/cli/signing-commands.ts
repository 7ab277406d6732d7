/** Keys, signed components, the lattice's allowed issuers and its secrets key. */
import { TrellisError } from '../errors/index.ts';
import { command } from './command.ts';
import { duration, table } from './format.ts';

const signing = () => import('../signing/index.ts');
const time = (seconds: number | undefined) => (seconds === undefined ? '-' : new Date(seconds * 1000).toISOString());

/** A date flag: ISO 8601 (or anything Date.parse reads); TRELLIS_BAD_OPTION otherwise. */
function dateOption(flag: string, text: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new TrellisError('TRELLIS_BAD_OPTION', `${flag} expects a date like 2026-01-31 or 2026-01-31T12:00:00Z, got "${text}"`);
  return ms;
}

export const commands = [
  command({
    words: ['keys', 'gen'],
    summary: 'make an nkey: an account or user key signs components, a curve key seals secrets',
    details: 'Writes the seed to the file (mode 0600) and prints the public key. Keep the seed secret:\nhosts and `trellis issuers add` need only the public key.',
    flags: {
      kind: { type: 'choice', choices: ['account', 'user', 'curve'], default: 'account', help: 'key kind' },
      out: { type: 'string', short: 'o', help: 'seed file to write (required)', placeholder: 'file' },
      force: { type: 'boolean', help: 'overwrite an existing seed file (its key is lost)' },
    },
    async run({ flags }) {
      if (!flags.out) throw new TrellisError('TRELLIS_BAD_OPTION', '-o/--out <seed file> is required');
      const { createKey, writeSeedFile } = await signing();
      const key = createKey(flags.kind as 'account' | 'user' | 'curve');
      await writeSeedFile(flags.out, key, flags.force);
      const publicKey = key.getPublicKey();
      key.clear();
      return { data: { publicKey, seedFile: flags.out, kind: flags.kind }, text: publicKey };
    },
  }),
  command({
    words: ['sign'],
    args: ['component.wasm'],
    summary: 'sign a component: claims (issuer, hash, name, capabilities, validity) in a custom section',
    details: 'Signing again replaces the claims. Capabilities bound what links and policy may grant:\nkeyvalue, http-client, actor-call, env, filesystem.',
    flags: {
      issuer: { type: 'string', help: 'issuer seed file (account or user key, from `trellis keys gen`)', placeholder: 'file' },
      out: { type: 'string', short: 'o', help: 'signed component to write (required; an existing file needs --force)', placeholder: 'signed.wasm' },
      force: { type: 'boolean', help: 'replace the -o file if it exists' },
      name: { type: 'string', help: 'component name in the claims' },
      subject: { type: 'string', help: "the component's public key (default: kept when signing again, else a new one)", placeholder: 'key' },
      expires: { type: 'duration', help: 'valid for this long from now, e.g. 90d (default: no expiry)', minMs: 1000 },
      'not-before': { type: 'string', help: 'not valid before this date (ISO 8601)', placeholder: 'date' },
      caps: { type: 'string', help: 'capabilities, comma separated (default: none)', placeholder: 'keyvalue,http-client,actor-call' },
    },
    async run({ args, flags }) {
      if (!flags.out) throw new TrellisError('TRELLIS_BAD_OPTION', '-o/--out <signed.wasm> is required');
      if (!flags.issuer) throw new TrellisError('TRELLIS_BAD_OPTION', '--issuer <seed file> is required');
      const { createKey, readSeedFile, signComponent, previousSubject, isIssuerKey, writePrivateFile } = await signing();
      const { readUserFile, looksLikeWasm } = await import('../state/index.ts');
      const bytes = await readUserFile(args[0]!, 'component');
      if (!looksLikeWasm(bytes)) throw new TrellisError('TRELLIS_BAD_REQUEST', `${args[0]} is not a WebAssembly file`);
      const issuer = await readSeedFile(flags.issuer, ['account', 'user'], 'issuer seed');
      if (flags.subject !== undefined && !isIssuerKey(flags.subject)) throw new TrellisError('TRELLIS_BAD_OPTION', `--subject must be a public nkey (A..., U... or O...), got "${flags.subject}"`);
      const nowMs = Date.now();
      const subject = flags.subject ?? previousSubject(bytes) ?? createKey('user').getPublicKey();
      const signed = signComponent(bytes, {
        issuer,
        subject,
        name: flags.name,
        caps: flags.caps ? flags.caps.split(',').map((c) => c.trim()).filter(Boolean) : [],
        nowMs,
        ...(flags.expires !== undefined ? { expiresAtMs: nowMs + flags.expires } : {}),
        ...(flags.notBefore !== undefined ? { notBeforeMs: dateOption('--not-before', flags.notBefore) } : {}),
      });
      issuer.clear();
      await writePrivateFile(flags.out, signed.bytes, flags.force, 0o644);
      const c = signed.claims;
      return {
        data: { file: flags.out, bytes: signed.bytes.length, claims: c },
        text: `${flags.out}: signed by ${c.iss} for ${c.sub}${c.name ? ` (${c.name})` : ''}, caps [${c.trellis.caps.join(', ')}], ${c.exp ? `expires ${time(c.exp)}` : 'no expiry'}`,
      };
    },
  }),
  command({
    words: ['inspect'],
    args: ['component.wasm'],
    summary: "show a component's claims and whether its signature verifies (exit 1 when not)",
    flags: { 'allowed-issuer': { type: 'list', help: 'also say whether this host setting would trust the issuer' } },
    async run({ args, flags }) {
      const { readClaims, verifyComponent } = await signing();
      const { readUserFile, digestOf } = await import('../state/index.ts');
      const bytes = await readUserFile(args[0]!, 'component');
      const report = readClaims(bytes);
      const digest = digestOf(bytes);
      if (!report) return { data: { file: args[0], digest, signed: false }, text: `${args[0]}: not signed (${digest})`, exitCode: 1 };
      const { claims } = report;
      const verifies = report.signatureValid && report.hashValid && report.sectionsAfterClaims === 0;
      // What a host would say now, trusting the claimed issuer (or only the ones given).
      const issuers = new Set(flags.allowedIssuer.length > 0 ? flags.allowedIssuer : [claims.iss]);
      const verdict = verifyComponent(bytes, issuers, Date.now());
      const host = verdict.ok ? { ok: true } : { ok: false, code: verdict.code, message: verdict.message };
      const c = claims;
      const rows = [
        ['digest', digest],
        ['issuer', c.iss],
        ['subject', c.sub],
        ['name', c.name ?? '-'],
        ['capabilities', c.trellis.caps.join(', ') || '(none)'],
        ['issued', time(c.iat)],
        ['not before', time(c.nbf)],
        ['expires', c.exp ? `${time(c.exp)}${c.exp * 1000 > Date.now() ? ` (in ${duration(c.exp * 1000 - Date.now())})` : ''}` : 'never'],
        ['hash', `${c.trellis.hash} ${report.hashValid ? '(matches)' : '(DOES NOT MATCH: changed after signing)'}`],
        ['signature', report.signatureValid ? 'valid' : 'INVALID'],
        ...(report.sectionsAfterClaims > 0 ? [['warning', `${report.sectionsAfterClaims} section(s) added after the claims`]] : []),
        [flags.allowedIssuer.length > 0 ? 'a host with these issuers' : 'a host trusting its issuer', verdict.ok ? 'runs it' : `refuses it: ${verdict.code}: ${verdict.message}`],
      ];
      return {
        data: { file: args[0], digest, signed: true, verifies, signatureValid: report.signatureValid, hashValid: report.hashValid, sectionsAfterClaims: report.sectionsAfterClaims, claims, host },
        text: table(['FIELD', 'VALUE'], rows),
        // A host's verdict, not only the signature: expired or not yet valid fails too.
        exitCode: verifies && verdict.ok ? 0 : 1,
      };
    },
  }),
  command({
    words: ['issuers', 'list'],
    summary: "list the lattice's allowed issuers (hosts run only components they signed)",
    lattice: true,
    async run({ client }) {
      const status = await (await (await signing()).openIssuers(client.nc, client.subjects)).status();
      // Unreadable is not "none": hosts refuse everything while it is so, and scripts must notice.
      if (status === 'unreadable') {
        return { data: { unreadable: true, issuers: [] }, text: 'the allowed issuers document is unreadable: hosts refuse every component until `trellis issuers add` repairs it', exitCode: 1 };
      }
      if (status === 'absent' || (!status.enforce && status.issuers.length === 0)) {
        return { data: [], text: 'no lattice-wide allowed issuers, not enforced (hosts without --allowed-issuer or --require-signed run unsigned components)' };
      }
      if (status.issuers.length === 0) return { data: [], text: 'enforced with no allowed issuer: hosts refuse every component (`trellis issuers add` one, or `trellis issuers disable`)' };
      return { data: status.issuers, text: status.issuers.join('\n') };
    },
  }),
  command({
    words: ['issuers', 'add'],
    args: ['public-key...'],
    summary: 'allow issuers lattice-wide and enforce them: hosts then refuse components signed by no allowed issuer',
    lattice: true,
    async run({ client, args }) {
      const issuers = await (await (await signing()).openIssuers(client.nc, client.subjects)).add(args);
      return { data: issuers, text: `allowed issuers: ${issuers.join(', ')}` };
    },
  }),
  command({
    words: ['issuers', 'remove'],
    args: ['public-key...'],
    summary: 'remove lattice-wide allowed issuers (running actors they signed are stopped)',
    details: 'Enforcement stays on: removing the last issuer needs --force, and hosts then refuse every component.\nTo run unsigned components again: trellis issuers disable.',
    lattice: true,
    flags: { force: { type: 'boolean', help: 'remove the last issuer too (hosts then refuse every component)' } },
    async run({ client, args, flags }) {
      const issuers = await (await (await signing()).openIssuers(client.nc, client.subjects)).remove(args, { force: flags.force });
      if (issuers.length === 0) process.stderr.write('warning: no allowed issuer left; hosts refuse every component until one is added (or `trellis issuers disable`)\n');
      return { data: issuers, text: issuers.length === 0 ? 'no allowed issuers left (enforced: every component is refused)' : `allowed issuers: ${issuers.join(', ')}` };
    },
  }),
  command({
    words: ['issuers', 'disable'],
    summary: 'stop enforcing the lattice-wide issuers: hosts without their own --allowed-issuer run unsigned components',
    lattice: true,
    async run({ client }) {
      await (await (await signing()).openIssuers(client.nc, client.subjects)).disable();
      return { data: { enforce: false }, text: 'lattice-wide issuers disabled: hosts without --allowed-issuer or --require-signed run unsigned components' };
    },
  }),
  command({
    words: ['secrets', 'key', 'set'],
    args: ['public-curve-key'],
    summary: "set the lattice's public curve key that `link put --secret` seals to",
    details: 'Make it with `trellis keys gen --kind curve -o lattice.xk`; give the seed file only to providers\n(`--secrets-key`, or to hosts, which hand it to the providers they start).',
    lattice: true,
    async run({ client, args }) {
      const { openSecretsKey } = await import('../secrets/index.ts');
      const publicKey = await (await openSecretsKey(client.nc, client.subjects)).set(args[0]!);
      return { data: { publicKey }, text: `secrets are sealed to ${publicKey}` };
    },
  }),
  command({
    words: ['secrets', 'key', 'get'],
    summary: "show the lattice's public secrets key",
    lattice: true,
    async run({ client }) {
      const { openSecretsKey } = await import('../secrets/index.ts');
      const publicKey = await (await openSecretsKey(client.nc, client.subjects)).get();
      if (!publicKey) throw new TrellisError('TRELLIS_NOT_FOUND', 'the lattice has no secrets key; make one: trellis keys gen --kind curve -o lattice.xk, then trellis secrets key set <public key>');
      return { data: { publicKey }, text: publicKey };
    },
  }),
];
