/**
 * Least-privilege NATS permissions per participant role, as a pure function of (role, scope):
 * what each role publishes and subscribes to in one lattice, and nothing of any other lattice.
 * Printed by `trellis nats permissions` for a nats-server `authorization` block (conf) or a
 * user JWT (json); tests run every participant under exactly these lists.
 *
 * Where the lists come from:
 * - core subjects from lattice/subjects (control, events, beats, metrics, rpc, providers);
 * - replies: every participant's requests carry a reply subject under its own inbox prefix
 *   (`_INBOX.<lattice>.<user>`), the only inbox it may subscribe to, so a reply names who asked;
 *   responders (hosts, providers) publish replies under `_INBOX.<lattice>.>` (a host's progress
 *   replies leave on another connection than the request came in on, so nats-server's
 *   allow_responses cannot express it);
 * - KV buckets and object stores through the JetStream API, per stream, as nats.js 2.x calls it
 *   (kv.js, objectstore.js, jsm*.js): STREAM.INFO (open/bind), STREAM.CREATE (first open, readers too),
 *   STREAM.MSG.GET and DIRECT.GET (get), CONSUMER.CREATE/INFO/DELETE (watch, keys, object reads;
 *   ordered consumers), `$JS.FC.<stream>.>` (their flow control), `$KV.<bucket>.>` / `$O.<bucket>.>`
 *   (writes), STREAM.PURGE and STREAM.MSG.DELETE (object replace, KV purge).
 */
import { EventTypes, subjects as buildSubjects, token, type EventType } from '../subjects/index.ts';
import { TrellisError } from '../errors/index.ts';
import { CanaryEventKinds } from '../wire/canary.ts';
import { Roles, type Role } from '../options/index.ts';

export { Roles, type Role } from '../options/index.ts';

/** Allow and deny lists of one direction. */
export interface SubjectList {
  allow: string[];
  deny?: string[];
}

/** The permissions of one NATS user. */
export interface Permissions {
  publish: SubjectList;
  subscribe: SubjectList;
}

/** What the permissions are for. */
export interface PermissionScope {
  lattice: string;
  /** The user in the inbox prefix (see lattice/options inboxUserOf). Default: the role's name. */
  user?: string;
  /** host: the one host id it may act as (its subjects); default any host id. */
  hostId?: string;
  /** provider: the provider kinds it serves; default every kind. */
  providers?: string[];
  /** provider: the KV buckets its actors' links may name; default every bucket but the lattice's own. */
  buckets?: string[];
}

/** Events the control plane publishes (the reconciler and its canary controller); hosts publish the rest. */
const CONTROLLER_EVENTS: readonly EventType[] = ['app_deployed', 'app_updated', 'app_deleted', 'actor_placed', 'actor_replaced', 'reconcile_failed', ...CanaryEventKinds];
const HOST_EVENTS: readonly EventType[] = EventTypes.filter((t) => !CONTROLLER_EVENTS.includes(t));

type Access = 'read' | 'write';
/**
 * A JetStream store: a KV bucket (`KV_<name>`, `$KV.<name>.>`), an object store (`OBJ_<name>`,
 * `$O.<name>.>`) or a plain stream (the bounded log and event history; its messages are the
 * lattice's own log and event subjects, captured by the server).
 */
interface Store {
  kind: 'kv' | 'os' | 'stream';
  name: string;
}

/** The JetStream subjects a client publishes to read or write one store (name `*`: every store of the kind, and streams of any name). */
export function storeSubjects(store: Store, access: Access): string[] {
  const stream = store.name === '*' ? '*' : store.kind === 'kv' ? `KV_${store.name}` : store.kind === 'os' ? `OBJ_${store.name}` : store.name;
  const api = '$JS.API';
  const read = [
    `${api}.STREAM.INFO.${stream}`,
    `${api}.STREAM.MSG.GET.${stream}`,
    `${api}.DIRECT.GET.${stream}`,
    `${api}.DIRECT.GET.${stream}.>`,
    `${api}.CONSUMER.CREATE.${stream}`,
    `${api}.CONSUMER.CREATE.${stream}.>`,
    `${api}.CONSUMER.INFO.${stream}.*`,
    `${api}.CONSUMER.DELETE.${stream}.*`,
    `$JS.FC.${stream}.>`,
    // Readers open buckets as writers do, creating a missing one (empty, with Trellis's settings)
    // so that start-up order does not matter; they still cannot write a key or change a bucket.
    `${api}.STREAM.CREATE.${stream}`,
    // nats.js reads an object's chunks through js.subscribe without binding the stream, which
    // looks the stream up by subject (objectstore.js get → findStream): stream names only.
    ...(store.kind === 'os' ? [`${api}.STREAM.NAMES`] : []),
    // The log and event history is read back with pull batches (lattice/streams readStream).
    ...(store.kind === 'stream' ? [`${api}.CONSUMER.MSG.NEXT.${stream}.*`] : []),
  ];
  if (access === 'read') return read;
  return [
    ...read,
    `${api}.STREAM.UPDATE.${stream}`,
    `${api}.STREAM.PURGE.${stream}`,
    `${api}.STREAM.MSG.DELETE.${stream}`,
    ...(store.kind === 'kv' ? [`$KV.${store.name}.>`] : store.kind === 'os' ? [`$O.${store.name}.>`] : []),
  ];
}

/** The lattice's own stores and what each role may do with them. */
function latticeStores(lattice: string): Record<keyof ReturnType<typeof buildSubjects>['buckets'] | 'logStream' | 'eventStream', Store> {
  const { buckets: b, streams: st } = buildSubjects(lattice);
  const kv = (name: string): Store => ({ kind: 'kv', name });
  return {
    weights: kv(b.weights),
    config: kv(b.config),
    links: kv(b.links),
    httpRoutes: kv(b.httpRoutes),
    artifacts: { kind: 'os', name: b.artifacts },
    hosts: kv(b.hosts),
    apps: kv(b.apps),
    appStatus: kv(b.appStatus),
    leader: kv(b.leader),
    canaries: kv(b.canaries),
    logStream: { kind: 'stream', name: st.logs },
    eventStream: { kind: 'stream', name: st.events },
  };
}

type StoreName = keyof ReturnType<typeof latticeStores>;
const STORE_ACCESS: Record<Role, Partial<Record<StoreName, Access>>> = {
  // A host creates the bounded log and event history streams when missing (host/observability.ts).
  host: { hosts: 'write', artifacts: 'read', links: 'read', weights: 'read', httpRoutes: 'read', config: 'read', logStream: 'read', eventStream: 'read' },
  gateway: { weights: 'read', httpRoutes: 'read' },
  provider: {},
  // The reconciler writes the links and HTTP routes an app declares (lattice/reconciler/declared.ts).
  controller: { apps: 'write', appStatus: 'write', leader: 'write', weights: 'write', links: 'write', httpRoutes: 'write', canaries: 'write', hosts: 'read', config: 'read' },
  operator: { weights: 'write', config: 'write', links: 'write', httpRoutes: 'write', artifacts: 'write', hosts: 'write', apps: 'write', appStatus: 'write', leader: 'write', canaries: 'write', logStream: 'write', eventStream: 'write' },
};

/** Validate a role name (`trellis nats permissions --role`); TRELLIS_BAD_OPTION. */
export function roleOf(name: string): Role {
  if (!(Roles as readonly string[]).includes(name)) throw new TrellisError('TRELLIS_BAD_OPTION', `option --role: "${name}" is not a role (${Roles.join(', ')})`);
  return name as Role;
}

/** The permissions of `role` in one lattice: everything it needs, nothing else. */
export function rolePermissions(role: Role, scope: PermissionScope): Permissions {
  const s = buildSubjects(scope.lattice);
  const user = token(scope.user ?? role, 'user');
  const base = `trellis.${s.lattice}`;
  const ctl = s.controlForAll().slice(0, -'.*.*'.length);
  const inbox = `${s.inboxPrefix(user)}.>`;
  const replies = `_INBOX.${s.lattice}.>`;
  const hostId = scope.hostId === undefined ? '*' : token(scope.hostId, 'host id');
  const stores = latticeStores(scope.lattice);
  const storeSubs = Object.entries(STORE_ACCESS[role]).flatMap(([name, access]) => storeSubjects(stores[name as StoreName], access!));
  const jsInfo = '$JS.API.INFO';
  const pub: string[] = [];
  const sub: string[] = [inbox];
  const deny: string[] = [];
  switch (role) {
    case 'host':
      pub.push(...HOST_EVENTS.map((t) => s.event(t)), ...(scope.hostId === undefined ? [s.logs(), s.allBeats(), s.allMetrics()] : [s.logs({ participant: hostId }), s.beat(hostId), s.metrics(hostId)]), `${base}.rpc.>`, `${base}.prov.>`, s.control('hostPing'), replies);
      sub.push(s.controlForAll(), `${ctl}.*.*.${hostId}`, `${base}.rpc.>`, s.allEvents(), s.allBeats());
      break;
    case 'gateway':
      pub.push(`${base}.rpc.>`, s.control('hostPing'), s.allMetrics());
      sub.push(s.allEvents(), s.allBeats());
      break;
    case 'provider': {
      const kinds = scope.providers?.length ? scope.providers.map((p) => s.provider(p)) : [`${base}.prov.*`];
      pub.push(replies);
      sub.push(...kinds);
      if (scope.buckets?.length) {
        for (const bucket of scope.buckets) storeSubs.push(...storeSubjects({ kind: 'kv', name: bucket }, 'write'));
      } else {
        // Any bucket a link names, but none of the lattice's own state (deny wins over allow).
        // Other lattices' state is out of reach only with an account per lattice (README).
        storeSubs.push(...storeSubjects({ kind: 'kv', name: '*' }, 'write'));
        for (const store of Object.values(stores)) deny.push(...storeSubjects(store, 'write'), ...storeSubjects({ kind: 'kv', name: store.name }, 'write'));
      }
      break;
    }
    case 'controller':
      pub.push(s.controlForAll(), `${ctl}.*.*.*`, ...CONTROLLER_EVENTS.map((t) => s.event(t)));
      sub.push(s.allEvents(), s.allBeats(), s.allMetrics());
      break;
    case 'operator':
      pub.push(`${base}.>`);
      sub.push(`${base}.>`);
      break;
  }
  if (storeSubs.length > 0) pub.push(jsInfo, ...storeSubs);
  return {
    publish: { allow: unique(pub), ...(deny.length ? { deny: unique(deny) } : {}) },
    subscribe: { allow: unique(sub) },
  };
}

/** Several roles held by one user (a host that also runs the controller): the union of their lists. */
export function mergePermissions(...all: Permissions[]): Permissions {
  const allow = (pick: (p: Permissions) => SubjectList) => unique(all.flatMap((p) => pick(p).allow));
  // A deny of one role must not take away what another role of the same user allows.
  const pubAllow = allow((p) => p.publish);
  const pubDeny = unique(all.flatMap((p) => p.publish.deny ?? [])).filter((d) => !all.some((p) => !p.publish.deny && p.publish.allow.includes(d)));
  return { publish: { allow: pubAllow, ...(pubDeny.length ? { deny: pubDeny } : {}) }, subscribe: { allow: allow((p) => p.subscribe) } };
}

function unique(list: string[]): string[] {
  return [...new Set(list)];
}

/** nats-server config text of a permissions block (`{ publish: {...}, subscribe: {...} }`), for a user entry. */
export function permissionsConf(p: Permissions, indent = ''): string {
  const list = (name: string, l: SubjectList) => {
    const lines = [`${indent}  ${name}: {`, `${indent}    allow: [${l.allow.map((x) => JSON.stringify(x)).join(', ')}]`];
    if (l.deny?.length) lines.push(`${indent}    deny: [${l.deny.map((x) => JSON.stringify(x)).join(', ')}]`);
    lines.push(`${indent}  }`);
    return lines.join('\n');
  };
  return ['{', list('publish', p.publish), list('subscribe', p.subscribe), `${indent}}`].join('\n');
}

/** The user JWT form (`nats.pub` / `nats.sub` of a user claim; @nats-io/jwt `pub`/`sub`). */
export function permissionsJwt(p: Permissions): { pub: SubjectList; sub: SubjectList } {
  return { pub: p.publish, sub: p.subscribe };
}
