/** HTTP routes of the gateway (path prefix and optional Host → actor), kept in lattice KV. */
import type { KV, NatsConnection } from 'nats';
import { TrellisError } from '../../lattice/errors/index.ts';
import { followKv, kvEntries, openKv } from '../../lattice/state/index.ts';
import { token, type Subjects } from '../../lattice/subjects/index.ts';
import { decodeJson, encodeJson, isRecord } from '../../lattice/wire/index.ts';

/** One route. */
export interface HttpRoute {
  /** Path prefix, starting with `/`, matched on whole segments (`/api` matches `/api/x`, not `/apix`). */
  prefix: string;
  /** Only requests for this Host (without port); any host when absent. */
  host?: string;
  actor: string;
  createdAt: string;
}

/** Read, write and follow the HTTP routes. */
export interface HttpRouteStore {
  add(prefix: string, actor: string, host?: string): Promise<HttpRoute>;
  list(): Promise<HttpRoute[]>;
  delete(prefix: string, host?: string): Promise<void>;
  follow(onChange: (routes: HttpRoute[]) => void): Promise<() => void>;
}

// KV keys allow few characters; base64url of "host|prefix" keeps every route addressable.
const keyOf = (prefix: string, host?: string) => Buffer.from(`${host ?? '*'}|${prefix}`).toString('base64url');

function checkPrefix(prefix: string): string {
  if (!prefix.startsWith('/') || /\s|\?|#/.test(prefix)) throw new TrellisError('TRELLIS_BAD_REQUEST', `route prefix "${prefix}" must start with / and hold no spaces, ? or #`);
  return prefix.length > 1 ? prefix.replace(/\/+$/, '') : prefix;
}

function decodeRoute(bytes: Uint8Array): HttpRoute | undefined {
  try {
    const v = decodeJson<unknown>(bytes, 'http route');
    return isRecord(v) && typeof v.prefix === 'string' && typeof v.actor === 'string' ? (v as unknown as HttpRoute) : undefined;
  } catch {
    return undefined;
  }
}

/** Find the route for a request: the longest matching prefix, host-specific routes first. */
export function matchRoute(routes: HttpRoute[], path: string, host: string | undefined): HttpRoute | undefined {
  const hostname = host?.replace(/:\d+$/, '').toLowerCase();
  let best: HttpRoute | undefined;
  for (const route of routes) {
    if (route.host && route.host !== hostname) continue;
    const p = route.prefix;
    if (!(p === '/' || path === p || path.startsWith(`${p}/`))) continue;
    if (!best || p.length > best.prefix.length || (p.length === best.prefix.length && route.host && !best.host)) best = route;
  }
  return best;
}

/** Open the HTTP route store of a lattice. */
export async function openHttpRoutes(nc: NatsConnection, subjects: Subjects): Promise<HttpRouteStore> {
  const kv: KV = await openKv(nc, subjects.buckets.httpRoutes);
  const list = async () =>
    (await kvEntries(kv))
      .map(([, value]) => decodeRoute(value))
      .filter((r): r is HttpRoute => r !== undefined)
      .sort((a, b) => a.prefix.localeCompare(b.prefix));
  return {
    async add(prefix, actor, host) {
      const route: HttpRoute = { prefix: checkPrefix(prefix), actor: token(actor, 'actor name'), createdAt: new Date().toISOString(), ...(host ? { host: host.toLowerCase() } : {}) };
      await kv.put(keyOf(route.prefix, route.host), encodeJson(route));
      return route;
    },
    list,
    async delete(prefix, host) {
      const key = keyOf(checkPrefix(prefix), host?.toLowerCase());
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT') throw new TrellisError('TRELLIS_NOT_FOUND', `no route ${host ? `${host}` : ''}${prefix}`);
      await kv.delete(key);
    },
    async follow(onChange) {
      const routes = new Map<string, HttpRoute>();
      const stop = await followKv(kv, (key, value) => {
        const route = value && decodeRoute(value);
        if (route) routes.set(key, route);
        else routes.delete(key);
        onChange([...routes.values()]);
      });
      onChange([...routes.values()]);
      return stop;
    },
  };
}
