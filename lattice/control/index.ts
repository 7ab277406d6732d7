/**
 * The typed control client: what the CLI, the controller and tests use to drive hosts. One
 * method per control operation, each with its default time-out from the contract in
 * lattice/wire; it speaks msgpack requests and the one reply envelope, and turns envelopes
 * back into data or TrellisErrors. Transport failures (no responders, timeouts) throw with
 * their own codes.
 */
import { connect, createInbox, type NatsConnection } from 'nats';
import { fromNatsError, fromWire } from '../errors/index.ts';
import { compileNatsConnect, intOption, latticeOption, natsAuthFromEnv, serversOption, type NatsAuthOptions, type NatsConnect } from '../options/index.ts';
import { connectNats } from './connect.ts';
import { subjects as buildSubjects, type ControlOp, type Subjects } from '../subjects/index.ts';
import {
  ControlTimeoutsMs,
  decode,
  encode,
  type ControlParams,
  type ControlReplies,
  type ControlReply,
  type HostInventory,
} from '../wire/index.ts';
import { openRegistry, registeredHosts } from './registry.ts';

export { openRegistry, registerHost, REGISTRY_TTL_MS, type RegistryEntry } from './registry.ts';
export { classifyConnectError, natsConnectionOptions } from './connect.ts';

/** Options for connecting a control client. */
export interface ControlClientOptions {
  /** NATS URLs. Default: $TRELLIS_NATS_URL or nats://127.0.0.1:4222. */
  nats?: string | string[];
  /** Lattice name. Default: $TRELLIS_LATTICE or `default`. */
  lattice?: string;
  /** One time-out for every request; default: each operation's own (ControlTimeoutsMs). */
  timeoutMs?: number;
  /** Credentials and TLS (operator role); each defaults to its `TRELLIS_NATS_…` variable. */
  auth?: NatsAuthOptions;
}

/** The complete form of the control client's options. */
export interface CompiledControlOptions {
  servers: string[];
  lattice: string;
  timeoutMs?: number;
  connect: NatsConnect;
}

/** Validate control client options once, naming the flag at fault. */
export function compileControlOptions(input: ControlClientOptions = {}, env: NodeJS.ProcessEnv = process.env): CompiledControlOptions {
  const servers = serversOption(input.nats, env);
  const lattice = latticeOption(input.lattice, env);
  return {
    servers,
    lattice,
    timeoutMs: input.timeoutMs === undefined ? undefined : intOption('--timeout', input.timeoutMs, 1, 3_600_000),
    connect: compileNatsConnect({ servers, lattice, role: 'operator', auth: natsAuthFromEnv(input.auth ?? {}, env) }),
  };
}

/** Per-call override of the time-out. */
export interface CallOptions {
  timeoutMs?: number;
}

/** A typed client for lattice control commands. */
export interface ControlClient extends AsyncDisposable {
  readonly lattice: string;
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  /**
   * Every host answers a ping. Stops once every host in the registry has answered, or after
   * 250 ms without a new answer (hosts without JetStream are not registered), or after
   * `waitMs` (default 1000) when nobody answers at all.
   */
  pingHosts(options?: { waitMs?: number }): Promise<HostInventory[]>;
  getInventory(hostId: string, options?: CallOptions): Promise<HostInventory>;
  putLabel(hostId: string, key: string, value: string, options?: CallOptions): Promise<Record<string, string>>;
  deleteLabel(hostId: string, key: string, options?: CallOptions): Promise<Record<string, string>>;
  /** Ask a host to stop; `timeoutMs` is how long it lets in-flight work finish before it exits. */
  stopHost(hostId: string, options?: { timeoutMs?: number }): Promise<void>;
  startActor(hostId: string, params: ControlParams<'actorStart'>, options?: CallOptions): Promise<ControlReplies['actorStart']>;
  scaleActor(hostId: string, params: ControlParams<'actorScale'>, options?: CallOptions): Promise<ControlReplies['actorScale']>;
  stopActor(hostId: string, params: ControlParams<'actorStop'>, options?: CallOptions): Promise<ControlReplies['actorStop']>;
  startProvider(hostId: string, params: ControlParams<'providerStart'>, options?: CallOptions): Promise<ControlReplies['providerStart']>;
  stopProvider(hostId: string, params: ControlParams<'providerStop'>, options?: CallOptions): Promise<ControlReplies['providerStop']>;
  close(): Promise<void>;
}

/**
 * Connect a long-running lattice participant (host, gateway, provider, controller, a worker):
 * short client pings so a dead server is noticed in seconds, and reconnects forever because the
 * lattice may come back — except after a refused credential, which nats.js gives up on after the
 * second refusal in a row (the connection then closes with TRELLIS_NATS_AUTH's cause). Servers
 * alone mean no credential; a refused or failed login throws TRELLIS_NATS_AUTH.
 */
export function connectParticipant(target: string[] | NatsConnect, name: string): Promise<NatsConnection> {
  // ignoreAuthErrorAbort false (nats.js's default, stated because it matters): a refused credential ends the reconnects.
  return connectNats(target, name, { pingInterval: 2000, maxPingOut: 2, maxReconnectAttempts: -1, reconnectTimeWait: 500, ignoreAuthErrorAbort: false });
}

/** Connect to NATS and return a control client that owns the connection. */
export async function connectControl(options: ControlClientOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<ControlClient> {
  const compiled = compileControlOptions(options, env);
  const nc = await connectNats(compiled.connect, 'trellis-control', { maxReconnectAttempts: 2 });
  return createControlClient(nc, { ...compiled, ownsConnection: true });
}

/** How long `pingHosts` waits for one more answer once answers have started coming. */
const PING_SILENCE_MS = 250;

/** Build a control client on an existing connection (tests and in-process callers). */
export function createControlClient(
  nc: NatsConnection,
  options: Omit<ControlClientOptions, 'nats'> & { ownsConnection?: boolean } = {},
): ControlClient {
  const lattice = latticeOption(options.lattice);
  const subjects = buildSubjects(lattice);
  const fixedTimeoutMs = options.timeoutMs;

  function unwrap<T>(bytes: Uint8Array, what: string): T {
    const reply = decode<ControlReply<T>>(bytes, `${what} reply`);
    if (!reply.ok) throw fromWire(reply.error ?? { code: 'TRELLIS_INTERNAL', message: 'error reply without error' });
    return reply.data;
  }

  /** Send one operation to one host and unwrap the envelope. */
  async function send<Op extends ControlOp>(op: Op, hostId: string, params: ControlParams<Op>, call: CallOptions = {}): Promise<ControlReplies[Op]> {
    const timeout = call.timeoutMs ?? fixedTimeoutMs ?? ControlTimeoutsMs[op];
    try {
      const msg = await nc.request(subjects.control(op, hostId), encode({ lattice, ...params }), { timeout });
      return unwrap<ControlReplies[Op]>(msg.data, op);
    } catch (err) {
      throw fromNatsError(err, `host ${hostId}`);
    }
  }

  /** The registered host ids, or undefined when the registry cannot be read (no JetStream). */
  async function expectedHosts(): Promise<Set<string> | undefined> {
    try {
      return await registeredHosts(await openRegistry(nc, subjects, { bindOnly: true }));
    } catch {
      return undefined;
    }
  }

  async function pingHosts({ waitMs = 1000 } = {}): Promise<HostInventory[]> {
    const answers = new Map<string, HostInventory>();
    const inbox = createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix || undefined);
    let expected: Set<string> | undefined;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    let timer = setTimeout(finish, waitMs);
    const allAnswered = () => expected !== undefined && expected.size > 0 && [...expected].every((id) => answers.has(id));
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        // No responders arrives as an empty status message: nobody is there.
        if (err || msg.data.length === 0) return finish();
        try {
          const host = unwrap<HostInventory>(msg.data, 'ping');
          answers.set(host.id, host);
        } catch {
          return; // a host of another version answering garbage must not break the listing
        }
        if (allAnswered()) return finish();
        clearTimeout(timer);
        timer = setTimeout(finish, PING_SILENCE_MS);
      },
    });
    try {
      nc.publish(subjects.control('hostPing'), encode({ lattice }), { reply: inbox });
      void expectedHosts().then((ids) => {
        expected = ids;
        if (allAnswered()) finish();
      });
      await done;
    } catch (err) {
      throw fromNatsError(err, 'hosts');
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
    return [...answers.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  return {
    lattice,
    nc,
    subjects,
    pingHosts,
    getInventory: (hostId, call) => send('hostInventory', hostId, {}, call),
    putLabel: async (hostId, key, value, call) => (await send('labelPut', hostId, { key, value }, call)).labels,
    deleteLabel: async (hostId, key, call) => (await send('labelDel', hostId, { key }, call)).labels,
    async stopHost(hostId, { timeoutMs } = {}) {
      await send('hostStop', hostId, timeoutMs === undefined ? {} : { timeoutMs });
    },
    startActor: (hostId, params, call) => send('actorStart', hostId, params, call),
    scaleActor: (hostId, params, call) => send('actorScale', hostId, params, call),
    stopActor: (hostId, params, call) => send('actorStop', hostId, params, call),
    startProvider: (hostId, params, call) => send('providerStart', hostId, params, call),
    stopProvider: (hostId, params, call) => send('providerStop', hostId, params, call),
    async close() {
      if (options.ownsConnection && !nc.isClosed()) await nc.close();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}
