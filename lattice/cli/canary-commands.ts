/**
 * Canary commands: start, status, promote, abort, pause, resume. Each one is a compare-and-set
 * transition of the actor's canary document (lattice/canary-controller/store.ts says why that
 * is safe under the races); the reconciler's leader then does what the document asks for.
 */
import type { ControlClient } from '../control/index.ts';
import { TrellisError } from '../errors/index.ts';
import type { CanaryRecord } from '../canary-controller/index.ts';
import { command, type Stream } from './command.ts';

const controller = () => import('../canary-controller/index.ts');
const core = () => import('../canary/index.ts');

const writerOf = async (client: ControlClient) => (await controller()).openWriter(client.nc, client.subjects, 'cli', `/trellis/${client.subjects.lattice}/cli`);

const startFlags = {
  to: { type: 'string', help: 'the canary version (required)', placeholder: 'version' },
  source: { type: 'string', help: 'start the canary from this component (file or sha256:digest) beside the stable instances', placeholder: 'file|digest' },
  steps: { type: 'string', help: 'canary percentages, ascending, ending at 100 (default 10,30,50,100)', placeholder: 'list' },
  interval: { type: 'duration', help: 'one analysis per interval (default 30s)', minMs: 1 },
  'min-requests': { type: 'int', help: 'canary requests a window needs to be judged (default 100)', min: 1 },
  'success-rate': { type: 'string', help: 'lowest acceptable canary success rate, 0..1 (default 0.99)', placeholder: 'rate' },
  'p99-ms': { type: 'int', help: 'highest acceptable canary p99 latency in ms (default 500)', min: 1 },
  'failure-limit': { type: 'int', help: 'failed checks that roll back (default 2)', min: 1 },
  'progress-deadline': { type: 'duration', help: 'roll back ("no data") when a step gets too little traffic this long (default 10m)', minMs: 1 },
  'sticky-header': { type: 'string', help: 'keep a request on one version by this header while the split holds', placeholder: 'name' },
  'sticky-cookie': { type: 'string', help: 'keep a request on one version by this cookie while the split holds', placeholder: 'name' },
  'keep-canary-on-rollback': { type: 'boolean', help: 'leave the canary instances running after a rollback (for inspection)' },
} as const;

/** The record's status line, for the commands that change it. */
async function summary(record: CanaryRecord | undefined, actor: string): Promise<{ data: unknown; text: string }> {
  if (!record) return { data: { actor }, text: `${actor}: no canary` };
  const { viewOf } = await import('../canary-controller/flags.ts');
  const view = viewOf(record);
  return { data: view, text: `${actor}: ${view.phase} at step ${view.step}/${view.steps.length}, ${view.weight.set}% to ${view.canary} (stable ${view.stable})` };
}

/** One of promote/abort/pause/resume: the machine's transition, with its refusal as the error. */
function manual(verb: 'promote' | 'abort' | 'pause' | 'resume', summaryText: string, flags: Record<string, never> | { full: { type: 'boolean'; help: string } } = {}) {
  return command({
    words: ['canary', verb],
    args: ['actor'],
    summary: summaryText,
    lattice: true,
    flags: flags as { full: { type: 'boolean'; help: string } },
    async run({ client, args, flags: f }) {
      const actor = args[0]!;
      const m = await core();
      const { transition } = await controller();
      const w = await writerOf(client);
      const out = await transition(w, actor, (st, now) => ({
        transition: verb === 'promote' ? m.promote(st, { full: Boolean((f as { full?: boolean }).full) }, now, actor) : verb === 'abort' ? m.abort(st, now, actor) : verb === 'pause' ? m.pause(st, now, actor) : m.resume(st, now, actor),
      }));
      return summary(out.record, actor);
    },
  });
}

export const commands = [
  command({
    words: ['canary', 'start'],
    args: ['actor'],
    summary: 'start a canary: shift traffic to --to step by step, promoted or rolled back by live metrics',
    details: [
      'Without --source the canary version must already run (started by hand). A canary of an app\'s actor needs',
      '--source; promotion then moves the app\'s desired state to the new version. A start while another',
      'canary of the actor runs restarts the analysis for the new version (a new run, from step 0).',
    ].join('\n'),
    lattice: true,
    flags: startFlags,
    async run({ client, args, flags, progress }) {
      const actor = args[0]!;
      if (!flags.to) throw new TrellisError('TRELLIS_BAD_OPTION', '--to is required: the canary version');
      const { canarySpecFromFlags } = await import('../canary-controller/flags.ts');
      const spec = canarySpecFromFlags(flags);
      const { compareVersions, transition } = await controller();
      const { start } = await core();
      let digest: string | undefined;
      if (flags.source) {
        if (/^sha256:[0-9a-f]{64}$/.test(flags.source)) digest = flags.source;
        else {
          const { pushFile } = await import('../state/index.ts');
          digest = (await pushFile(client, flags.source)).digest;
          progress(`pushed ${flags.source}: ${digest}`);
        }
      }
      const hosts = await client.pingHosts();
      const groups = hosts.flatMap((h) => h.actors.filter((a) => a.name === actor && a.instances > 0));
      const w = await writerOf(client);
      const current = await w.docs.get(actor);
      const weights = (await w.weights.get(actor))?.weights;
      // Stable without a previous run: the version serving now (the heaviest weight, else the only other version running).
      const others = [...new Set(groups.map((g) => g.version))].filter((v) => v !== flags.to).sort(compareVersions);
      const weighted = weights ? Object.entries(weights).filter(([v, p]) => p > 0 && v !== flags.to).sort((a, b) => b[1] - a[1])[0]?.[0] : undefined;
      const stable = weighted ?? (others.length === 1 ? others[0] : undefined);
      if (!current && !stable) {
        throw new TrellisError('TRELLIS_NOT_FOUND', others.length === 0 ? `${actor} runs nowhere: a canary needs a stable version serving` : `${actor} runs ${others.join(', ')}: set weights to say which is stable`);
      }
      const owners = [...new Set(groups.filter((g) => g.owner && (stable === undefined || g.version === stable)).map((g) => g.owner!.app))];
      const app = owners[0];
      let extra: Partial<CanaryRecord> = { startInstances: digest !== undefined };
      if (app) {
        if (!digest) throw new TrellisError('TRELLIS_BAD_OPTION', `${actor} belongs to app ${app}: give --source, so the app's desired state can move to the canary on promotion`);
        const { openApps } = await import('../apps/index.ts');
        const rev = await (await openApps(client.nc, client.subjects)).current(app);
        const inApp = rev?.value.spec.actors.find((a) => a.name === actor);
        if (!inApp) throw new TrellisError('TRELLIS_NOT_FOUND', `app ${app} has no actor ${actor}`);
        const { canary: _c, ...plain } = inApp;
        // The app may ask for another version than serves (a rolled-back canary): stable is what serves.
        const served = groups.find((g) => g.version === (stable ?? current?.value.stable));
        const stableSpec = served && served.version !== plain.version ? { ...plain, version: served.version, digest: served.digest } : plain;
        extra = { startInstances: false, stableSpec, canarySpec: { ...plain, version: flags.to, digest } };
      }
      if (!digest && !groups.some((g) => g.version === flags.to)) throw new TrellisError('TRELLIS_NOT_FOUND', `${actor} ${flags.to} runs nowhere: start it first, or give --source`);
      const out = await transition(w, actor, (st, now) => ({
        transition: start(st, { actor, ...(app ? { app } : {}), ...(stable ? { stable } : {}), canary: flags.to!, ...(digest ? { canaryDigest: digest } : {}), spec }, now),
        extra,
      }), current ? { current } : {});
      return summary(out.record, actor);
    },
  }),
  command({
    words: ['canary', 'status'],
    args: ['actor'],
    summary: 'show a canary: phase, step, weights set and measured, the last window, the history',
    details: '--watch prints it again on every change; --wait waits for the run to end and exits 0 if Promoted, 1 otherwise (2 on time-out).',
    lattice: true,
    flags: {
      watch: { type: 'boolean', help: 'print again on every change (one JSON object per line with --json)' },
      wait: { type: 'boolean', help: 'wait until the run ends; exit 0 on Promoted, non-zero otherwise' },
      timeout: { type: 'duration', help: 'with --wait: how long to wait (default 10m)', minMs: 1 },
    },
    async run({ client, args, flags }): Promise<{ data: unknown; text: string; exitCode?: number } | Stream> {
      const actor = args[0]!;
      const { openCanaries } = await controller();
      const { statusText, viewOf } = await import('../canary-controller/flags.ts');
      const docs = await openCanaries(client.nc, client.subjects);
      const show = (r: CanaryRecord) => ({ data: viewOf(r), text: statusText(viewOf(r)) });
      if (!flags.watch && !flags.wait) {
        const r = (await docs.get(actor))?.value;
        if (!r) throw new TrellisError('TRELLIS_NOT_FOUND', `no canary for ${actor}`);
        return show(r);
      }
      const { TerminalCanaryPhases } = await import('../wire/index.ts');
      // Follow the document: every change arrives in order; the queue hands them to the renderer.
      const queue: (CanaryRecord | undefined)[] = [];
      let wake: (() => void) | undefined;
      const stop = await docs.follow(({ value }) => {
        queue.push(value);
        wake?.();
      }, actor);
      const deadline = flags.wait ? Date.now() + (flags.timeout ?? 600_000) : Infinity;
      const next = async (): Promise<CanaryRecord | undefined | 'timeout'> => {
        while (queue.length === 0) {
          const left = deadline - Date.now();
          if (left <= 0) return 'timeout';
          await new Promise<void>((r) => {
            wake = r;
            if (left !== Infinity) setTimeout(r, left).unref();
          });
          wake = undefined;
        }
        return queue.shift();
      };
      if (flags.wait && !flags.watch) {
        try {
          let last: CanaryRecord | undefined;
          for (;;) {
            const r = await next();
            if (r === 'timeout') return { ...(last ? show(last) : { data: { actor }, text: `${actor}: no canary` }), exitCode: 2 };
            if (!r) continue;
            last = r;
            if (TerminalCanaryPhases.includes(r.phase)) return { ...show(r), exitCode: r.phase === 'Promoted' ? 0 : 1 };
          }
        } finally {
          stop();
        }
      }
      async function* stream() {
        try {
          let shown = '';
          for (;;) {
            const r = await next();
            if (r === 'timeout') return;
            if (!r) continue;
            const out = show(r);
            const json = JSON.stringify(out.data);
            if (json !== shown) yield out;
            shown = json;
            if (flags.wait && TerminalCanaryPhases.includes(r.phase)) {
              if (r.phase !== 'Promoted') process.exitCode = 1;
              return;
            }
          }
        } finally {
          stop();
        }
      }
      return { stream: stream() };
    },
  }),
  manual('promote', 'advance a canary one step now (leaves a pause); --full: promote it to 100 % now', { full: { type: 'boolean', help: 'skip the remaining steps and analysis' } }),
  manual('abort', 'stop a canary: stable gets 100 % at once and the canary stops (refused when none runs)'),
  manual('pause', 'hold a canary at its weight (a failing canary still rolls back)'),
  manual('resume', 'continue a paused canary from the same step, with a fresh window'),
];
