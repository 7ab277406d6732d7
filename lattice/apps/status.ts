/**
 * What `trellis app status` shows: the status the reconciler leader wrote, read against the
 * app's current revision. A status of an older revision (or none yet) means the current one is
 * still Deploying; a revision marked for deletion is Deleting whatever the last status said.
 */
import type { AppRevision, AppStatus } from '../wire/apps.ts';

/** Share `total` out by `weights` in exact integers (largest remainder; ties to the earlier). */
export function shareOut(total: number, weights: number[]): number[] {
  const sum = weights.reduce((s, w) => s + w, 0);
  if (sum === 0) return weights.map(() => 0);
  const exact = weights.map((w) => (total * w) / sum);
  const out = exact.map(Math.floor);
  let left = total - out.reduce((s, n) => s + n, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of order) {
    if (left-- <= 0) break;
    out[i]!++;
  }
  return out;
}

/** The status of a revision no controller has reported on yet: its spec, nothing running. */
function fromSpec(rev: AppRevision): AppStatus['actors'] {
  return rev.spec.actors.map((a) => {
    // "all" is one per eligible host: only the controller knows the hosts, so it counts 0 here.
    const desired = a.replicas === 'all' ? 0 : a.replicas;
    const shares = shareOut(desired, a.spread.map((s) => s.weight));
    return { name: a.name, version: a.version, desired, running: 0, spreads: a.spread.map((s, i) => ({ name: s.name, desired: shares[i]!, running: 0 })) };
  });
}

/** The status to show for `rev`, the app's current revision, given the last status written. */
export function effectiveStatus(rev: AppRevision, status: AppStatus | undefined): AppStatus {
  const observedAt = status?.observedAt ?? rev.createdAt;
  if (status && status.revision === rev.revision && !rev.deleting) return status;
  const reasons: string[] = [];
  if (!rev.deleting) {
    reasons.push(status ? `revision ${rev.revision} not reconciled yet (last reported: revision ${status.revision}, ${status.phase})` : `revision ${rev.revision} not reconciled yet: no controller has reported on this app`);
  }
  // A stale status still tells what runs (the old versions during an update): keep its actors.
  const actors = status && status.actors.length > 0 ? status.actors : fromSpec(rev);
  return { name: rev.name, revision: rev.revision, phase: rev.deleting ? 'Deleting' : 'Deploying', actors, reasons: [...reasons, ...(status?.reasons ?? [])], observedAt };
}

/** Is the current revision fully deployed (what `--wait` waits for)? */
export function isDeployed(rev: AppRevision, status: AppStatus | undefined): boolean {
  return !rev.deleting && status !== undefined && status.revision === rev.revision && status.phase === 'Deployed';
}
