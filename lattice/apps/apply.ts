/**
 * Applying a manifest to a lattice: push its components (content-addressed), build the spec,
 * refuse ownership conflicts, and store the next revision unless nothing changed. The one
 * implementation behind `trellis apply`, `trellis up`'s demo and the tests; the reconciler
 * takes it from there (it follows the `apps` bucket).
 */
import { readFile } from 'node:fs/promises';
import { pushFile } from '../cli/actor-commands.ts';
import type { ControlClient } from '../control/index.ts';
import { TrellisError } from '../errors/index.ts';
import { openHttpRoutes } from '../http-routes/index.ts';
import { digestOf } from '../state/index.ts';
import type { AppSpec, AppStatus } from '../wire/apps.ts';
import { findConflicts } from './conflicts.ts';
import { openApps, type AppStore } from './documents.ts';
import type { Manifest } from './manifest.ts';
import { diffSpecs, specHash, toSpec, type Change } from './spec.ts';
import { effectiveStatus, isDeployed } from './status.ts';

/** What an apply did (or, with `dryRun`, would do). */
export interface ApplyResult {
  app: string;
  /** `created` (revision 1 of a new app), `updated`, `unchanged` (no revision stored). */
  outcome: 'created' | 'updated' | 'unchanged';
  dryRun: boolean;
  /** The revision stored (or that would be); the current one when unchanged. */
  revision: number;
  previousRevision?: number;
  specHash: string;
  changes: Change[];
  /** Components pushed (or, with dryRun, hashed only). */
  artifacts: { actor: string; file: string; digest: string; existed?: boolean }[];
  spec: AppSpec;
}

export interface ApplyOptions {
  dryRun?: boolean;
  progress?: (line: string) => void;
}

/** Apply a checked manifest (see loadManifest); TRELLIS_CONFLICT on an ownership conflict or a lost race. */
export async function applyManifest(client: ControlClient, manifest: Manifest, options: ApplyOptions = {}): Promise<ApplyResult> {
  const progress = options.progress ?? (() => {});
  const dryRun = options.dryRun ?? false;
  // Digests first, computed here: nothing is pushed for an apply that is then refused.
  const digests: Record<string, string> = {};
  const files = manifest.actors.flatMap((a) => ('file' in a.source ? [{ actor: a.name, file: a.source.file }] : []));
  for (const { actor, file } of files) digests[actor] = digestOf(new Uint8Array(await readFile(file)));
  const artifacts: ApplyResult['artifacts'] = files.map(({ actor, file }) => ({ actor, file, digest: digests[actor]! }));
  const push = async () => {
    for (const artifact of artifacts) {
      const pushed = await pushFile(client, artifact.file);
      // A file rewritten since it was hashed would make the revision name other bytes.
      if (pushed.digest !== artifact.digest) throw new TrellisError('TRELLIS_CONFLICT', `${artifact.file} changed while it was applied; apply again`);
      artifact.existed = pushed.existed;
      progress(`pushed ${artifact.file}: ${pushed.digest}${pushed.existed ? ' (already stored)' : ''}`);
    }
  };
  const spec = toSpec(manifest, digests);
  const hash = specHash(spec);
  const apps = await openApps(client.nc, client.subjects);
  const current = await apps.current(spec.name);
  if (current?.value.deleting) {
    throw new TrellisError('TRELLIS_CONFLICT', `app ${spec.name} is being deleted; apply it again once \`trellis get apps\` no longer lists it`);
  }
  const base = { app: spec.name, dryRun, specHash: hash, artifacts, spec };
  if (current && current.value.specHash === hash) {
    // Pushed again all the same (a no-op when stored): the revision's components must be there.
    if (!dryRun) await push();
    return { ...base, outcome: 'unchanged', revision: current.value.revision, previousRevision: current.value.revision, changes: [] };
  }
  await conflictsOf(client, apps, spec, current?.value.spec);
  const changes = diffSpecs(current?.value.spec, spec);
  const outcome = current ? 'updated' : 'created';
  if (dryRun) {
    const revision = (current?.value.revision ?? Math.max(0, ...(await apps.history(spec.name)).map((r) => r.revision))) + 1;
    return { ...base, outcome, revision, ...(current ? { previousRevision: current.value.revision } : {}), changes };
  }
  await push();
  const stored = await apps.putNext(spec, current);
  return { ...base, outcome, revision: stored.value.revision, ...(current ? { previousRevision: current.value.revision } : {}), changes };
}

/** What the lattice holds that the ownership rules look at (see conflicts.ts). */
async function conflictsOf(client: ControlClient, apps: AppStore, spec: AppSpec, current: AppSpec | undefined): Promise<void> {
  const [others, hosts, routes] = await Promise.all([apps.list(), client.pingHosts(), openHttpRoutes(client.nc, client.subjects).then((r) => r.list())]);
  const conflicts = findConflicts(spec, { apps: others.map((o) => o.value), hosts, routes, ...(current ? { current } : {}) });
  if (conflicts.length > 0) {
    throw new TrellisError('TRELLIS_CONFLICT', `app ${spec.name} cannot be applied:\n${conflicts.map((c) => `  ${c}`).join('\n')}`);
  }
}

/**
 * Store an old revision's spec as the app's next revision (`to`: that revision; default the one
 * before the current). The ownership rules hold for it as for an apply: the lattice may have
 * changed since that revision was current.
 */
export async function rollbackApp(client: ControlClient, app: string, to?: number): Promise<{ outcome: 'rolled-back' | 'unchanged'; from: number; to: number; revision: number; changes: Change[] }> {
  const apps = await openApps(client.nc, client.subjects);
  const current = await apps.current(app);
  if (!current) throw new TrellisError('TRELLIS_NOT_FOUND', `no app ${app} (list them with \`trellis get apps\`)`);
  if (current.value.deleting) throw new TrellisError('TRELLIS_CONFLICT', `app ${app} is being deleted`);
  const history = await apps.history(app);
  const cur = current.value.revision;
  const target = to === undefined ? history.filter((r) => r.revision < cur).at(-1) : history.find((r) => r.revision === to);
  if (!target) {
    const kept = history.map((r) => r.revision);
    throw new TrellisError('TRELLIS_NOT_FOUND', to === undefined ? `app ${app} has no revision before ${cur} to roll back to` : `app ${app} has no revision ${to} (kept: ${kept.join(', ')})`);
  }
  if (target.specHash === current.value.specHash) return { outcome: 'unchanged', from: cur, to: target.revision, revision: cur, changes: [] };
  await conflictsOf(client, apps, target.spec, current.value.spec);
  const stored = await apps.putNext(target.spec, current);
  return { outcome: 'rolled-back', from: cur, to: target.revision, revision: stored.value.revision, changes: diffSpecs(current.value.spec, target.spec) };
}

/**
 * Wait until the app's current revision (from `revision` on) is Deployed, polling its documents;
 * returns the last status seen either way. `onStatus` sees each new phase.
 */
export async function waitDeployed(apps: AppStore, app: string, timeoutMs: number, onStatus?: (s: AppStatus) => void): Promise<{ deployed: boolean; status: AppStatus | undefined }> {
  const deadline = Date.now() + timeoutMs;
  let last: AppStatus | undefined;
  while (true) {
    const [rev, status] = await Promise.all([apps.current(app), apps.status(app)]);
    if (!rev) throw new TrellisError('TRELLIS_NOT_FOUND', `no app ${app}`);
    const shown = effectiveStatus(rev.value, status?.value);
    if (onStatus && (last?.phase !== shown.phase || last.revision !== shown.revision)) onStatus(shown);
    last = shown;
    if (isDeployed(rev.value, status?.value)) return { deployed: true, status: shown };
    if (Date.now() >= deadline) return { deployed: false, status: shown };
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, deadline - Date.now()))));
  }
}
