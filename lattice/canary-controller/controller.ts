/**
 * The canary controller: run by the reconciler's leader for the length of its term. Every tick
 * it reads each canary document, takes the collector's window since the document's window
 * start, lets K1's analysis decide, persists the transition with compare-and-set, then does
 * what the document asks for. Everything it does is derived from the document, not from what
 * this leader remembers (level-triggered): the weights that state calls for, the effects still
 * pending (a RolledBack run whose canary still runs, a Promoted run whose old stable still runs,
 * an app revision not yet moved), the canary instances `--source` asked for. So a new leader
 * after a failover finishes what the old one started and goes on from the same step.
 */
import type { NatsConnection } from 'nats';
import { actualWeight, analyze, begin, emptyTotals, isActive, start, summarize, tick, type AnalysisWindow } from '../canary/index.ts';
import type { CanarySpec } from '../apps/canary.ts';
import { openApps, type AppStore } from '../apps/index.ts';
import type { ControlClient } from '../control/index.ts';
import type { Stored } from '../documents/index.ts';
import type { Logger } from '../log/index.ts';
import { collectMetrics, type MetricsCollector } from '../metrics/index.ts';
import type { HostView } from '../reconciler/hosts.ts';
import type { Subjects } from '../subjects/index.ts';
import type { ActorWeights } from '../weights/index.ts';
import type { AppRevision, CanaryState } from '../wire/index.ts';
import { appSpecAtVersion, canaryServes, desiredWeights, instancesOf, missingCanaryStarts, pendingManifestCanary, weightsMatch, type CanaryRecord } from './record.ts';
import { openWriter, transition, type Operation, type Writer } from './store.ts';

/** How often the controller looks at every canary (a decision still waits for its interval). */
export const CANARY_TICK_MS = 250;
/** Callers apply a weights change within a second; the old stable stops only after this. */
export const RETIRE_GRACE_MS = 2000;
/** How much longer an old stable that still gets requests after the grace is waited for. */
export const RETIRE_WAIT_MS = 10_000;
/** A failed start or stop of the controller's is sent again after this. */
const COMMAND_RETRY_MS = 3000;
/** `canary status` sees the window refreshed this often while nothing is decided. */
const WINDOW_REFRESH_MS = 2000;

export interface CanaryControllerOptions {
  nc: NatsConnection;
  subjects: Subjects;
  control: ControlClient;
  view: HostView;
  /** The leader's participant id (events say who decided). */
  id: string;
  logger: Logger;
  fence: number;
  isLeader: () => boolean;
  /** The app revisions the term follows (manifest canaries start from them). */
  apps: () => Iterable<AppRevision>;
  /** A canary document changed (the reconciler plans app canaries from them). */
  onChange: () => void;
  tickMs?: number;
  retireGraceMs?: number;
}

export interface CanaryController {
  /** Every canary document by actor, as last read. */
  records(): ReadonlyMap<string, CanaryRecord>;
  /** The collector's window of a canary now (tests, status). */
  readonly collector: MetricsCollector;
  close(): Promise<void>;
}

export async function startCanaryController(o: CanaryControllerOptions): Promise<CanaryController> {
  const logger = o.logger.child({ component: 'canary' });
  const writer: Writer = await openWriter(o.nc, o.subjects, o.id, `/trellis/${o.subjects.lattice}/controller/${o.id}`);
  const appStore: AppStore = await openApps(o.nc, o.subjects);
  const collector = await collectMetrics(o.nc, o.subjects);
  const docs = new Map<string, Stored<CanaryRecord>>();
  const values = new Map<string, CanaryRecord>();
  const weights = new Map<string, ActorWeights>();
  let closed = false;
  const stopDocs = await writer.docs.follow(({ key, value, revision }) => {
    if (value === undefined) docs.delete(key), values.delete(key);
    else docs.set(key, { key, value, revision }), values.set(key, value);
    o.onChange();
  });
  const stopWeights = await writer.weights.follow((actor, w) => (w ? weights.set(actor, w) : weights.delete(actor)));
  /** Commands in flight, so a slow start is not sent again every tick. */
  const inFlight = new Set<string>();
  const retireGraceMs = o.retireGraceMs ?? RETIRE_GRACE_MS;

  /** When a command last failed: it is tried again only after COMMAND_RETRY_MS (a missing artifact stays missing a while). */
  const failedAt = new Map<string, number>();
  const run = (key: string, what: () => Promise<unknown>) => {
    if (inFlight.has(key) || Date.now() - (failedAt.get(key) ?? 0) < COMMAND_RETRY_MS) return;
    inFlight.add(key);
    what()
      .then(() => failedAt.delete(key))
      .catch((err: unknown) => {
        failedAt.set(key, Date.now());
        logger.warn({ key, err: (err as Error).message }, `canary command failed; tried again in ${COMMAND_RETRY_MS} ms`);
      })
      .finally(() => inFlight.delete(key));
  };

  /** Write a transition computed from the stored revision; on a lost race, apply the op to what won. */
  const apply = async (stored: Stored<CanaryRecord>, op: Operation) => {
    if (!o.isLeader()) return;
    const out = await transition(writer, stored.key, op, { current: stored });
    for (const e of out.transition.events) logger.info({ actor: stored.key, event: e.kind, step: e.data.step, weight: e.data.weight, reason: e.data.reason }, 'canary decision');
    return out.transition.changed ? out : undefined;
  };

  /** A bookkeeping write (effects done, window); a lost race is simply retried next tick. */
  const update = async (stored: Stored<CanaryRecord>, patch: Partial<CanaryRecord>) => {
    if (!o.isLeader()) return;
    await writer.docs.put({ ...stored.value, ...patch }, { expectRevision: stored.revision }).catch(() => undefined);
  };

  const windowOf = (r: CanaryState, now: number): AnalysisWindow => {
    const totals = collector.window(r.actor, Date.parse(r.windowStartedAt), now);
    return { stable: totals[r.stable] ?? emptyTotals(), canary: totals[r.canary] ?? emptyTotals() };
  };

  const analyseRun = async (stored: Stored<CanaryRecord>) => {
    const r = stored.value;
    const hosts = o.view.live();
    if (r.phase === 'Progressing' && r.step === 0) {
      for (const s of missingCanaryStarts(r, hosts)) {
        run(`start:${s.hostId}:${r.actor}:${r.canary}`, () => o.control.startActor(s.hostId, { actor: r.actor, version: r.canary, digest: r.canaryDigest!, count: s.count, fence: o.fence }));
      }
      if (canaryServes(r, hosts)) return apply(stored, (st) => ({ transition: st && st.generation === r.generation ? begin(st, Date.now()) : { state: st, changed: false, events: [], effects: [] } }));
    }
    const now = Date.now();
    // Nothing can be decided before the interval (or an earlier deadline) is over: no window to
    // merge then, except now and then for `canary status`.
    const refreshDue = !r.lastWindow || now - Date.parse(r.lastWindow.at) >= WINDOW_REFRESH_MS;
    if (r.step > 0 && now - Date.parse(r.windowStartedAt) < Math.min(r.spec.intervalMs, r.spec.progressDeadlineMs) && !refreshDue) return undefined;
    const window = windowOf(r, now);
    const decision = analyze(window, r.spec, r, now);
    if (decision.kind !== 'wait') {
      const lastWindow = { at: new Date(now).toISOString(), ...(actualWeight(window) !== undefined ? { actual: actualWeight(window)! } : {}), stable: summarize(window.stable), canary: summarize(window.canary) };
      // On a lost race the same decision is applied to the state that won: tick() ignores a
      // stale step or generation but keeps a rollback of this run (evidence stays evidence).
      return apply(stored, (st) => ({ transition: st ? tick(st, decision, Date.now()) : { state: st, changed: false, events: [], effects: [] }, extra: { lastWindow } }));
    }
    if (refreshDue) {
      const actual = actualWeight(window);
      await update(stored, { lastWindow: { at: new Date(now).toISOString(), ...(actual !== undefined ? { actual } : {}), stable: summarize(window.stable), canary: summarize(window.canary) } });
    }
    return undefined;
  };

  /** Weights and pending effects, from the document alone. */
  const converge = async (stored: Stored<CanaryRecord>) => {
    const r = stored.value;
    const intent = desiredWeights(r);
    const current = weights.get(r.actor);
    if (!weightsMatch(current, intent)) {
      if (!o.isLeader()) return;
      await writer.weights.set(r.actor, intent.weights, undefined, intent.sticky ? { sticky: intent.sticky } : {});
      return; // Effects that depend on the weights wait for the write to be seen.
    }
    const hosts = o.view.live();
    const done: number[] = [];
    let retiredAt: string | undefined;
    for (const [i, e] of r.pending.entries()) {
      if (e.kind === 'stop-version') {
        // An app's canary stops by the reconciler (the effective revision drops it).
        if (e.version === r.stable || (e.version === r.canary && isActive(r))) { done.push(i); continue; }
        const left = r.app ? new Map() : instancesOf(hosts, r.actor, e.version, {});
        if (left.size === 0) done.push(i);
        for (const hostId of left.keys()) run(`stop:${hostId}:${r.actor}:${e.version}`, () => o.control.stopActor(hostId, { actor: r.actor, version: e.version, fence: o.fence }));
      } else if (e.kind === 'retire-version') {
        if (r.phase !== 'Promoted') { done.push(i); continue; }
        // Weights first, and applied: every caller follows the weights within a second, and the
        // windows show it (no unpinned traffic reaches the old version any more). Pinned testers
        // may keep calling it: after RETIRE_WAIT_MS more it is retired all the same.
        const since = Date.now() - Date.parse(current!.updatedAt);
        if (since < retireGraceMs) continue;
        const stillServed = collector.window(r.actor, Date.parse(current!.updatedAt) + retireGraceMs, Date.now())[e.version]?.requests ?? 0;
        if (stillServed > 0 && since < retireGraceMs + RETIRE_WAIT_MS) continue;
        const left = r.app ? new Map() : instancesOf(hosts, r.actor, e.version, {});
        if (left.size === 0) {
          done.push(i);
          retiredAt = new Date().toISOString();
        }
        // The host's stop drains: calls in flight finish, new ones go to the promoted version.
        for (const hostId of left.keys()) run(`stop:${hostId}:${r.actor}:${e.version}`, () => o.control.stopActor(hostId, { actor: r.actor, version: e.version, fence: o.fence }));
      } else {
        const app = await appStore.current(e.app);
        if (!app || app.value.deleting) { done.push(i); continue; }
        const spec = appSpecAtVersion(app.value, r);
        if (!spec) { done.push(i); continue; }
        if (!o.isLeader()) return;
        await appStore.putNext(spec, app).then(
          (s) => logger.info({ app: e.app, revision: s.value.revision, actor: r.actor, version: r.canary }, 'canary promoted: app desired state moved'),
          () => undefined,
        );
      }
    }
    if (done.length > 0) {
      const pending = r.pending.filter((_, i) => !done.includes(i));
      await update(stored, { pending, ...(retiredAt ? { retiredAt } : {}) });
    } else if (!isActive(r) && r.pending.length === 0 && !r.settled) {
      await update(stored, { settled: true });
    }
  };

  /** An app revision asks for a new version of an actor with a `canary:` block: start its run. */
  const manifestStarts = async () => {
    const hosts = o.view.live();
    for (const app of o.apps()) {
      for (const spec of app.spec.actors) {
        if (!spec.canary) continue;
        const stored = docs.get(spec.name);
        const due = pendingManifestCanary(app, spec, stored?.value, hosts);
        if (!due || !o.isLeader()) continue;
        const op: Operation = (st, now) => ({
          transition: start(st, { actor: spec.name, app: app.name, stable: due.stable, canary: spec.version, canaryDigest: spec.digest, spec: spec.canary as unknown as CanarySpec }, now),
          extra: { stableSpec: due.stableSpec, canarySpec: due.canarySpec, startInstances: false },
        });
        const out = await transition(writer, spec.name, op, stored ? { current: stored } : {}).catch((err: unknown) => logger.warn({ actor: spec.name, err: (err as Error).message }, 'manifest canary could not start'));
        if (out) logger.info({ app: app.name, actor: spec.name, stable: due.stable, canary: spec.version }, 'canary started by manifest');
      }
    }
  };

  let running = false;
  const loop = async () => {
    if (running || closed || !o.isLeader()) return;
    running = true;
    try {
      await manifestStarts();
      for (const stored of [...docs.values()]) {
        if (closed || !o.isLeader()) break;
        try {
          if (stored.value.settled) continue;
          if (isActive(stored.value)) {
            const out = await analyseRun(stored);
            if (out) continue; // The new state is converged next tick, from the document.
          }
          await converge(docs.get(stored.key) ?? stored);
        } catch (err) {
          logger.warn({ actor: stored.key, err: (err as Error).message }, 'canary tick failed');
        }
      }
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void loop(), o.tickMs ?? CANARY_TICK_MS);
  timer.unref();

  return {
    records: () => values,
    collector,
    async close() {
      closed = true;
      clearInterval(timer);
      stopDocs();
      stopWeights();
      collector.close();
      while (running) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

