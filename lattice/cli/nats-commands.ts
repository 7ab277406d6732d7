/** `trellis nats ...`: NATS set-up helpers; `nats permissions` prints a role's least-privilege lists. */
import { latticeOption } from '../options/index.ts';
import { mergePermissions, permissionsConf, permissionsJwt, roleOf, rolePermissions, Roles } from '../security/index.ts';
import { TrellisError } from '../errors/index.ts';
import { command } from './command.ts';

export const commands = [
  command({
    words: ['nats', 'permissions'],
    summary: 'print the NATS permissions of a role, for a nats-server authorization block or a user JWT',
    details: [
      'conf: a `permissions: {...}` entry to paste into a user of the server\'s `authorization { users = [...] }`.',
      'json: the `pub`/`sub` lists of a user JWT\'s claims (e.g. `nsc edit user --allow-pub ...`, @nats-io/jwt);',
      '  such a JWT outgrows the default 4 KiB CONNECT line: give the servers `max_control_line: 16KB`.',
      'Give --role twice (or host,controller) for a user holding two roles, e.g. a host that runs the controller.',
      '--user must be the user the participant connects as (its reply-inbox prefix is _INBOX.<lattice>.<user>):',
      'the --nats-user name, the public key of its nkey or creds, or --nats-inbox-user; default the role name.',
    ].join('\n'),
    flags: {
      role: { type: 'list', help: `role: ${Roles.join('|')} (repeatable, or comma separated)` },
      lattice: { type: 'string', help: 'lattice name (default "default")', env: 'TRELLIS_LATTICE', placeholder: 'name' },
      user: { type: 'string', help: 'the NATS user (inbox prefix) the permissions are for (default: the role)', placeholder: 'name' },
      'host-id': { type: 'string', help: 'host role: only this host id (the public key from its --seed)', placeholder: 'id' },
      provider: { type: 'list', help: 'provider role: only these provider kinds (default all)' },
      bucket: { type: 'list', help: 'provider role: only these KV buckets (default: any but the lattice\'s own)' },
      format: { type: 'choice', choices: ['conf', 'json'], default: 'conf', help: 'output format' },
    },
    async run({ flags }) {
      const roles = flags.role.flatMap((r) => r.split(',')).map((r) => r.trim()).filter(Boolean).map(roleOf);
      if (roles.length === 0) throw new TrellisError('TRELLIS_BAD_OPTION', `--role is required (${Roles.join(', ')})`);
      const lattice = latticeOption(flags.lattice);
      const scope = { lattice, user: flags.user, hostId: flags.hostId, providers: flags.provider, buckets: flags.bucket };
      const permissions = mergePermissions(...roles.map((role) => rolePermissions(role, { ...scope, user: flags.user ?? roles[0] })));
      const jwt = permissionsJwt(permissions);
      const user = flags.user ?? roles[0]!;
      const text =
        flags.format === 'json'
          ? JSON.stringify(jwt, null, 2)
          : `# trellis role ${roles.join('+')} in lattice ${lattice}, NATS user ${user} (inbox _INBOX.${lattice}.${user})\npermissions: ${permissionsConf(permissions)}`;
      return { data: jwt, text };
    },
  }),
];
