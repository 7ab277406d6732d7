/**
 * One leadership term of the reconciler: follow the app revisions, statuses, links and routes,
 * watch the live hosts, and on every kick (liveness change, inventory, document change) and
 * every interval, plan every app with lattice/placement and run the actions. A pass never waits
 * for the commands it starts: slow starts (a large component, a missing artifact's retries)
 * must not hold up the repair of another app. Placing is idempotent (instances are owned by app
 * and revision), so a new leader goes on from what the hosts report, with no duplicate.
 */
import type { NatsConnection } from 'nats';
import type { ControlClient } from '../control/index.ts';
import { openDocuments, type DocumentStore, type Stored } from '../documents/index.ts';
import { httpRouteKind, type HttpRoute } from '../http-routes/index.ts';
import { linkKind, type Link } from '../links/index.ts';
import type { Logger } from '../log/index.ts';
import { plan, status, type ActorAction } from '../placement/index.ts';
import type { EventType, Subjects } from '../subjects/index.ts';
import { encodeEvent, makeEvent, type AppRevision, type AppStatus, type EventData, type HostInventory } from '../wire/index.ts';
import { ActionRunner, type Outcome } from './actions.ts';
import { appRevisionKind, appStatusKind } from '../apps/index.ts';
import { hasDeclared, syncDeclared, type Followed } from './declared.ts';
import { watchHosts, type HostChange, type HostView } from './hosts.ts';
import { effectiveRevision, startCanaryController } from '../canary-controller/index.ts';

/** A status is written again, unchanged, this often, so readers see it is current. */
const STATUS_REFRESH_MS = 15_000;
/** Instances lost with a dead host and placed again within this window are "replaced". */
const REPLACE_WINDOW_MS = 60_000;

export interface TermOptions {
  nc: NatsConnection;
  subjects: Subjects;
  control: ControlClient;
  /** The leader's participant id (in events). */
  id: string;
  logger: Logger;
  intervalMs: number;
  holdDownMs: number;
  /** Still the leader? Checked before every pass and every write. */
  isLeader: () => boolean;
  /** This term's fencing token, sent with every command (the lease revision when it began). */
  fence: number;
}

/** A running term; `close` ends it (the lease was lost or the controller stops). */
export interface Term {
  kick(): void;
  close(): Promise<void>;
}

async function follow<T>(store: DocumentStore<T>, onChange: () => void): Promise<{ followed: Followed<T>; revisions: Map<string, Stored<T>>; stop: () => void }> {
  const docs = new Map<string, T>();
  const revisions = new Map<string, Stored<T>>();
  let ready = false;
  const stop = await store.follow(({ key, value, revision }) => {
    if (value === undefined) docs.delete(key), revisions.delete(key);
    else docs.set(key, value), revisions.set(key, { key, value, revision });
    if (ready) onChange();
  });
  ready = true;
  return { followed: { store, docs }, revisions, stop };
}

/** Start a term: resolves once the documents and the hosts are known and the first pass ran. */
export async function startTerm(options: TermOptions): Promise<Term> {
  const { nc, subjects, control, logger } = options;
  let closed = false;
  let kicked = false;
  let running: Promise<void> | undefined;
  // Kicks during start-up (documents and hosts arriving) wait for the first pass.
  let ready = false;
  const kick = () => {
    kicked = true;
    if (ready && !running && !closed) running = loop();
  };
  const emit = <K extends EventType>(kind: K, data: EventData[K]) => {
    if (!nc.isClosed()) nc.publish(subjects.event(kind), encodeEvent(makeEvent(kind, `/trellis/${subjects.lattice}/controller/${options.id}`, data)));
  };

  const [apps, statuses, links, routes] = await Promise.all([
    openDocuments(nc, subjects, appRevisionKind).then((s) => follow(s, kick)),
    openDocuments(nc, subjects, appStatusKind).then((s) => follow(s, () => {})),
    openDocuments(nc, subjects, linkKind).then((s) => follow(s, () => {})),
    openDocuments(nc, subjects, httpRouteKind).then((s) => follow(s, () => {})),
  ]);
  /** Owned groups of hosts that died or left, within the replace window (for actor_replaced). */
  let lost: { app: string; actor: string; hostName: string; at: number }[] = [];
  const onHost = (change: HostChange) => {
    if (change.kind === 'died' || change.kind === 'left') {
      const at = Date.now();
      lost = lost.filter((l) => l.at >= at - REPLACE_WINDOW_MS);
      for (const a of change.inventory.actors) if (a.owner) lost.push({ app: a.owner.app, actor: a.name, hostName: change.inventory.name, at });
      logger.info({ hostId: change.hostId, name: change.inventory.name, why: change.why }, change.kind === 'died' ? 'host counted dead' : 'host left');
    }
    kick();
  };
  // Canaries start and stop with the term; their documents change what the plan runs (stable
  // and canary side by side), so a change kicks a pass. Started beside the host watch (the
  // first pass needs both); the controller reads the view only once it ticks.
  let view!: HostView;
  const lateView: HostView = { live: () => view.live(), heldOut: () => view.heldOut(), patchActor: (h, a) => view.patchActor(h, a), patchProvider: (h, p) => view.patchProvider(h, p), close: () => view.close() };
  const [watched, started] = await Promise.allSettled([
    watchHosts(nc, subjects, control, { holdDownMs: options.holdDownMs, onChange: onHost }),
    startCanaryController({ nc, subjects, control, view: lateView, id: options.id, logger, fence: options.fence, isLeader: () => view !== undefined && options.isLeader(), apps: () => [...apps.followed.docs.values()], onChange: kick }),
  ]);
  if (watched.status === 'rejected' || started.status === 'rejected') {
    if (started.status === 'fulfilled') await started.value.close();
    if (watched.status === 'fulfilled') watched.value.close();
    throw watched.status === 'rejected' ? watched.reason : (started as PromiseRejectedResult).reason;
  }
  view = watched.value;
  const canaries = started.value;
  const lastWritten = new Map<string, { json: string; at: number }>();
  /** Apps this term deleted: what they still own on hosts that come back is stopped. */
  const deleted = new Set<string>();

  const outcome = (o: Outcome) => {
    if (!o.ok) {
      const reason = `${o.code}: ${o.message}`;
      logger.warn({ app: o.app, hostId: o.hostId, actor: o.actor, code: o.code, retryInMs: o.retryInMs }, `reconcile failed: ${o.message}`);
      emit('reconcile_failed', { app: o.app, revision: o.revision, reason, code: o.code, hostId: o.hostId, ...(o.actor ? { actor: o.actor } : {}), retryInMs: o.retryInMs, leader: options.id });
    } else if ('action' in o) placed(o.action);
    kick();
  };
  const runner = new ActionRunner(control, view, outcome, options.fence);

  const placed = (a: ActorAction) => {
    const { app, revision } = a.owner;
    emit('actor_placed', { app, revision, hostId: a.hostId, actor: a.actor, version: a.version, instances: a.kind === 'stop' ? 0 : a.count, previous: a.from, leader: options.id });
    const added = (a.kind === 'stop' ? 0 : a.count) - a.from;
    if (added <= 0) return;
    const cutoff = Date.now() - REPLACE_WINDOW_MS;
    const i = lost.findIndex((l) => l.app === app && l.actor === a.actor && l.at >= cutoff);
    let reason: string | undefined;
    if (i >= 0) reason = `host ${lost.splice(i, 1)[0]!.hostName} is gone`;
    else if (a.reason === 'update') reason = `rolling update to ${a.version}`;
    if (reason) emit('actor_replaced', { app, revision, actor: a.actor, version: a.version, hostId: a.hostId, instances: added, reason, leader: options.id });
  };

  const writeStatus = async (app: AppRevision, s: AppStatus) => {
    const { observedAt: _ignored, ...content } = s;
    const json = JSON.stringify(content);
    const last = lastWritten.get(app.name);
    if (last && last.json === json && Date.now() - last.at < STATUS_REFRESH_MS) return;
    const previous = statuses.followed.docs.get(app.name);
    if (!options.isLeader()) return;
    await statuses.followed.store.put(s);
    statuses.followed.docs.set(app.name, s);
    lastWritten.set(app.name, { json, at: Date.now() });
    if (!app.deleting && previous?.revision !== app.revision) {
      emit('app_updated', { app: app.name, revision: app.revision, ...(previous ? { previousRevision: previous.revision } : {}), leader: options.id });
    }
    if (s.phase === 'Deployed' && (previous?.phase !== 'Deployed' || previous.revision !== app.revision)) {
      emit('app_deployed', { app: app.name, revision: app.revision, leader: options.id });
      logger.info({ app: app.name, revision: app.revision }, 'app deployed');
    }
  };

  /** A deleting app whose instances, references, links and routes are all gone: drop its docs. */
  const finishDelete = async (doc: Stored<AppRevision>, hosts: HostInventory[]) => {
    const name = doc.value.name;
    const owns = hosts.some((h) => h.actors.some((a) => a.owner?.app === name) || h.providers.some((p) => p.owners?.includes(name)));
    if (owns || runner.hasInFlight(name) || hasDeclared(name, links.followed, routes.followed) || !options.isLeader()) return;
    try {
      await apps.followed.store.delete(name, { expectRevision: doc.revision });
    } catch {
      return; // Applied again meanwhile: the new revision is planned instead.
    }
    await statuses.followed.store.delete(name).catch(() => false);
    lastWritten.delete(name);
    deleted.add(name);
    emit('app_deleted', { app: name, revision: doc.value.revision, leader: options.id });
    logger.info({ app: name, revision: doc.value.revision }, 'app deleted');
  };

  const pass = async () => {
    const docs = [...apps.revisions.values()];
    const hosts = view.live();
    // What an app's actor runs while it is in a canary (or just applied with a `canary:` block).
    const revisions = docs.map((d) => effectiveRevision(d.value, canaries.records(), hosts));
    const p = plan({ apps: revisions, hosts, heldOut: view.heldOut() });
    const keep = new Set<string>();
    for (const a of p.actions) {
      keep.add(ActionRunner.actorKey(a));
      runner.runActor(a);
    }
    const revisionOf = new Map(revisions.map((r) => [r.name, r.revision]));
    // Provider kinds that hand-started actors are linked to: an app letting go of one leaves it running by hand.
    const usedByHand = new Set<string>();
    for (const h of hosts) for (const a of h.actors) if (!a.owner) for (const l of links.followed.docs.values()) if (l.actor === a.name) usedByHand.add(l.provider);
    for (const r of p.providers) {
      keep.add(ActionRunner.providerKey(r));
      runner.runProvider(r, revisionOf.get(r.app) ?? 0, r.kind === 'drop' && r.reason === 'remove' && usedByHand.has(r.provider));
    }
    // What apps this term deleted still own (on a host that came back): stop it.
    for (const h of hosts) {
      for (const a of h.actors) {
        if (a.owner && deleted.has(a.owner.app) && !revisionOf.has(a.owner.app)) {
          runner.runActor({ kind: 'stop', hostId: h.id, actor: a.name, version: a.version, digest: a.digest, count: 0, from: a.instances, owner: a.owner, reason: 'remove' });
        }
      }
    }
    runner.prune(keep);
    for (const [i, doc] of docs.entries()) {
      const app = revisions[i]!;
      try {
        if (await syncDeclared(app, links.followed, routes.followed)) kicked = true;
        const s = status(app, hosts, p, { now: new Date(), failures: runner.failuresOf(app.name, app.revision), previous: statuses.followed.docs.get(app.name) });
        await writeStatus(app, s);
        if (app.deleting) await finishDelete(doc, hosts);
      } catch (err) {
        logger.warn({ app: app.name, err: (err as Error).message }, 'reconcile of app failed');
        emit('reconcile_failed', { app: app.name, revision: app.revision, reason: (err as Error).message, leader: options.id });
      }
    }
  };

  const loop = async () => {
    while (kicked && !closed) {
      kicked = false;
      if (!options.isLeader()) break;
      try {
        await pass();
      } catch (err) {
        logger.error({ err }, 'reconcile pass failed');
      }
    }
    running = undefined;
  };

  const timer = setInterval(kick, options.intervalMs);
  timer.unref();
  ready = true;
  kick();
  await running;
  logger.info({ apps: apps.revisions.size, hosts: view.live().length }, 'reconciler leading');
  return {
    kick,
    async close() {
      closed = true;
      clearInterval(timer);
      await canaries.close();
      view.close();
      apps.stop();
      statuses.stop();
      links.stop();
      routes.stop();
      await running;
    },
  };
}
