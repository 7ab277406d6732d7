/** HTTP route matching, pure: which route serves a request path and Host. */

/** One route: requests under a path prefix (and optionally for one Host) go to an actor. */
export interface HttpRoute {
  /** Path prefix, starting with `/`, matched on whole segments (`/api` matches `/api/x`, not `/apix`). */
  prefix: string;
  /** Only requests for this Host (lower case, without port); any host when absent. */
  host?: string;
  actor: string;
  createdAt: string;
  /** The app that declared it (its reconciler removes it with the app); absent when added by hand. */
  app?: string;
}

/** The Host a route is matched against: lower case, without a port (`[::1]:8080` → `[::1]`). */
export function routeHost(host: string | undefined): string | undefined {
  return host?.replace(/:\d+$/, '').toLowerCase();
}

/**
 * Find the route for a request. Routes for the request's Host come first, as a virtual host:
 * a Host given its own routes is served by them alone, and falls back to the any-host routes
 * only for paths none of them covers. Within each group the longest prefix wins, on whole
 * segments (`/api` covers `/api` and `/api/x`, not `/apix`).
 */
export function matchRoute(routes: readonly HttpRoute[], path: string, host: string | undefined): HttpRoute | undefined {
  const hostname = routeHost(host);
  let best: HttpRoute | undefined;
  for (const route of routes) {
    if (route.host && route.host !== hostname) continue;
    const p = route.prefix;
    if (!(p === '/' || path === p || path.startsWith(`${p}/`))) continue;
    const better = !best || (route.host !== undefined && best.host === undefined) || (Boolean(route.host) === Boolean(best.host) && p.length > best.prefix.length);
    if (better) best = route;
  }
  return best;
}
