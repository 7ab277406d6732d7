/**
 * What the claims of a signed component bound: links and policy may grant it only the
 * capabilities it was signed with, so a host operator's policy or a link written later cannot
 * widen what the issuer vouched for. Pure checks; the host applies them at start (policy) and on
 * every capability call (links, which can change while the actor runs).
 */
import { TrellisError } from '../errors/index.ts';
import type { ActorPolicy } from '../policy/index.ts';
import type { Capability } from './claims.ts';

/** Policy grants and the capability each needs. */
const POLICY_GRANTS: { field: 'allowedHosts' | 'allowedEnvVars' | 'allowedDirs'; cap: Capability }[] = [
  { field: 'allowedHosts', cap: 'http-client' },
  { field: 'allowedEnvVars', cap: 'env' },
  { field: 'allowedDirs', cap: 'filesystem' },
];

/** Why `policy` grants more than `caps` allow (undefined: it does not). */
export function policyBeyondCaps(policy: Pick<ActorPolicy, 'allowedHosts' | 'allowedEnvVars' | 'allowedDirs'>, caps: ReadonlySet<Capability>): string | undefined {
  const over = POLICY_GRANTS.filter(({ field, cap }) => policy[field].length > 0 && !caps.has(cap));
  if (over.length === 0) return undefined;
  return `the policy grants ${over.map((o) => `${o.field} (needs capability ${o.cap})`).join(', ')}, but the component is signed with capabilities [${[...caps].join(', ')}]`;
}

/** Throw TRELLIS_CAPABILITY_DENIED when `actor` (signed with `caps`) may not use `cap`. */
export function requireCapability(actor: string, caps: ReadonlySet<Capability> | undefined, cap: Capability): void {
  if (caps === undefined || caps.has(cap)) return;
  throw new TrellisError('TRELLIS_CAPABILITY_DENIED', `actor ${actor} is signed without capability ${cap}, so it may not use ${cap === 'actor-call' ? 'other actors' : `its ${cap} link`} (signed with [${[...caps].join(', ')}])`);
}
