/**
 * The commands that run lattice participants in this process: `host`, `gateway`, `provider`,
 * and the dev loop's `run` and `build`. They live in host/ because they compose the host and the
 * providers; they log pino JSON on stdout and run until a signal.
 */
import { stat } from 'node:fs/promises';
import { authFromFlags, command, controllerAuthFlags, natsAuthFlags, providerAuthFlags, roleAuthFromFlags, runUntilStopped, untilSignal, type Flags } from '../../lattice/cli/index.ts';
import { TrellisError } from '../../lattice/errors/index.ts';
import { LogLevels } from '../../lattice/options/index.ts';

/** Flags of every long-running participant. */
export const participantFlags = {
  nats: { type: 'string', help: 'NATS URLs, comma separated (default nats://127.0.0.1:4222)', env: 'TRELLIS_NATS_URL', placeholder: 'url' },
  lattice: { type: 'string', help: 'lattice name (default "default")', env: 'TRELLIS_LATTICE', placeholder: 'name' },
  'log-level': { type: 'choice', choices: LogLevels, help: 'log level (default info)', env: 'TRELLIS_LOG_LEVEL' },
  ...natsAuthFlags,
} as const satisfies Flags;

/** The lattice's curve seed file: opens sealed link secrets (a host hands it to its providers). */
const secretsKeyFlag = { type: 'string', help: 'file with the lattice curve seed that opens sealed link secrets', env: 'TRELLIS_SECRETS_KEY_FILE', placeholder: 'file' } as const;
/** Tracing flag of the participants that trace (host, gateway); the OTEL_* variables apply too. */
export const tracingFlags = {
  'otlp-endpoint': { type: 'string', help: 'export traces to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (default: off)', env: 'OTEL_EXPORTER_OTLP_ENDPOINT', placeholder: 'url' },
} as const satisfies Flags;

export const hostFlags = {
  ...participantFlags,
  label: { type: 'pairs', short: 'l', help: 'a label key=value, e.g. --label cloud=aws' },
  name: { type: 'string', help: 'friendly name (default: hostname plus an id suffix)' },
  seed: { type: 'string', help: 'nkey server seed to keep the identity across restarts', env: 'TRELLIS_HOST_SEED', placeholder: 'seed' },
  'heartbeat-ms': { type: 'int', help: 'period of the full inventory in ms, 100..5000 (default 5000; also sent on every change)', min: 100, max: 5000 },
  'beat-ms': { type: 'int', help: 'liveness beat period in ms, 100..5000 (default 1000; dead after 3 missed beats)', min: 100, max: 5000 },
  'no-controller': { type: 'boolean', help: 'do not run the lattice controller (reconciler) in this host' },
  'http-port': { type: 'int', help: 'serve /metrics, /health, /ready on this port (0: any free port)', max: 65535 },
  'http-host': { type: 'string', help: 'address for the HTTP port (default 127.0.0.1)', placeholder: 'address' },
  workers: { type: 'int', help: 'worker threads shared by all actors, 1..256 (default: CPU cores; each holds one NATS connection)', min: 1, max: 256 },
  gateway: { type: 'string', help: 'also run the HTTP gateway on host:port (e.g. :8080); local instances answer without NATS', placeholder: 'host:port' },
  'allowed-issuer': { type: 'list', help: 'run only components signed by this issuer public key (and the lattice list: trellis issuers); env TRELLIS_ALLOWED_ISSUERS, comma separated' },
  'require-signed': { type: 'boolean', help: 'check signatures even with no allowed issuer anywhere (then refuse every component); env TRELLIS_REQUIRE_SIGNED' },
  'secrets-key': secretsKeyFlag,
  ...tracingFlags,
  'control-rate': { type: 'int', help: 'control commands per second admitted per caller (reply-inbox user), sustained (default 100; 0: no limit)', env: 'TRELLIS_CONTROL_RATE', min: 0 },
  'control-burst': { type: 'int', help: 'control commands a caller may send at once (default 200)', env: 'TRELLIS_CONTROL_BURST', min: 1 },
  ...controllerAuthFlags,
  ...providerAuthFlags,
} as const satisfies Flags;

export const commands = [
  command({
    words: ['host'],
    summary: 'run a host that joins the lattice and takes actors and providers',
    details: 'Logs are JSON lines on stdout. Stops gracefully on SIGINT/SIGTERM or `trellis stop host`.',
    participant: true,
    flags: hostFlags,
    async run({ flags }) {
      const { startHost } = await import('../index.ts');
      const host = await startHost({
        nats: flags.nats,
        lattice: flags.lattice,
        labels: flags.label,
        name: flags.name,
        seed: flags.seed,
        heartbeatMs: flags.heartbeatMs,
        beatMs: flags.beatMs,
        controller: !flags.noController,
        httpPort: flags.httpPort,
        httpHost: flags.httpHost,
        logLevel: flags.logLevel,
        gateway: flags.gateway,
        ...(flags.allowedIssuer.length > 0 ? { allowedIssuers: flags.allowedIssuer } : {}),
        ...(flags.requireSigned ? { requireSigned: true } : {}),
        secretsKeyFile: flags.secretsKey,
        otlpEndpoint: flags.otlpEndpoint,
        workers: flags.workers,
        controlRate: { ratePerSec: flags.controlRate, burst: flags.controlBurst },
        auth: authFromFlags(flags),
        controllerAuth: roleAuthFromFlags(flags, 'controller'),
        providerAuth: roleAuthFromFlags(flags, 'provider'),
      });
      return runHostUntilStopped(host);
    },
  }),
  command({
    words: ['gateway'],
    summary: 'run the HTTP gateway: routes requests to actors through the lattice',
    participant: true,
    flags: {
      ...participantFlags,
      listen: { type: 'string', help: 'host:port', default: '127.0.0.1:8080', placeholder: 'host:port' },
      'max-body-bytes': { type: 'int', help: 'largest request body (default 1 MiB, capped by NATS max_payload)', min: 1 },
      'deadline-ms': { type: 'int', help: 'deadline per request (default 10000)', min: 1 },
      ...tracingFlags,
    },
    async run({ flags }) {
      const { createLogger } = await import('../../lattice/log/index.ts');
      const { connectParticipant } = await import('../../lattice/control/index.ts');
      const { compileNatsConnect, latticeOption, serversOption } = await import('../../lattice/options/index.ts');
      const { startGateway } = await import('../../providers/index.ts');
      const lattice = latticeOption(flags.lattice);
      const connect = compileNatsConnect({ servers: serversOption(flags.nats), lattice, role: 'gateway', auth: authFromFlags(flags) });
      const logger = createLogger({ component: 'gateway', level: (flags.logLevel) ?? 'info' }).child({ lattice });
      const { startTracing } = await import('../../lattice/telemetry/index.ts');
      const tracing = await startTracing({ service: 'trellis-gateway', lattice, endpoint: flags.otlpEndpoint });
      const nc = await connectParticipant(connect, 'trellis-gateway');
      const gateway = await startGateway({ nc, lattice, listen: flags.listen, maxBodyBytes: flags.maxBodyBytes, deadlineMs: flags.deadlineMs, logger, tracing });
      logger.info({ url: gateway.url, tracing: tracing !== undefined }, 'gateway ready');
      await runUntilStopped(nc, async () => {
        await gateway.close();
        await tracing?.shutdown();
      });
      return failIfClosedWithError(nc, connect.servers);
    },
  }),
  command({
    words: ['provider'],
    args: ['keyvalue-nats|http-client'],
    summary: 'run a capability provider as a standalone lattice participant',
    participant: true,
    flags: { ...participantFlags, 'secrets-key': secretsKeyFlag },
    async run({ args, flags }) {
      const { createLogger } = await import('../../lattice/log/index.ts');
      // Read first: a provider that cannot open the secrets it is given fails at start, not per call.
      const secretsKey = flags.secretsKey ? await (await import('../../lattice/signing/index.ts')).readSeedFile(flags.secretsKey, ['curve'], 'secrets key') : undefined;
      const { connectParticipant } = await import('../../lattice/control/index.ts');
      const { subjects: buildSubjects } = await import('../../lattice/subjects/index.ts');
      const { compileProviderOptions, followSupervisor, startProvider } = await import('../../providers/index.ts');
      const { compileNatsConnect } = await import('../../lattice/options/index.ts');
      const { kind, servers, lattice, logLevel } = compileProviderOptions({ kind: args[0]!, nats: flags.nats, lattice: flags.lattice, logLevel: flags.logLevel });
      const connect = compileNatsConnect({ servers, lattice, role: 'provider', auth: authFromFlags(flags) });
      const logger = createLogger({ component: 'provider', level: logLevel }).child({ provider: kind, lattice });
      const supervisor = followSupervisor(logger);
      const nc = await connectParticipant(connect, `trellis-provider-${kind}`);
      const service = startProvider(kind, nc, buildSubjects(lattice), logger, secretsKey);
      await nc.flush();
      logger.info('provider ready');
      supervisor.ready();
      await runUntilStopped(nc, () => service.close(), (signal) => logger.info({ signal }, 'provider stopping'));
      return failIfClosedWithError(nc, servers);
    },
  }),
  command({
    words: ['controller'],
    summary: 'run a lattice controller (the app reconciler) without a host; one leads per lattice',
    details: 'Every host runs one too (unless --no-controller); the leader holds a lease with a TTL in KV.',
    participant: true,
    flags: {
      ...participantFlags,
      name: { type: 'string', help: 'name in the lease and the NATS connection (default controller-<hostname>)' },
      'lease-ttl-ms': { type: 'int', help: 'leader lease TTL in ms (default 3000): a dead leader is replaced within it', min: 500, max: 60_000 },
      'hold-down-ms': { type: 'int', help: 'how long a flapping host gets no new placements, ms (default 30000)', min: 0 },
    },
    async run({ flags }) {
      const os = await import('node:os');
      const { createLogger } = await import('../../lattice/log/index.ts');
      const { compileNatsConnect, latticeOption, serversOption } = await import('../../lattice/options/index.ts');
      const { startController } = await import('../../lattice/reconciler/index.ts');
      const lattice = latticeOption(flags.lattice);
      const servers = serversOption(flags.nats);
      const connect = compileNatsConnect({ servers, lattice, role: 'controller', auth: authFromFlags(flags) });
      const logger = createLogger({ component: 'controller', level: flags.logLevel ?? 'info' }).child({ lattice });
      const controller = await startController({ servers, connect, lattice, name: flags.name ?? `controller-${os.hostname()}`, logger, leaseTtlMs: flags.leaseTtlMs, holdDownMs: flags.holdDownMs });
      logger.info({ id: controller.id }, 'controller ready');
      const ended = await Promise.race([untilSignal(), controller.connectionClosed]);
      await controller.close();
      if (ended instanceof Error) throw ended;
      return 0;
    },
  }),
  command({
    words: ['build'],
    args: ['entry.ts|js|c'],
    summary: 'build an actor component from TypeScript, JavaScript or C',
    details: 'A JS/TS entry that exports `handler` targets the trellis:actor world; one that exports\n`incomingHandler` targets wasi:http/proxy. See actors/wit/actor.wit for the ABI.',
    flags: {
      out: { type: 'string', short: 'o', help: 'output component file (required)', placeholder: 'actor.wasm' },
      world: { type: 'string', help: "world to target: actor or proxy (default: from the entry's exports)" },
      wit: { type: 'string', help: 'a WIT folder of your own', placeholder: 'dir' },
    },
    async run({ args, flags, progress }) {
      if (!flags.out) throw new TrellisError('TRELLIS_BAD_OPTION', '-o/--out <actor.wasm> is required');
      const { buildActor } = await import('../../actors/index.ts');
      progress(`building ${args[0]}...`);
      const result = await buildActor({ entry: args[0]!, out: flags.out, world: flags.world, witPath: flags.wit });
      return { data: result, text: `${result.out}: ${(result.bytes / 1024).toFixed(1)} KiB in ${(result.ms / 1000).toFixed(1)} s` };
    },
  }),
  command({
    words: ['run'],
    args: ['component.wasm'],
    summary: 'serve one component over HTTP on this machine (either world), like wasmtime serve',
    participant: true,
    flags: {
      policy: { type: 'string', help: 'sandbox policy file, JSON or YAML (default: deny everything)', placeholder: 'file' },
      listen: { type: 'string', help: 'host:port (default 127.0.0.1:8000)', placeholder: 'host:port' },
    },
    async run({ args, flags }) {
      const file = args[0]!;
      try {
        await stat(file);
      } catch {
        throw new TrellisError('TRELLIS_FILE_UNREADABLE', `cannot read component ${file}: no such file`);
      }
      const { loadPolicyFile } = await import('../../lattice/policy/index.ts');
      const { serveComponent } = await import('../runtime/index.ts');
      const policy = flags.policy ? await loadPolicyFile(flags.policy) : undefined;
      const server = await serveComponent({ path: file, policy, listen: flags.listen });
      console.log(`serving ${file} on ${server.url} (Ctrl-C stops)`);
      await untilSignal();
      await server.close();
      return 0;
    },
  }),
];

/** Stop `host` (and whatever else) on SIGINT/SIGTERM; resolves when the host has stopped. */
export async function runHostUntilStopped(host: import('../index.ts').Host, cleanup: () => Promise<void> = async () => {}): Promise<number> {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    // A second Ctrl-C means "now": skip the graceful path.
    if (signals > 1) process.exit(130);
    host.logger.info({ signal }, 'signal received, stopping');
    void host.stop(`signal ${signal}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await host.stopped;
  await host.stop();
  await cleanup();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // A revoked credential ends the host with its own code (the dispatcher prints it), not exit 0.
  if (host.connectionError) throw host.connectionError;
  return 0;
}

/** After a participant stopped: exit 0, or throw why its connection closed (e.g. TRELLIS_NATS_AUTH). */
async function failIfClosedWithError(nc: { isClosed(): boolean; closed(): Promise<void | Error> }, servers: string[]): Promise<number> {
  if (!nc.isClosed()) return 0;
  const err = await nc.closed();
  if (!err) return 0;
  const { classifyConnectError } = await import('../../lattice/control/index.ts');
  throw classifyConnectError(err, servers);
}
