/**
 * The planner: every app against the live hosts, in one pure pass. Apps are planned in name
 * order and hosts are taken in id order, so equal inputs give equal plans.
 */
import type { AppRevision } from '../wire/apps.ts';
import { planActor, type Context, type Current, type Slot } from './actors.ts';
import { allProviderRefs, planProviders } from './providers.ts';
import { specProblem } from './shares.ts';
import type { ActorAction, ActorPlacement, ActorTarget, AppPlacement, PlacementActorGroup, PlacementPlan, PlanInput } from './types.ts';

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Owned {
  slot: Slot;
  group: PlacementActorGroup;
}

export function plan(input: PlanInput): PlacementPlan {
  const held = new Set(input.heldOut ?? []);
  const hosts = [...input.hosts].sort((a, b) => byString(a.id, b.id)).filter((h, i, all) => i === 0 || all[i - 1]!.id !== h.id);
  const byName = new Map<string, { h: number; g: PlacementActorGroup }[]>();
  const slots: Slot[] = hosts.map((host, index) => {
    let load = 0;
    for (const g of host.actors) {
      load += g.instances;
      const list = byName.get(g.name);
      if (list) list.push({ h: index, g });
      else byName.set(g.name, [{ h: index, g }]);
    }
    return { index, host, heldOut: held.has(host.id), load };
  });
  const ctx: Context = {
    slots,
    matching: new Map(),
    matchingOf: new WeakMap(),
    byName,
    tc: new Int32Array(slots.length),
    block: new Int8Array(slots.length),
    refs: allProviderRefs(slots),
  };
  const owned = new Map<string, Owned[]>();
  for (const slot of slots) {
    for (const group of slot.host.actors) {
      if (!group.owner) continue;
      const list = owned.get(group.owner.app);
      if (list) list.push({ slot, group });
      else owned.set(group.owner.app, [{ slot, group }]);
    }
  }
  const out: PlacementPlan = { targets: [], actions: [], providers: [], apps: [] };
  for (const app of [...input.apps].sort((a, b) => byString(a.name, b.name))) planApp(ctx, app, owned.get(app.name) ?? [], out);
  return out;
}

const groupKey = (g: { name: string; version: string; digest: string }) => `${g.name}@${g.version}@${g.digest}`;

/** Report groups of versions the spec does not hold: desired 0, placed = what is kept. */
function oldPlacements(groups: Owned[], kept: (o: Owned) => boolean): ActorPlacement[] {
  const byKey = new Map<string, ActorPlacement>();
  for (const o of groups) {
    const k = groupKey(o.group);
    let p = byKey.get(k);
    if (!p) byKey.set(k, (p = { name: o.group.name, version: o.group.version, digest: o.group.digest, current: false, desired: 0, placed: 0, running: 0, spreads: [] }));
    p.running += o.group.instances;
    if (kept(o)) p.placed += o.group.instances;
  }
  return [...byKey.values()];
}

function stop(o: Owned, reason: ActorAction['reason']): ActorAction {
  const g = o.group;
  o.slot.load -= g.instances;
  return { kind: 'stop', hostId: o.slot.host.id, actor: g.name, version: g.version, digest: g.digest, count: 0, from: g.instances, owner: g.owner!, reason };
}

function keep(o: Owned): ActorTarget {
  const g = o.group;
  return { hostId: o.slot.host.id, actor: g.name, version: g.version, digest: g.digest, count: g.instances, owner: g.owner! };
}

function planApp(ctx: Context, app: AppRevision, own: Owned[], out: PlacementPlan): void {
  const deleting = app.deleting === true;
  const problem = specProblem(app);
  if (problem && !deleting) {
    // Frozen: what runs keeps running, as it is, until a valid revision comes.
    for (const o of own) out.targets.push(keep(o));
    const providers = [...(ctx.refs.get(app.name) ?? [])].map(([kind, hosts]) => ({ kind, desired: 0, placed: hosts.size, running: hosts.size, spreads: [] }));
    out.apps.push({ name: app.name, revision: app.revision, deleting, error: problem, actors: oldPlacements(own, () => true), providers });
    return;
  }
  // Hosts run a newer revision than the one given: this input is stale (a leader that read the
  // app before a newer apply). Acting on it would roll the newer revision back.
  const newer = own.reduce((n, o) => Math.max(n, o.group.owner!.revision), 0);
  if (newer > app.revision) {
    for (const o of own) out.targets.push(keep(o));
    const stale = `hosts run revision ${newer} of ${app.name}, newer than revision ${app.revision} being planned: read the app again`;
    out.apps.push({ name: app.name, revision: app.revision, deleting, stale, actors: oldPlacements(own, () => true), providers: [] });
    return;
  }
  const placement: AppPlacement = { name: app.name, revision: app.revision, deleting, actors: [], providers: [] };
  // One owner object for every target and action of this revision (read-only data).
  const owner = { app: app.name, revision: app.revision };
  out.apps.push(placement);
  const specs = deleting ? [] : app.spec.actors;
  const names = new Set(specs.map((a) => a.name));
  const entriesOf = new Map<string, number[]>();
  for (const [i, a] of specs.entries()) (entriesOf.get(a.name) ?? entriesOf.set(a.name, []).get(a.name)!).push(i);
  const currents = specs.map(() => new Map<number, Current>());
  const old = new Map<string, Owned[]>();
  const readyOfName = new Map<string, Map<number, number>>();
  const removed: Owned[] = [];
  for (const o of own) {
    const g = o.group;
    if (!names.has(g.name)) {
      out.actions.push(stop(o, 'remove'));
      removed.push(o);
      continue;
    }
    let ready = readyOfName.get(g.name);
    if (!ready) readyOfName.set(g.name, (ready = new Map()));
    ready.set(o.slot.index, (ready.get(o.slot.index) ?? 0) + g.instances);
    const entry = entriesOf.get(g.name)!.find((i) => specs[i]!.version === g.version && specs[i]!.digest === g.digest);
    if (entry !== undefined) currents[entry]!.set(o.slot.index, g as Current);
    else {
      const list = old.get(g.name);
      if (list) list.push(o);
      else old.set(g.name, [o]);
    }
  }
  placement.actors.push(...oldPlacements(removed, () => false));

  // Every version of the spec first (the surge), then what the old versions may give up.
  const done = new Map<string, boolean>();
  const frees = new Map<string, number[]>();
  for (const [i, spec] of specs.entries()) {
    const result = planActor(ctx, app, spec, currents[i]!, readyOfName.get(spec.name) ?? new Map(), old.has(spec.name), owner);
    for (const a of result.actions) out.actions.push(a);
    for (const [h, count] of result.emitted) {
      out.targets.push({ hostId: ctx.slots[h]!.host.id, actor: spec.name, version: spec.version, digest: spec.digest, count, policy: spec.policy, owner });
    }
    placement.actors.push(result.placement);
    const p = result.placement;
    // An old version goes once the new one runs in full; a new version that has nowhere to run
    // (desired 0 but replicas > 0) never retires the old one: the app would go dark.
    const complete = p.running >= p.desired && (p.running > 0 || spec.replicas === 0);
    done.set(spec.name, (done.get(spec.name) ?? true) && complete);
    if (result.free !== undefined) (frees.get(spec.name) ?? frees.set(spec.name, []).get(spec.name)!).push(result.free);
  }
  const gone = new Set<Owned>();
  for (const [name, groups] of old) {
    if (done.get(name)) {
      for (const o of groups) {
        out.actions.push(stop(o, 'retire'));
        gone.add(o);
      }
      continue;
    }
    const freeHosts = new Set(frees.get(name) ?? []);
    for (const o of groups) {
      // The in-place replacement: the old build at the new version's number, on one host.
      const blocksNew = specs.some((s) => s.name === name && s.version === o.group.version);
      if (freeHosts.has(o.slot.index) && blocksNew) {
        out.actions.push(stop(o, 'free'));
        gone.add(o);
      } else out.targets.push(keep(o));
    }
  }
  placement.actors.push(...oldPlacements([...old.values()].flat(), (o) => !gone.has(o)));

  const providers = planProviders(ctx, app, deleting);
  out.providers.push(...providers.actions);
  placement.providers = providers.placements;
}
