/**
 * The lattice controller: the reconciler that keeps every app's desired state (its revisions in
 * the `apps` bucket) true of the live hosts. Every host runs one (and `trellis up`, and
 * `trellis controller` standalone); one leads per lattice through a compare-and-set lease with a
 * TTL (lease.ts), and only the leader acts. A candidate runs on a NATS connection of its own,
 * named for the controller role, so that it can have its own credentials.
 *
 * Defaults: lease TTL 3 s (renewed every second; a candidate tries every 500 ms), so a
 * SIGKILLed leader is replaced within about 3.5 s; a pass every second and on every liveness
 * change, inventory and app document change; a flapping host is held out for 30 s.
 */
import { nkeys, type NatsConnection } from 'nats';
import { classifyConnectError, connectParticipant, createControlClient } from '../control/index.ts';
import type { Logger } from '../log/index.ts';
import { intOption, latticeOption, type NatsConnect } from '../options/index.ts';
import type { TrellisError } from '../errors/index.ts';
import { subjects as buildSubjects } from '../subjects/index.ts';
import { DEFAULT_HOLD_DOWN_MS } from './hosts.ts';
import { DEFAULT_LEASE_TTL_MS, openLease, type Lease, type LeaderLease } from './lease.ts';
import { startTerm, type Term } from './reconcile.ts';

/** How long a new leader's term may take to start (documents, hosts, first pass) before it lets go. */
const TERM_START_MS = 30_000;

export { DEFAULT_LEASE_TTL_MS, LEASE_KEY, leaseKind, openLease, type LeaderLease, type Lease } from './lease.ts';
export { DEFAULT_HOLD_DOWN_MS } from './hosts.ts';
export { backoffMs, BACKOFF_MAX_MS, BACKOFF_MIN_MS } from './actions.ts';

/** Options of a controller; every field but the servers has a default. */
export interface ControllerOptions {
  /** NATS servers (the controller opens its own connection). */
  servers: string[];
  /** Its own compiled connection (role controller: credential, TLS, inbox); default: `servers`, no credential. */
  connect?: NatsConnect;
  lattice?: string;
  /** What it runs in, for the connection name and the lease (a host's name, `controller`). */
  name: string;
  logger: Logger;
  /** Lease TTL in ms, 500..60000. Default 3000. */
  leaseTtlMs?: number;
  /** Period of a pass without events, ms. Default 1000. */
  intervalMs?: number;
  /** How long a host that flapped gets no new placements, ms. Default 30000. */
  holdDownMs?: number;
}

/** A running controller (candidate, and leader while it holds the lease). */
export interface Controller extends AsyncDisposable {
  readonly id: string;
  /** Is this controller the leader now? */
  isLeader(): boolean;
  /** Who holds the lease now, per the bucket. */
  leader(): Promise<LeaderLease | undefined>;
  /** Stop: end the term, let go of the lease (a successor need not wait), close the connection. */
  close(): Promise<void>;
  /** Resolves when its connection closed: with why, when it closed with an error (TRELLIS_NATS_AUTH: credential refused). */
  readonly connectionClosed: Promise<TrellisError | undefined>;
}

/**
 * Start a controller. It never fails for want of JetStream: it keeps trying in the background
 * (a lattice may run without it, and then has no apps to reconcile).
 */
export async function startController(options: ControllerOptions): Promise<Controller> {
  const lattice = latticeOption(options.lattice);
  const leaseTtlMs = intOption('leaseTtlMs', options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS, 500, 60_000);
  const intervalMs = intOption('intervalMs', options.intervalMs ?? 1000, 50, 60_000);
  const holdDownMs = intOption('holdDownMs', options.holdDownMs ?? DEFAULT_HOLD_DOWN_MS, 0, 3_600_000);
  const id = nkeys.createServer().getPublicKey();
  const subjects = buildSubjects(lattice);
  const logger = options.logger.child({ component: 'controller', controllerId: id });
  const nc: NatsConnection = await connectParticipant(options.connect ?? options.servers, `trellis-controller-${options.name}`);
  // A controller whose credential is revoked cannot lead: say so once, loudly (the host logs its own).
  const connectionClosed = nc.closed().then((err) => {
    if (!err) return undefined;
    const error = classifyConnectError(err, options.servers);
    logger.error({ err, code: error.code }, 'controller NATS connection closed with an error');
    return error;
  });
  const control = createControlClient(nc, { lattice });

  let lease: Lease | undefined;
  let term: Term | undefined;
  let starting: Promise<void> | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let unavailableLogged = false;

  const endTerm = async (why: string) => {
    const t = term;
    term = undefined;
    if (t) {
      logger.info({ why }, 'reconciler stepping down');
      await t.close();
    }
  };

  const tick = async () => {
    try {
      lease ??= await openLease(nc, subjects, { id, name: options.name, ttlMs: leaseTtlMs });
    } catch (err) {
      if (!unavailableLogged) logger.info({ err: (err as Error).message }, 'controller waiting for JetStream');
      unavailableLogged = true;
      return schedule(5000);
    }
    const held = await lease.tick();
    if (closed) return;
    if (held && !term && !starting) {
      // The lease's revision when the term begins fences every command of the term: a later
      // leader's lease has a higher revision, and hosts refuse commands below the highest seen.
      const fence = lease.revision()!;
      logger.info({ leaseTtlMs, fence }, 'reconciler lease acquired');
      const pending = startTerm({ nc, subjects, control, id, logger, intervalMs, holdDownMs, fence, isLeader: () => !closed && lease!.held() });
      // A term that cannot start (JetStream too slow, a watch that never settles) must not sit
      // on the lease: let go, so that another candidate may lead.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no first pass within ${TERM_START_MS} ms`)), TERM_START_MS)));
      starting = Promise.race([pending, late])
        .then((t) => {
          if (closed || !lease!.held()) return void t.close();
          term = t;
        })
        .catch(async (err: unknown) => {
          logger.warn({ err: (err as Error).message }, 'reconciler could not start its term; letting go of the lease');
          void pending.then((t) => t.close(), () => undefined);
          await lease!.release();
        })
        .finally(() => {
          clearTimeout(timer);
          starting = undefined;
        });
    } else if (!held && term) await endTerm('lease lost');
    // The holder renews at a third of the TTL; a candidate tries every 500 ms (or sooner for short TTLs).
    schedule(held ? Math.floor(leaseTtlMs / 3) : Math.min(500, Math.floor(leaseTtlMs / 3)));
  };
  const schedule = (ms: number) => {
    if (closed) return;
    timer = setTimeout(() => void tick(), ms);
  };
  void tick();

  const controller: Controller = {
    id,
    connectionClosed,
    isLeader: () => !closed && term !== undefined && (lease?.held() ?? false),
    leader: async () => lease?.holder(),
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      await starting;
      await endTerm('controller stopping');
      await lease?.release();
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
    [Symbol.asyncDispose]: () => controller.close(),
  };
  return controller;
}
