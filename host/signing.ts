/**
 * Which components this host runs: with allowed issuers (its own `--allowed-issuer` keys plus the
 * lattice's list in KV, followed live), only components signed by one of them, unchanged since
 * and within their validity window; the claims' capabilities then bound what policy and links
 * grant. With no allowed issuer anywhere, every component runs as before (a development lattice).
 */
import type { NatsConnection } from 'nats';
import { TrellisError } from '../lattice/errors/index.ts';
import type { Logger } from '../lattice/log/index.ts';
import type { ActorPolicy } from '../lattice/policy/index.ts';
import { openIssuers, policyBeyondCaps, requireSigned, type Capability, type ComponentClaims, type IssuerState } from '../lattice/signing/index.ts';
import { openOnce } from '../lattice/state/index.ts';
import type { Subjects } from '../lattice/subjects/index.ts';

/** What a start learns from a verified component. */
export interface Vouched {
  claims: ComponentClaims;
  caps: ReadonlySet<Capability>;
}

/** The host's signing policy. */
export interface ComponentTrust {
  /**
   * Check a component about to start (its claims hash from componentHashes, when computed with
   * the digest). Undefined when no issuer is configured; throws the refusal's TrellisError.
   */
  check(bytes: Uint8Array, unsignedHash: string | undefined, policy: ActorPolicy): Promise<Vouched | undefined>;
  /** Whether this host checks signatures now (an issuer set anywhere, or the lattice's list unreadable). */
  enforcing(): boolean;
  close(): void;
}

/** Follow the lattice's allowed issuers and check components against them and the host's own. */
export function createComponentTrust(options: {
  nc: NatsConnection;
  subjects: Subjects;
  hostIssuers: readonly string[];
  /** Check signatures even with no issuer anywhere (then every component is refused). */
  requireSigned?: boolean;
  logger: Logger;
  /** Check what already runs again: called when the lattice's issuers change, and periodically (expiry). */
  recheck?: () => void;
  /** How often to recheck while signatures are enforced (default one minute). */
  recheckMs?: number;
}): ComponentTrust {
  const hostIssuers = new Set(options.hostIssuers);
  let lattice: IssuerState = { issuers: new Set(), enforce: false };
  // Claims expire while their actor runs: looked at again now and then, not only at start.
  const timer = options.recheck && setInterval(() => enforcing() && lattice !== 'unreadable' && options.recheck!(), options.recheckMs ?? 60_000);
  timer?.unref();
  const enforcing = () => options.requireSigned === true || hostIssuers.size > 0 || lattice === 'unreadable' || lattice.enforce;
  // Followed from the first start on, and awaited by it: a start must never slip through before
  // the lattice's list is known. Unreachable KV fails the start (closed, not open).
  const following = openOnce(async () => {
    const store = await openIssuers(options.nc, options.subjects);
    return store.follow((state) => {
      lattice = state;
      // Harmless on the first report (what runs was checked against it anyway). Not while the
      // list is unreadable: new starts are refused, but a watch that broke for a moment must not
      // stop every actor of the lattice.
      if (state !== 'unreadable') options.recheck?.();
      if (state === 'unreadable') options.logger.error("the lattice's allowed issuers document does not decode or was deleted while enforced; refusing every component until it is fixed (trellis issuers add)");
      else options.logger.info({ issuers: [...state.issuers], enforce: state.enforce }, 'lattice allowed issuers');
    });
  });
  const allowed = async (): Promise<ReadonlySet<string>> => {
    try {
      await following.get();
    } catch (err) {
      throw new TrellisError('TRELLIS_NATS_UNAVAILABLE', `cannot read the lattice's allowed issuers: ${(err as Error).message}`, { cause: err });
    }
    if (lattice === 'unreadable') {
      throw new TrellisError('TRELLIS_UNTRUSTED_ISSUER', "the lattice's allowed issuers document does not decode or was deleted while enforced, so no issuer can be trusted; an operator must fix it (trellis issuers add)");
    }
    const issuers = lattice.issuers.size === 0 ? hostIssuers : hostIssuers.size === 0 ? lattice.issuers : new Set([...hostIssuers, ...lattice.issuers]);
    if (issuers.size === 0 && enforcing()) {
      throw new TrellisError('TRELLIS_UNTRUSTED_ISSUER', `signatures are required (${options.requireSigned ? '--require-signed' : "the lattice's issuers list is enforced"}) but no issuer is allowed, so every component is refused; allow one: trellis issuers add <public key>`);
    }
    return issuers;
  };
  return {
    async check(bytes, unsignedHash, policy) {
      const issuers = await allowed();
      if (!enforcing()) return undefined;
      const vouched = requireSigned(bytes, issuers, Date.now(), unsignedHash);
      const beyond = policyBeyondCaps(policy, vouched.caps);
      if (beyond) throw new TrellisError('TRELLIS_CAPABILITY_DENIED', beyond);
      return vouched;
    },
    enforcing,
    close() {
      clearInterval(timer);
      void following.opened()?.then(
        (stop) => stop(),
        () => {}, // never followed: nothing to stop
      );
    },
  };
}
