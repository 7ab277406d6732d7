/**
 * Applications: the wire and document types of desired state (an app's spec and its stored
 * revisions), of who placed an instance (its owner), and of an app's observed status. Shared by
 * `trellis apply`, the reconciler, the hosts and the tests.
 */

/** Host labels that must all match for a host to be eligible, and this spread's share. */
export interface Spread {
  name: string;
  requirements: Record<string, string>;
  /** Positive integer; shares are exact integer counts by largest remainder. */
  weight: number;
}

/** A total instance count across the lattice, or `all`: one per eligible host. */
export type Replicas = number | 'all';

/** One actor of an app, its source resolved to a digest in the artifact store. */
export interface AppActorSpec {
  name: string;
  version: string;
  digest: string;
  replicas: Replicas;
  /** Never empty: without a spread in the manifest, one spread that every host matches. */
  spread: Spread[];
  /** The sandbox policy in its complete form (relative paths resolved from the manifest's folder). */
  policy: Record<string, unknown>;
  links: { provider: string; config: Record<string, string> }[];
  routes: { prefix: string; host?: string }[];
  /** The canary block (camelCase flags of `trellis canary start`), when the actor has one. */
  canary?: Record<string, unknown>;
}

/** A provider kind an app needs, and where. */
export interface AppProviderSpec {
  kind: string;
  replicas: Replicas;
  spread: Spread[];
}

/** The desired state of one app, as validated from its manifest. */
export interface AppSpec {
  name: string;
  actors: AppActorSpec[];
  providers: AppProviderSpec[];
}

/** One stored revision of an app: a per-app counter from 1, and the spec it holds. */
export interface AppRevision {
  name: string;
  revision: number;
  /** sha256 of the canonical spec: re-applying an unchanged manifest makes no revision. */
  specHash: string;
  spec: AppSpec;
  createdAt: string;
  /** Set when `trellis delete app` asked for the app to go; the reconciler then removes it. */
  deleting?: boolean;
}

/** Who placed an instance group: an app at a revision. Without one it was started by hand. */
export interface Owner {
  app: string;
  revision: number;
}

export const AppPhases = ['Deploying', 'Deployed', 'Degraded', 'Failed', 'Deleting'] as const;
export type AppPhase = (typeof AppPhases)[number];

/** One spread of an actor version as observed. */
export interface SpreadStatus {
  name: string;
  desired: number;
  running: number;
  /** Why it is short, e.g. "no host matches cloud=azure". */
  reason?: string;
}

/** An app's observed state, as the reconciler writes it and `trellis app status` shows it. */
export interface AppStatus {
  name: string;
  revision: number;
  phase: AppPhase;
  /** One entry per actor version running (a canary shows stable and canary side by side). */
  actors: { name: string; version: string; desired: number; running: number; spreads: SpreadStatus[] }[];
  reasons: string[];
  observedAt: string;
}
