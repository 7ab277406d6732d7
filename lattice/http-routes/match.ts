/** HTTP route matching, pure: which route serves a request path and Host. */

/** One route: requests under a path prefix (and optionally for one Host) go to an actor. */
export interface HttpRoute {
  /** Path prefix, starting with `/`, matched on whole segments (`/api` matches `/api/x`, not `/apix`). */
  prefix: string;
  /** Only requests for this Host (lower case, without port); any host when absent. */
  host?: string;
  actor: string;
  createdAt: string;
}

/** The Host a route is matched against: lower case, without a port (`[::1]:8080` → `[::1]`). */
export function routeHost(host: string | undefined): string | undefined {
  return host?.replace(/:\d+$/, '').toLowerCase();
}

/** Find the route for a request: the longest matching prefix, host-specific routes first. */
export function matchRoute(routes: readonly HttpRoute[], path: string, host: string | undefined): HttpRoute | undefined {
  const hostname = routeHost(host);
  let best: HttpRoute | undefined;
  for (const route of routes) {
    if (route.host && route.host !== hostname) continue;
    const p = route.prefix;
    if (!(p === '/' || path === p || path.startsWith(`${p}/`))) continue;
    if (!best || p.length > best.prefix.length || (p.length === best.prefix.length && route.host && !best.host)) best = route;
  }
  return best;
}
