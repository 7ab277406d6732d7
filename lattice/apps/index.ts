/**
 * Declarative applications: the manifest (checked with every problem by path and line), app
 * revisions and status as lattice documents, and applying a manifest (push, conflicts, next
 * revision). The CLI commands are in lattice/cli/apps-commands.ts; the reconciler follows the
 * documents kept here.
 */
export { API_VERSION, DEFAULT_SPREAD, KIND, MAX_REPLICAS, parseManifest, type ActorSource, type FileReference, type Manifest, type ManifestActor, type ParsedManifest } from './manifest.ts';
export { CANARY_DEFAULTS, checkCanary, type CanarySpec } from './canary.ts';
export { ManifestError, Problems, formatProblem, type Problem } from './problems.ts';
export { checkManifest, loadManifest } from './load.ts';
export { canonicalJson, changeLine, diffSpecs, specHash, toSpec, type Change } from './spec.ts';
export { APP_HISTORY, appRevisionKind, appStatusKind, openApps, type AppStore } from './documents.ts';
export { findConflicts, type ConflictInputs } from './conflicts.ts';
export { effectiveStatus, isDeployed, shareOut } from './status.ts';
export { applyManifest, rollbackApp, waitDeployed, type ApplyOptions, type ApplyResult } from './apply.ts';
