/**
 * Running the planner's actions through the control client: each (host, actor version) or
 * (host, provider) has at most one command in flight, a failed command is retried with
 * exponential backoff (never in a tight loop), and every reply is applied to the leader's host
 * view at once, so the next plan sees the outcome before the host's own inventory arrives.
 */
import type { ControlClient } from '../control/index.ts';
import { toTrellisError } from '../errors/index.ts';
import type { ActorAction, ProviderAction, StartFailure } from '../placement/index.ts';
import type { HostView } from './hosts.ts';

/** First retry delay after a failed command; it doubles up to BACKOFF_MAX_MS. */
export const BACKOFF_MIN_MS = 1000;
export const BACKOFF_MAX_MS = 30_000;

/** Delay before retry number `failures` (1 = the first retry), with ±20 % jitter. */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

interface Failing {
  app: string;
  revision: number;
  failures: number;
  nextAt: number;
  failure: StartFailure;
}

/** What a command's outcome means to the loop (events, logs). */
export type Outcome =
  | { ok: true; action: ActorAction }
  | { ok: true; provider: ProviderAction }
  | { ok: false; app: string; revision: number; hostId: string; actor?: string; code: string; message: string; retryInMs: number };

/** Runs actions; one per key at a time. */
export class ActionRunner {
  private readonly inFlight = new Set<string>();
  private readonly failing = new Map<string, Failing>();

  constructor(
    private readonly control: ControlClient,
    private readonly view: HostView,
    private readonly done: (outcome: Outcome) => void,
    /** The term's fencing token, sent with every command. */
    private readonly fence?: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Commands still running. */
  get busy(): number {
    return this.inFlight.size;
  }

  /** Does the app have a command in flight (a deleting app is not done while it has)? */
  hasInFlight(app: string): boolean {
    for (const key of this.inFlight) if (key.startsWith(`${app}|`)) return true;
    return false;
  }

  /** The start failures of an app's revision still being retried. */
  failuresOf(app: string, revision: number): StartFailure[] {
    return [...this.failing.values()].filter((f) => f.app === app && f.revision === revision).map((f) => f.failure);
  }

  /** Forget failures of actions the latest plan no longer holds (a dead host, a new revision). */
  prune(keep: Set<string>): void {
    for (const key of this.failing.keys()) if (!keep.has(key)) this.failing.delete(key);
  }

  /** The retry key of an actor action: per app revision, host, version and build. */
  static actorKey(a: ActorAction): string {
    return `${a.owner.app}|${a.owner.revision}|${a.hostId}|${a.actor}@${a.version}|${a.digest}|${a.kind === 'stop' ? 'stop' : 'run'}`;
  }

  static providerKey(p: ProviderAction): string {
    return `${p.app}|${p.hostId}|provider:${p.provider}|${p.kind}`;
  }

  /** Run an actor action unless one for its group is in flight or it waits for its retry. */
  runActor(a: ActorAction): void {
    const group = `${a.owner.app}|${a.hostId}|${a.actor}@${a.version}`;
    const key = ActionRunner.actorKey(a);
    if (!this.admit(group, key)) return;
    const { hostId, actor, version, digest, count, owner } = a;
    const call =
      a.kind === 'stop'
        ? this.control.stopActor(hostId, { actor, version, owner, fence: this.fence }).then(() => this.view.patchActor(hostId, { name: actor, version, stopped: true }))
        : a.kind === 'scale'
          ? this.control.scaleActor(hostId, { actor, version, count, owner, fence: this.fence }).then((inv) => this.view.patchActor(hostId, inv))
          : this.control.startActor(hostId, { actor, version, digest, count, owner, fence: this.fence, ...(a.policy ? { policy: a.policy } : {}) }).then((inv) => this.view.patchActor(hostId, inv));
    this.settle(group, key, call, { app: owner.app, revision: owner.revision, hostId, actor, version, digest }, () => ({ ok: true, action: a }), (code) => {
      // Already gone is what a stop wanted.
      if (a.kind === 'stop' && code === 'TRELLIS_NOT_FOUND') {
        this.view.patchActor(hostId, { name: actor, version, stopped: true });
        return true;
      }
      return false;
    });
  }

  /**
   * Take or drop a provider reference. `keepByHand`: a hand-started actor still uses the
   * provider, so before the app lets go it stays as if started by hand (a hand stop ends it).
   */
  runProvider(p: ProviderAction, revision: number, keepByHand = false): void {
    const group = `${p.app}|${p.hostId}|provider:${p.provider}`;
    const key = ActionRunner.providerKey(p);
    if (!this.admit(group, key)) return;
    const { hostId, provider, app: owner } = p;
    const handOver = keepByHand ? this.control.startProvider(hostId, { provider, fence: this.fence }).then(() => undefined) : Promise.resolve();
    const call =
      p.kind === 'take'
        ? this.control.startProvider(hostId, { provider, owner, fence: this.fence }).then((inv) => this.view.patchProvider(hostId, inv))
        : handOver.then(() => this.control.stopProvider(hostId, { provider, owner, fence: this.fence })).then(async (reply) => {
            if (!reply.running) this.view.patchProvider(hostId, { name: provider, stopped: true });
            else {
              // Others still hold it: what the view holds is its inventory entry as it is now.
              const now = (await this.control.getInventory(hostId)).providers.find((x) => x.name === provider);
              this.view.patchProvider(hostId, now ?? { name: provider, stopped: true });
            }
          });
    this.settle(group, key, call, { app: owner, revision, hostId, actor: `provider ${provider}`, version: '' }, () => ({ ok: true, provider: p }), (code) => {
      if (p.kind === 'drop' && code === 'TRELLIS_NOT_FOUND') {
        this.view.patchProvider(hostId, { name: provider, stopped: true });
        return true;
      }
      return false;
    });
  }

  private admit(group: string, key: string): boolean {
    if (this.inFlight.has(group)) return false;
    const f = this.failing.get(key);
    if (f && this.now() < f.nextAt) return false;
    this.inFlight.add(group);
    return true;
  }

  private settle(
    group: string,
    key: string,
    call: Promise<unknown>,
    what: { app: string; revision: number; hostId: string; actor: string; version: string; digest?: string },
    success: () => Outcome,
    fine: (code: string) => boolean,
  ): void {
    call
      .then(
        () => {
          this.failing.delete(key);
          this.done(success());
        },
        (err: unknown) => {
          const error = toTrellisError(err);
          if (fine(error.code)) {
            this.failing.delete(key);
            this.done(success());
            return;
          }
          const failures = (this.failing.get(key)?.failures ?? 0) + 1;
          const retryInMs = backoffMs(failures);
          const failure: StartFailure = { actor: what.actor, version: what.version, hostId: what.hostId, code: error.code, message: error.message, ...(what.digest ? { digest: what.digest } : {}) };
          this.failing.set(key, { app: what.app, revision: what.revision, failures, nextAt: this.now() + retryInMs, failure });
          this.done({ ok: false, app: what.app, revision: what.revision, hostId: what.hostId, actor: what.actor, code: error.code, message: error.message, retryInMs });
        },
      )
      .finally(() => this.inFlight.delete(group));
  }
}
