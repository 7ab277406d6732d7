/**
 * Ownership rules of `trellis apply`, as a pure function of what the lattice holds:
 * - an actor name belongs to one app: an app may not list an actor that another app lists (or
 *   whose instances another app placed);
 * - an HTTP prefix (with its host) is routed by one app: not one another app routes, nor one
 *   routed by hand (`trellis http route add`) to an actor that is not this app's;
 * - an app may not list an actor that hand-started instances run at another version (stop them,
 *   or apply that version). Hand-started instances at the same version are left alone, and not
 *   counted as the app's replicas.
 */
import type { HttpRoute } from '../http-routes/index.ts';
import type { AppRevision, AppSpec, HostInventory } from '../wire/index.ts';

/** What the lattice holds that an apply must respect. */
export interface ConflictInputs {
  /** The current revisions of the other apps (this app's own is ignored if present). */
  apps: AppRevision[];
  hosts: HostInventory[];
  routes: HttpRoute[];
  /** This app's current spec, if any: its own routes and actors are not conflicts. */
  current?: AppSpec;
}

/** Every ownership conflict of applying `spec`, as sentences; empty when there is none. */
export function findConflicts(spec: AppSpec, inputs: ConflictInputs): string[] {
  const out: string[] = [];
  const others = inputs.apps.filter((a) => a.name !== spec.name);
  const ours = new Set([...spec.actors.map((a) => a.name), ...(inputs.current?.actors.map((a) => a.name) ?? [])]);
  for (const actor of spec.actors) {
    const owner = others.find((o) => o.spec.actors.some((a) => a.name === actor.name));
    if (owner) {
      out.push(`actor ${actor.name} belongs to app ${owner.name}${owner.deleting ? ' (being deleted; apply again once it is gone)' : ''}: an actor name belongs to one app`);
      continue;
    }
    const placed = inputs.hosts.flatMap((h) => h.actors.filter((a) => a.name === actor.name && a.owner && a.owner.app !== spec.name).map((a) => ({ host: h.name, app: a.owner!.app })));
    if (placed.length > 0) {
      out.push(`actor ${actor.name} runs on ${placed[0]!.host} placed by app ${placed[0]!.app}: an actor name belongs to one app`);
      continue;
    }
    const byHand = inputs.hosts.flatMap((h) => h.actors.filter((a) => a.name === actor.name && !a.owner && a.version !== actor.version).map((a) => ({ host: h.name, version: a.version })));
    for (const version of new Set(byHand.map((b) => b.version))) {
      const hosts = byHand.filter((b) => b.version === version).map((b) => b.host);
      out.push(`actor ${actor.name}@${version} runs started by hand on ${hosts.join(', ')}, and the app wants ${actor.version}: stop it (\`trellis stop actor ${actor.name} --version ${version}\`) or apply version ${version}`);
    }
  }
  const routed = (r: { prefix: string; host?: string }) => `${r.host ?? ''}${r.prefix}`;
  for (const actor of spec.actors) {
    for (const route of actor.routes) {
      const other = others.find((o) => o.spec.actors.some((a) => a.routes.some((r) => routed(r) === routed(route))));
      if (other) {
        out.push(`route ${routed(route)} is routed by app ${other.name}: an HTTP prefix (and host) is routed by one app`);
        continue;
      }
      const existing = inputs.routes.find((r) => routed(r) === routed(route));
      if (existing && existing.actor !== actor.name && !ours.has(existing.actor)) {
        out.push(`route ${routed(route)} is routed by hand to actor ${existing.actor}: delete it first (\`trellis http route del ${route.prefix}${route.host ? ` --hostname ${route.host}` : ''}\`)`);
      }
    }
  }
  return out;
}
