/** App commands: apply, get apps, app status/history/rollback, delete app. */
import { TrellisError } from '../errors/index.ts';
import type { AppRevision, AppStatus } from '../wire/apps.ts';
import { command, connectionFlags, type Flags } from './command.ts';
import { duration, table } from './format.ts';
import { authFromFlags, natsAuthFlags } from './nats-flags.ts';

const apps = () => import('../apps/index.ts');

/**
 * `--timeout` bounds the wait, as `kubectl --wait --timeout` does. (On other lattice commands it
 * is the request time-out; `app status` sends no control request for it to bound, and `apply`
 * declares its own connection flags without it.)
 */
const waitFlags = {
  wait: { type: 'boolean', help: 'wait until the app is Deployed; exit non-zero (printing the last status) if not in time' },
  timeout: { type: 'duration', help: 'with --wait: how long to wait (default 60s)', minMs: 1 },
} as const satisfies Flags;
const DEFAULT_WAIT_MS = 60_000;

function statusText(s: AppStatus): string {
  const lines = [`app ${s.name}  revision ${s.revision}  ${s.phase}`];
  for (const r of s.reasons) lines.push(`  ${r}`);
  if (s.actors.length > 0) {
    const spreads = (a: AppStatus['actors'][number]) => a.spreads.map((sp) => `${sp.name} ${sp.running}/${sp.desired}${sp.reason ? ` (${sp.reason})` : ''}`).join(', ');
    lines.push('', table(['ACTOR', 'VERSION', 'DESIRED', 'RUNNING', 'SPREADS'], s.actors.map((a) => [a.name, a.version, String(a.desired), String(a.running), spreads(a)])));
  }
  return lines.join('\n');
}

const ago = (iso: string) => `${duration(Math.max(0, Date.now() - Date.parse(iso)))} ago`;
const actorList = (rev: AppRevision) => rev.spec.actors.map((a) => `${a.name}@${a.version}`).join(',') || '-';

export const commands = [
  command({
    words: ['apply'],
    summary: 'apply an app manifest: push its components, store a new revision of its desired state',
    details: [
      'The manifest (YAML or JSON, apiVersion trellis.dev/v1, kind Application) is checked first: every problem is',
      'listed with its field and line, and nothing is stored. Relative paths resolve from the manifest\'s folder.',
      'Re-applying an unchanged manifest stores nothing and says "unchanged". --dry-run prints what would change.',
      'Refused (TRELLIS_CONFLICT): an actor another app lists, an HTTP prefix another app routes, an actor that',
      'hand-started instances run at another version.',
    ].join('\n'),
    // Not a `lattice` command: the manifest is checked before connecting, so a bad one gets its
    // problems even when the lattice is unreachable.
    flags: {
      nats: connectionFlags.nats,
      lattice: connectionFlags.lattice,
      ...natsAuthFlags,
      file: { type: 'string', short: 'f', help: 'the manifest file (required)', placeholder: 'app.yaml' },
      'dry-run': { type: 'boolean', help: 'check and print what would change; store and push nothing' },
      ...waitFlags,
    },
    async run({ flags, progress }) {
      if (!flags.file) throw new TrellisError('TRELLIS_BAD_OPTION', '--file (-f) is required: the manifest to apply');
      if (flags.dryRun && flags.wait) throw new TrellisError('TRELLIS_BAD_OPTION', '--wait does nothing with --dry-run');
      const { applyManifest, changeLine, loadManifest, openApps, waitDeployed } = await apps();
      const manifest = await loadManifest(flags.file);
      const { connectControl } = await import('../control/index.ts');
      await using client = await connectControl({ nats: flags.nats, lattice: flags.lattice, auth: authFromFlags(flags) });
      const { spec: _spec, ...result } = await applyManifest(client, manifest, { dryRun: flags.dryRun, progress });
      const head =
        result.outcome === 'unchanged'
          ? `app ${result.app} unchanged (revision ${result.revision})`
          : `app ${result.app}: ${result.dryRun ? 'would store' : result.outcome === 'created' ? 'created,' : 'stored'} revision ${result.revision}${result.previousRevision ? ` (was ${result.previousRevision})` : ''}${result.dryRun ? ' (dry run: nothing stored)' : ''}`;
      const lines = [head, ...result.changes.map((c) => `  ${changeLine(c)}`)];
      if (!flags.wait) return { data: result, text: lines.join('\n') };
      const store = await openApps(client.nc, client.subjects);
      const waited = await waitDeployed(store, result.app, flags.timeout ?? DEFAULT_WAIT_MS, (s) => progress(`${s.name}: revision ${s.revision} ${s.phase}`));
      if (!waited.deployed) lines.push(`not Deployed within ${duration(flags.timeout ?? DEFAULT_WAIT_MS)}; last status:`);
      if (waited.status) lines.push(statusText(waited.status));
      return { data: { ...result, deployed: waited.deployed, status: waited.status }, text: lines.join('\n'), exitCode: waited.deployed ? 0 : 1 };
    },
  }),
  command({
    words: ['get', 'apps'],
    summary: 'apps with their revision and phase',
    lattice: true,
    async run({ client }) {
      const { effectiveStatus, openApps } = await apps();
      const store = await openApps(client.nc, client.subjects);
      const [revisions, statuses] = await Promise.all([store.list(), store.statuses.list()]);
      const rows = revisions.map(({ value: rev }) => {
        const status = effectiveStatus(rev, statuses.find((s) => s.key === rev.name)?.value);
        return {
          name: rev.name,
          revision: rev.revision,
          phase: status.phase,
          actors: rev.spec.actors.map((a) => ({ name: a.name, version: a.version, replicas: a.replicas })),
          providers: rev.spec.providers.map((p) => p.kind),
          specHash: rev.specHash,
          createdAt: rev.createdAt,
          ...(rev.deleting ? { deleting: true } : {}),
        };
      });
      const text =
        rows.length === 0
          ? 'no apps (apply one with `trellis apply -f app.yaml`)'
          : table(['NAME', 'REVISION', 'PHASE', 'ACTORS', 'UPDATED'], rows.map((r) => [r.name, String(r.revision), r.phase, r.actors.map((a) => `${a.name}@${a.version}×${a.replicas}`).join(',') || '-', ago(r.createdAt)]));
      return { data: rows, text };
    },
  }),
  command({
    words: ['app', 'status'],
    args: ['app'],
    summary: "an app's phase and, per actor version, desired and running replicas by spread",
    details: 'Phases: Deploying, Deployed, Degraded, Failed, Deleting. Until the controller reports on the current\nrevision the app is Deploying. With --wait, exits 0 once Deployed and non-zero on time-out (for CI).',
    lattice: true,
    flags: waitFlags,
    async run({ client, args, flags, progress }) {
      const { effectiveStatus, openApps, waitDeployed } = await apps();
      const store = await openApps(client.nc, client.subjects);
      const name = args[0]!;
      if (flags.wait) {
        const waited = await waitDeployed(store, name, flags.timeout ?? DEFAULT_WAIT_MS, (s) => progress(`${s.name}: revision ${s.revision} ${s.phase}`));
        const text = `${statusText(waited.status!)}${waited.deployed ? '' : `\n\nnot Deployed within ${duration(flags.timeout ?? DEFAULT_WAIT_MS)}`}`;
        return { data: waited.status, text, exitCode: waited.deployed ? 0 : 1 };
      }
      const rev = await store.current(name);
      if (!rev) throw new TrellisError('TRELLIS_NOT_FOUND', `no app ${name} (list them with \`trellis get apps\`)`);
      const status = effectiveStatus(rev.value, (await store.status(name))?.value);
      return { data: status, text: statusText(status) };
    },
  }),
  command({
    words: ['app', 'history'],
    args: ['app'],
    summary: "an app's stored revisions (the last 16 are kept), oldest first",
    lattice: true,
    async run({ client, args }) {
      const { openApps } = await apps();
      const store = await openApps(client.nc, client.subjects);
      const name = args[0]!;
      const history = await store.history(name);
      if (history.length === 0) throw new TrellisError('TRELLIS_NOT_FOUND', `no app ${name} (list them with \`trellis get apps\`)`);
      const current = (await store.current(name))?.value.revision;
      const text = table(
        ['REVISION', 'CREATED', 'ACTORS', 'SPEC'],
        history.map((r) => [`${r.revision}${r.revision === current ? ' *' : ''}${r.deleting ? ' (deleting)' : ''}`, ago(r.createdAt), actorList(r), r.specHash.slice(7, 19)]),
      );
      return { data: history, text };
    },
  }),
  command({
    words: ['app', 'rollback'],
    args: ['app'],
    summary: "store an earlier revision's spec as the app's next revision",
    details: 'Without --to, the revision before the current one. The app moves forward to a new revision holding the old spec.',
    lattice: true,
    flags: { to: { type: 'int', help: 'the revision to go back to', min: 1 } },
    async run({ client, args, flags }) {
      const { changeLine, rollbackApp } = await apps();
      const name = args[0]!;
      const result = await rollbackApp(client, name, flags.to);
      const text =
        result.outcome === 'unchanged'
          ? `app ${name} unchanged: revision ${result.from} already holds the spec of revision ${result.to}`
          : [`app ${name}: revision ${result.revision} holds the spec of revision ${result.to} (was ${result.from})`, ...result.changes.map((c) => `  ${changeLine(c)}`)].join('\n');
      return { data: { app: name, ...result }, text };
    },
  }),
  command({
    words: ['delete', 'app'],
    args: ['app'],
    summary: 'delete an app: the controller stops what it placed (and only that), then removes it',
    lattice: true,
    async run({ client, args }) {
      const { openApps } = await apps();
      const store = await openApps(client.nc, client.subjects);
      const name = args[0]!;
      const { doc, changed } = await store.markDeleting(name);
      const text = changed ? `app ${name} marked for deletion (revision ${doc.value.revision}); the controller stops what it placed` : `app ${name} is already being deleted`;
      return { data: { app: name, revision: doc.value.revision, deleting: true, changed }, text };
    },
  }),
];
