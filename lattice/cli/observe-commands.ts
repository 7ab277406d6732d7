/**
 * `trellis logs` and `trellis events`: what every host said and what happened in the lattice,
 * streamed as they come (`--follow`) and read back from their bounded streams (`--since`).
 * With --json, one JSON object per line (NDJSON), as published.
 */
import { TrellisError } from '../errors/index.ts';
import { EventTypes, type EventType } from '../subjects/index.ts';
import type { LatticeEvent } from '../wire/index.ts';
import { command } from './command.ts';
import type { ControlClient } from '../control/index.ts';

/** Without --follow and --since, how far back `logs` and `events` look. */
const DEFAULT_SINCE_MS = 10 * 60_000;

/** Resolve `--host` (an id, or a host's name) to a host id. */
async function hostIdOf(client: ControlClient, host: string | undefined): Promise<string | undefined> {
  if (host === undefined || /^N[A-Z0-9]{55}$/.test(host)) return host;
  const hosts = await client.pingHosts();
  const found = hosts.find((h) => h.name === host || h.id.endsWith(host));
  if (!found) throw new TrellisError('TRELLIS_NOT_FOUND', `no host named "${host}" answers (hosts: ${hosts.map((h) => h.name).join(', ') || 'none'}); give its id or name`);
  return found.id;
}

/** Stop a stream on Ctrl-C: the consumer closes and the command ends normally. */
function abortOnSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller.signal;
}

export const commands = [
  command({
    words: ['logs'],
    args: ['actor?'],
    summary: "stream log lines from every host (an actor's, or all), live or from the last minutes",
    details: [
      'Every line carries hostId, actor, version and, for lines of an invocation, invocationId and traceId.',
      'Without --follow: the lines of the last 10 minutes (or --since). With --follow: new lines as they come,',
      'after the kept ones since --since when given. Lines are kept in a bounded JetStream stream (a day, 200,000 lines).',
    ].join('\n'),
    lattice: true,
    flags: {
      host: { type: 'string', help: 'only lines of this host (id or name)', placeholder: 'host' },
      follow: { type: 'boolean', short: 'f', help: 'keep streaming new lines' },
      since: { type: 'duration', help: 'read back the kept lines of this long ago on (e.g. 10m)', minMs: 1 },
    },
    async run({ args, flags, client }) {
      const { readStream } = await import('../streams/index.ts');
      const { decodeLogLine, formatLogLine, logFilterSubject } = await import('../log/index.ts');
      const host = await hostIdOf(client, flags.host);
      const filter = logFilterSubject(client.subjects, { actor: args[0], host });
      const sinceMs = flags.since !== undefined ? Date.now() - flags.since : flags.follow ? undefined : Date.now() - DEFAULT_SINCE_MS;
      const signal = abortOnSignal();
      const lines = readStream(client.nc, { stream: client.subjects.streams.logs, filter, sinceMs, follow: flags.follow, signal });
      return {
        stream: (async function* () {
          for await (const m of lines) {
            const line = decodeLogLine(m.data);
            if (line) yield { data: line, text: formatLogLine(line) };
          }
        })(),
      };
    },
  }),
  command({
    words: ['events'],
    summary: "show the lattice's CloudEvents: hosts, actors, providers, apps (live or from the kept history)",
    details: [
      'Without --follow: the events of the last 10 minutes (or --since). With --follow: new events as they come,',
      'after the kept ones since --since when given. Heartbeats are not kept; `--type host_heartbeat --follow` shows them live.',
      `Types: ${EventTypes.join(', ')}.`,
    ].join('\n'),
    lattice: true,
    flags: {
      type: { type: 'list', help: 'only events of this type (repeatable)' },
      follow: { type: 'boolean', short: 'f', help: 'keep streaming new events' },
      since: { type: 'duration', help: 'read back the kept events of this long ago on (e.g. 1h)', minMs: 1 },
    },
    async run({ flags, client }) {
      const { readStream } = await import('../streams/index.ts');
      const { formatEvent } = await import('../events/index.ts');
      // Loaded here, not at the top: `trellis --help` must not load msgpackr (see test/dist.test.ts).
      const { decodeEvent } = await import('../wire/index.ts');
      for (const t of flags.type) {
        if (!(EventTypes as readonly string[]).includes(t)) throw new TrellisError('TRELLIS_BAD_OPTION', `--type ${t} is not an event type (types: ${EventTypes.join(', ')})`);
      }
      const types = flags.type as EventType[];
      // One type reads its own subject; several, or none, read all and filter here.
      const filter = types.length === 1 ? client.subjects.event(types[0]!) : client.subjects.allEvents();
      const wanted = (e: LatticeEvent) => (types.length > 0 ? types.includes(e.kind) : e.kind !== 'host_heartbeat');
      const sinceMs = flags.since !== undefined ? Date.now() - flags.since : flags.follow ? undefined : Date.now() - DEFAULT_SINCE_MS;
      const signal = abortOnSignal();
      const messages = readStream(client.nc, { stream: client.subjects.streams.events, filter, sinceMs, follow: flags.follow, signal });
      return {
        stream: (async function* () {
          for await (const m of messages) {
            let event: LatticeEvent;
            try {
              event = decodeEvent(m.data);
            } catch {
              continue; // not one of ours (another protocol version): skipped, not fatal
            }
            if (wanted(event)) yield { data: event, text: formatEvent(event) };
          }
        })(),
      };
    },
  }),
];
