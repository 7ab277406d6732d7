/**
 * Helpers for tests and benches of declarative apps: write app revisions through lattice/apps
 * (as `trellis apply` stores them), read where an app's instances run (from the hosts
 * themselves), and keep HTTP load on a gateway while counting every non-2xx answer.
 */
import type { NatsConnection } from 'nats';
import type { ControlClient } from '../../lattice/control/index.ts';
import type { DocumentStore } from '../../lattice/documents/index.ts';
import { openApps, type AppStore } from '../../lattice/apps/index.ts';
import type { Subjects } from '../../lattice/subjects/index.ts';
import type { AppActorSpec, AppRevision, AppSpec, AppStatus, HostInventory, Spread } from '../../lattice/wire/index.ts';

/** The app documents of a lattice. */
export async function openAppDocs(nc: NatsConnection, subjects: Subjects): Promise<{ apps: AppStore; revisions: DocumentStore<AppRevision>; statuses: DocumentStore<AppStatus> }> {
  const apps = await openApps(nc, subjects);
  return { apps, revisions: apps.revisions, statuses: apps.statuses };
}

/** Store `spec` as the app's next revision (as apply does, after its checks); returns the revision number. */
export async function putRevision(docs: { apps: AppStore }, spec: AppSpec): Promise<number> {
  return (await docs.apps.putNext(spec, await docs.apps.current(spec.name))).value.revision;
}

/** Mark an app deleting (as `trellis delete app` does). */
export async function markDeleting(docs: { apps: AppStore }, app: string): Promise<void> {
  await docs.apps.markDeleting(app);
}

/** One actor of an app spec. */
export function actorSpec(name: string, version: string, digest: string, replicas: number | 'all', spread: Spread[] = [{ name: 'default', requirements: {}, weight: 1 }], extra: Partial<AppActorSpec> = {}): AppActorSpec {
  return { name, version, digest, replicas, spread, policy: {}, links: [], routes: [], ...extra };
}

/** An app's instances as the hosts report them: one row per host and version. */
export interface Placed {
  hostId: string;
  host: string;
  labels: Record<string, string>;
  actor: string;
  version: string;
  instances: number;
  revision: number;
}

/** Where the app's instances run now (from a ping of every host). */
export async function placedOf(client: ControlClient, app: string): Promise<Placed[]> {
  const hosts: HostInventory[] = await client.pingHosts({ waitMs: 1500 });
  return hosts.flatMap((h) =>
    h.actors.filter((a) => a.owner?.app === app).map((a) => ({ hostId: h.id, host: h.name, labels: h.labels, actor: a.name, version: a.version, instances: a.instances, revision: a.owner!.revision })),
  );
}

/** Total instances of rows matching `where`. */
export function total(rows: Placed[], where: (p: Placed) => boolean = () => true): number {
  return rows.filter(where).reduce((n, p) => n + p.instances, 0);
}

/** Keep `concurrency` GETs going on `url` until stopped; every answer's status is counted. */
export function httpLoad(url: string, concurrency = 8) {
  const statuses = new Map<number, number>();
  const failures: string[] = [];
  let ok = 0;
  let running = true;
  const done = Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (running) {
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
          const body = await res.text();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 200 && res.status < 300) ok++;
          else if (failures.length < 10) failures.push(`${res.status} ${body.slice(0, 200)}`);
        } catch (err) {
          statuses.set(0, (statuses.get(0) ?? 0) + 1);
          if (failures.length < 10) failures.push(`fetch failed: ${(err as Error).message}`);
        }
      }
    }),
  );
  return {
    get ok() {
      return ok;
    },
    statuses,
    failures,
    /** Answers that were not 2xx (fetch failures count as status 0). */
    bad: () => [...statuses].filter(([s]) => s < 200 || s >= 300).reduce((n, [, c]) => n + c, 0),
    stop: async () => {
      running = false;
      await done;
    },
  };
}
