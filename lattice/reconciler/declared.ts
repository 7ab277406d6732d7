/**
 * The links and HTTP routes an app declares, kept in their stores marked with the app's name:
 * written when missing or different, removed when the app no longer declares them (or is
 * deleted). Documents of other apps, and hand-made ones the app does not declare, are left
 * alone; a hand-made link or route the app declares becomes the app's.
 */
import type { DocumentStore } from '../documents/index.ts';
import { httpRouteKind, type HttpRoute } from '../http-routes/index.ts';
import { linkKey, ProviderKinds, providerKind, type Link } from '../links/index.ts';
import type { AppRevision } from '../wire/index.ts';

/** A store and the documents it holds now (kept current by a follow, and by our own writes). */
export interface Followed<T> {
  store: DocumentStore<T>;
  docs: Map<string, T>;
}

/** What the app wants: link and route documents by key. */
export function declaredOf(app: AppRevision, now: string): { links: Map<string, Link>; routes: Map<string, HttpRoute> } {
  const links = new Map<string, Link>();
  const routes = new Map<string, HttpRoute>();
  if (app.deleting) return { links, routes };
  for (const actor of app.spec.actors) {
    for (const l of actor.links) {
      const provider = providerKind(l.provider);
      const link: Link = { actor: actor.name, provider, interface: ProviderKinds[provider].interface, config: l.config, updatedAt: now, app: app.name };
      links.set(linkKey(actor.name, link.interface), link);
    }
    for (const r of actor.routes) {
      const route: HttpRoute = { prefix: r.prefix, actor: actor.name, createdAt: now, app: app.name, ...(r.host ? { host: r.host } : {}) };
      // The kind normalizes (trailing slash, host case) and keys it as the gateway reads it.
      const decoded = httpRouteKind.decode(route);
      routes.set(httpRouteKind.key(decoded), decoded);
    }
  }
  return { links, routes };
}

const sameLink = (a: Link, b: Link) => a.app === b.app && a.provider === b.provider && JSON.stringify(Object.entries(a.config).sort()) === JSON.stringify(Object.entries(b.config).sort());
const sameRoute = (a: HttpRoute, b: HttpRoute) => a.app === b.app && a.actor === b.actor && a.prefix === b.prefix && a.host === b.host;

/** Bring one kind of the app's documents in line; returns how many were written or removed. */
async function sync<T extends { app?: string }>(app: string, want: Map<string, T>, have: Followed<T>, same: (a: T, b: T) => boolean): Promise<number> {
  let changed = 0;
  for (const [key, doc] of want) {
    const current = have.docs.get(key);
    if (current && same(current, doc)) continue;
    await have.store.put(doc);
    have.docs.set(key, doc);
    changed++;
  }
  for (const [key, doc] of [...have.docs]) {
    if (doc.app !== app || want.has(key)) continue;
    await have.store.delete(key);
    have.docs.delete(key);
    changed++;
  }
  return changed;
}

/**
 * The declared links with the sealed secrets of the links they replace (same actor and provider)
 * kept: manifests carry no secrets, so an app taking over or rewriting a link must not drop the
 * password an operator put on it with `link put --secret` (sealed values are bound to actor,
 * provider and name, so they open the same in the app's link). A secret whose name the app now
 * declares as config is the app's to replace.
 */
export function withKeptSecrets(want: Map<string, Link>, have: ReadonlyMap<string, Link>): Map<string, Link> {
  const out = new Map<string, Link>();
  for (const [key, link] of want) {
    const current = have.get(key);
    const kept = current?.provider === link.provider ? Object.entries(current.secrets ?? {}).filter(([name]) => !Object.hasOwn(link.config, name)) : [];
    out.set(key, kept.length > 0 ? { ...link, secrets: Object.fromEntries(kept) } : link);
  }
  return out;
}

/** Write what the app declares and remove what it no longer does (everything when deleting). */
export async function syncDeclared(app: AppRevision, links: Followed<Link>, routes: Followed<HttpRoute>): Promise<number> {
  const declared = declaredOf(app, new Date().toISOString());
  const want = { routes: declared.routes, links: withKeptSecrets(declared.links, links.docs) };
  return (await sync(app.name, want.routes, routes, sameRoute)) + (await sync(app.name, want.links, links, sameLink));
}

/** Does the app still have links or routes (a deleting app is done when it has none)? */
export function hasDeclared(app: string, links: Followed<Link>, routes: Followed<HttpRoute>): boolean {
  for (const l of links.docs.values()) if (l.app === app) return true;
  for (const r of routes.docs.values()) if (r.app === app) return true;
  return false;
}
