/** `trellis dashboard`: serve the live lattice dashboard (lattice/dashboard); it needs only a NATS connection. */
import { command, runUntilStopped } from './command.ts';
import { authFromFlags, natsAuthFlags } from './nats-flags.ts';
import { LogLevels } from '../options/index.ts';

export const commands = [
  command({
    words: ['dashboard'],
    summary: 'serve the live lattice dashboard: hosts by cloud, actors, traffic, weights, canaries, apps, events',
    details: 'Open the URL it prints in a browser; the page updates live over server-sent events.\nIt only reads the lattice. Logs are JSON lines on stdout; Ctrl-C stops it.',
    participant: true,
    flags: {
      nats: { type: 'string', help: 'NATS URLs, comma separated (default nats://127.0.0.1:4222)', env: 'TRELLIS_NATS_URL', placeholder: 'url' },
      lattice: { type: 'string', help: 'lattice name (default "default")', env: 'TRELLIS_LATTICE', placeholder: 'name' },
      listen: { type: 'string', help: 'address of the web page (`:port` for every interface; port 0: any free port)', default: '127.0.0.1:8090', placeholder: 'host:port' },
      'log-level': { type: 'choice', choices: LogLevels, help: 'log level (default info)', env: 'TRELLIS_LOG_LEVEL' },
      ...natsAuthFlags,
    },
    async run({ flags }) {
      const { createLogger } = await import('../log/index.ts');
      const { connectParticipant } = await import('../control/index.ts');
      const { compileNatsConnect, latticeOption, serversOption } = await import('../options/index.ts');
      const { parseListen } = await import('../http/index.ts');
      const { startDashboard } = await import('../dashboard/index.ts');
      const lattice = latticeOption(flags.lattice);
      parseListen(flags.listen);
      const logger = createLogger({ component: 'dashboard', level: flags.logLevel ?? 'info' }).child({ lattice });
      // It reads the whole lattice (beats, events, metrics, KV), as an operator credential may.
      const nc = await connectParticipant(compileNatsConnect({ servers: serversOption(flags.nats), lattice, role: 'operator', auth: authFromFlags(flags) }), 'trellis-dashboard');
      let dashboard;
      try {
        dashboard = await startDashboard({ nc, lattice, listen: flags.listen, logger });
        // For people: the JSON log line on stdout holds the URL too.
        process.stderr.write(`trellis dashboard: open ${dashboard.url} (lattice ${lattice})\n`);
      } catch (err) {
        await nc.close();
        throw err;
      }
      await runUntilStopped(nc, () => dashboard.close());
      return 0;
    },
  }),
];
