/**
 * The NATS credential and TLS flags, the same on every command that connects (lattice commands,
 * host, gateway, provider, controller, up), each with its `TRELLIS_NATS_…` variable; and the
 * role credential flags of a host (`--controller-creds`…, `--provider-creds`…), whose TLS is the
 * host's. Values passed on a command line are visible to other local users in `ps`: the help says
 * to prefer the variables (or files) for passwords and tokens.
 */
import { NatsAuthEnv, type NatsAuthOptions } from '../options/index.ts';
import type { Flags } from './command.ts';

export const natsAuthFlags = {
  'nats-creds': { type: 'string', help: 'NATS creds file (decentralized JWT and seed)', env: 'TRELLIS_NATS_CREDS', placeholder: 'file' },
  'nats-nkey': { type: 'string', help: 'file holding an nkey user seed (SU...)', env: 'TRELLIS_NATS_NKEY', placeholder: 'file' },
  'nats-user': { type: 'string', help: 'NATS user name (with --nats-password)', env: 'TRELLIS_NATS_USER', placeholder: 'user' },
  'nats-password': { type: 'string', help: 'NATS password (prefer the variable: argv is visible in ps)', env: 'TRELLIS_NATS_PASSWORD', placeholder: 'password' },
  'nats-token': { type: 'string', help: 'NATS token (prefer the variable: argv is visible in ps)', env: 'TRELLIS_NATS_TOKEN', placeholder: 'token' },
  'tls-ca': { type: 'string', help: 'PEM CA file that signed the NATS servers\' certificates', env: 'TRELLIS_NATS_TLS_CA', placeholder: 'file' },
  'tls-cert': { type: 'string', help: 'PEM client certificate for mutual TLS (with --tls-key)', env: 'TRELLIS_NATS_TLS_CERT', placeholder: 'file' },
  'tls-key': { type: 'string', help: 'PEM client key for mutual TLS', env: 'TRELLIS_NATS_TLS_KEY', placeholder: 'file' },
  'nats-inbox-user': { type: 'string', help: 'user in the reply-inbox prefix _INBOX.<lattice>.<user> (default: the credential\'s user or public key, else the role)', env: 'TRELLIS_NATS_INBOX_USER', placeholder: 'name' },
} as const satisfies Flags;

/** The typed values of natsAuthFlags as parsed by the dispatcher (camelCase): the option names themselves. */
export type NatsAuthFlagValues = NatsAuthOptions;

/** The credential options of parsed flags (env already applied by the dispatcher), nothing else of them. */
export function authFromFlags(flags: NatsAuthFlagValues): NatsAuthOptions {
  return Object.fromEntries(Object.keys(NatsAuthEnv).map((k) => [k, flags[k as keyof NatsAuthOptions]])) as NatsAuthOptions;
}

/** The credential flags of one more role a host holds (`--controller-creds`…): credentials only, TLS is the host's. */
function roleFlags<const R extends string>(role: R, variable: string) {
  return {
    [`${role}-creds`]: { type: 'string', help: `${role} role: NATS creds file (default: the host's credential)`, env: `TRELLIS_${variable}_CREDS`, placeholder: 'file' },
    [`${role}-nkey`]: { type: 'string', help: `${role} role: nkey user seed file`, env: `TRELLIS_${variable}_NKEY`, placeholder: 'file' },
    [`${role}-user`]: { type: 'string', help: `${role} role: NATS user (with --${role}-password)`, env: `TRELLIS_${variable}_USER`, placeholder: 'user' },
    [`${role}-password`]: { type: 'string', help: `${role} role: NATS password (prefer the variable)`, env: `TRELLIS_${variable}_PASSWORD`, placeholder: 'password' },
    [`${role}-token`]: { type: 'string', help: `${role} role: NATS token (prefer the variable)`, env: `TRELLIS_${variable}_TOKEN`, placeholder: 'token' },
  } as { [K in `${R}-${'creds' | 'nkey' | 'user' | 'password' | 'token'}`]: { type: 'string'; help: string; env: string; placeholder: string } };
}

export const controllerAuthFlags = roleFlags('controller', 'CONTROLLER');
export const providerAuthFlags = roleFlags('provider', 'PROVIDER');

/** A host's role credential from its flags (`role` is `controller` or `provider`). */
export function roleAuthFromFlags(flags: Record<string, unknown>, role: 'controller' | 'provider'): NatsAuthOptions {
  const get = (suffix: string) => flags[`${role}${suffix}`] as string | undefined;
  return { natsCreds: get('Creds'), natsNkey: get('Nkey'), natsUser: get('User'), natsPassword: get('Password'), natsToken: get('Token') };
}
