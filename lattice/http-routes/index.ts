/**
 * HTTP routes of the gateway (path prefix and optional Host → actor), kept as documents in a
 * lattice KV bucket. The gateway follows them; the CLI adds, lists and deletes them.
 */
import type { NatsConnection } from 'nats';
import { openDocuments, type DocumentKind } from '../documents/index.ts';
import { TrellisError } from '../errors/index.ts';
import { token, type Subjects } from '../subjects/index.ts';
import { isRecord } from '../wire/index.ts';
import { routeHost, type HttpRoute } from './match.ts';

export { matchRoute, routeHost, type HttpRoute } from './match.ts';

/** Read, write and follow the HTTP routes. */
export interface HttpRouteStore {
  /** Add (or replace) the route of a prefix and Host. */
  add(prefix: string, actor: string, host?: string): Promise<HttpRoute>;
  /** Every route, by prefix. */
  list(): Promise<HttpRoute[]>;
  /** Remove a route; TRELLIS_NOT_FOUND when there is none. */
  delete(prefix: string, host?: string): Promise<void>;
  /** Call `onChange` with all routes now and after every change; returns a stop function. */
  follow(onChange: (routes: HttpRoute[]) => void): Promise<() => void>;
}

// KV keys allow few characters; base64url of "host|prefix" keeps every route addressable.
const keyOf = (prefix: string, host?: string) => Buffer.from(`${host ?? '*'}|${prefix}`).toString('base64url');

/** Check a route prefix and normalize it (no trailing `/` but for the root). */
function checkPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || !prefix.startsWith('/') || /\s|\?|#/.test(prefix)) {
    throw new TrellisError('TRELLIS_BAD_REQUEST', `route prefix "${prefix}" must start with / and hold no spaces, ? or #`);
  }
  return prefix.length > 1 ? prefix.replace(/\/+$/, '') || '/' : prefix;
}

/** Check a route Host: a name (or address) without scheme, path or spaces; the port is dropped. */
function checkHost(host: string): string {
  const hostname = routeHost(host)!;
  if (hostname.length === 0 || /[\s/?#@]/.test(hostname)) throw new TrellisError('TRELLIS_BAD_REQUEST', `route host "${host}" must be a host name like example.com`);
  return hostname;
}

/** HTTP routes as a document kind, keyed by Host and prefix. */
export const httpRouteKind: DocumentKind<HttpRoute> = {
  name: 'http route',
  bucket: (subjects) => subjects.buckets.httpRoutes,
  key: (route) => keyOf(route.prefix, route.host),
  decode(value) {
    if (!isRecord(value) || typeof value.createdAt !== 'string' || (value.host !== undefined && typeof value.host !== 'string')) {
      throw new TrellisError('TRELLIS_BAD_REQUEST', 'http route must hold prefix, actor and createdAt (and host a string, if any)');
    }
    const route: HttpRoute = { prefix: checkPrefix(value.prefix as string), actor: token(value.actor as string, 'actor name'), createdAt: value.createdAt };
    if (typeof value.app === 'string') route.app = token(value.app, 'app name');
    return value.host === undefined ? route : { ...route, host: checkHost(value.host as string) };
  },
};

/** Open the HTTP route store of a lattice. */
export async function openHttpRoutes(nc: NatsConnection, subjects: Subjects): Promise<HttpRouteStore> {
  const docs = await openDocuments(nc, subjects, httpRouteKind);
  return {
    async add(prefix, actor, host) {
      return (await docs.put({ prefix, actor, createdAt: new Date().toISOString(), ...(host ? { host } : {}) })).value;
    },
    async list() {
      return (await docs.list()).map((d) => d.value).sort((a, b) => a.prefix.localeCompare(b.prefix));
    },
    async delete(prefix, host) {
      const p = checkPrefix(prefix);
      let deleted = await docs.delete(keyOf(p, host ? checkHost(host) : undefined));
      // Routes added before hosts were stored without their port kept it in their key.
      if (!deleted && host && host.toLowerCase() !== checkHost(host)) deleted = await docs.delete(keyOf(p, host.toLowerCase()));
      if (!deleted) throw new TrellisError('TRELLIS_NOT_FOUND', `no route ${host ?? ''}${prefix}`);
    },
    async follow(onChange) {
      const routes = new Map<string, HttpRoute>();
      let ready = false;
      const stop = await docs.follow(({ key, value }) => {
        if (value) routes.set(key, value);
        else routes.delete(key);
        // The current routes arrive one by one: hand them on once, all together.
        if (ready) onChange([...routes.values()]);
      });
      ready = true;
      onChange([...routes.values()]);
      return stop;
    },
  };
}
