/**
 * The typed control client: what the CLI and tests use to drive hosts. It speaks the control
 * protocol (msgpack requests, one reply envelope) and turns envelopes back into data or
 * TrellisErrors. Transport failures (no responders, timeouts) throw with their own codes.
 */
import { connect, RequestStrategy, type NatsConnection } from 'nats';
import { TrellisError, fromWire } from '../errors/index.ts';
import { subjects as buildSubjects, type ControlOp, type Subjects } from '../subjects/index.ts';
import { decode, encode, type ControlReply, type HostInventory } from '../wire/index.ts';

/** Options for connecting a control client. */
export interface ControlClientOptions {
  /** NATS URLs. Default: $TRELLIS_NATS_URL or nats://127.0.0.1:4222. */
  nats?: string | string[];
  /** Lattice name. Default: $TRELLIS_LATTICE or `default`. */
  lattice?: string;
  /** Per-request timeout. Default 2000 ms. */
  timeoutMs?: number;
}

/** A typed client for lattice control commands. */
export interface ControlClient extends AsyncDisposable {
  readonly lattice: string;
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  /** Every host answers; gathers answers until the lattice goes quiet. */
  pingHosts(options?: { waitMs?: number }): Promise<HostInventory[]>;
  getInventory(hostId: string): Promise<HostInventory>;
  putLabel(hostId: string, key: string, value: string): Promise<Record<string, string>>;
  deleteLabel(hostId: string, key: string): Promise<Record<string, string>>;
  stopHost(hostId: string, options?: { timeoutMs?: number }): Promise<void>;
  /** Send any control operation to one host and unwrap the envelope. */
  request<T>(op: ControlOp, hostId: string, body?: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<T>;
  close(): Promise<void>;
}

/** Resolve NATS server URLs the same way everywhere (flag, then env, then the local default). */
export function resolveServers(nats?: string | string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = nats ?? env.TRELLIS_NATS_URL ?? 'nats://127.0.0.1:4222';
  return (Array.isArray(raw) ? raw : raw.split(',')).map((s) => s.trim()).filter(Boolean);
}

/**
 * Connect a long-running lattice participant (host, gateway, provider): short client pings so a
 * dead server is noticed in seconds, and reconnects forever because the lattice may come back.
 */
export async function connectParticipant(servers: string[], name: string): Promise<NatsConnection> {
  try {
    return await connect({ servers, name, pingInterval: 2000, maxPingOut: 2, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  } catch (err) {
    throw new TrellisError('TRELLIS_NATS_UNAVAILABLE', `cannot connect to NATS at ${servers.join(',')}: ${(err as Error).message}`, { cause: err });
  }
}

/** Connect to NATS and return a control client that owns the connection. */
export async function connectControl(options: ControlClientOptions = {}): Promise<ControlClient> {
  const servers = resolveServers(options.nats);
  let nc: NatsConnection;
  try {
    nc = await connect({ servers, name: 'trellis-control', maxReconnectAttempts: 2 });
  } catch (err) {
    throw new TrellisError('TRELLIS_NATS_UNAVAILABLE', `cannot connect to NATS at ${servers.join(',')}: ${(err as Error).message}`, { cause: err });
  }
  return createControlClient(nc, { ...options, ownsConnection: true });
}

/** Build a control client on an existing connection (tests and in-process callers). */
export function createControlClient(
  nc: NatsConnection,
  options: Omit<ControlClientOptions, 'nats'> & { ownsConnection?: boolean } = {},
): ControlClient {
  const lattice = options.lattice ?? process.env.TRELLIS_LATTICE ?? 'default';
  const subjects = buildSubjects(lattice);
  const timeoutMs = options.timeoutMs ?? 2000;

  function unwrap<T>(bytes: Uint8Array, what: string): T {
    const reply = decode<ControlReply<T>>(bytes, `${what} reply`);
    if (!reply.ok) throw fromWire(reply.error ?? { code: 'TRELLIS_INTERNAL', message: 'error reply without error' });
    return reply.data as T;
  }

  async function request<T>(op: ControlOp, hostId: string, body: Record<string, unknown> = {}, opts: { timeoutMs?: number } = {}): Promise<T> {
    try {
      // Starting an actor may fetch and transpile a large component: it gets a longer default.
      const timeout = opts.timeoutMs ?? (op === 'actorStart' || op === 'actorScale' ? Math.max(timeoutMs, 120_000) : timeoutMs);
      const msg = await nc.request(subjects.control(op, hostId), encode({ lattice, ...body }), { timeout });
      return unwrap<T>(msg.data, op);
    } catch (err) {
      throw transportError(err, `host ${hostId}`);
    }
  }

  return {
    lattice,
    nc,
    subjects,
    async pingHosts({ waitMs = 1000 } = {}) {
      const hosts: HostInventory[] = [];
      try {
        // Jitter strategy: wait up to waitMs for the first answer, then stop after 250 ms of silence.
        const replies = await nc.requestMany(subjects.control('hostPing'), encode({ lattice }), {
          strategy: RequestStrategy.JitterTimer,
          maxWait: waitMs,
          jitter: 250,
        });
        for await (const msg of replies) {
          // A no-responders status arrives as an empty message with headers; skip it.
          if (msg.data.length === 0) continue;
          hosts.push(unwrap<HostInventory>(msg.data, 'ping'));
        }
      } catch (err) {
        const e = transportError(err, 'hosts');
        if (e.code !== 'TRELLIS_NO_RESPONDERS') throw e;
      }
      return hosts.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    },
    getInventory: (hostId) => request<HostInventory>('hostInventory', hostId),
    putLabel: async (hostId, key, value) => (await request<{ labels: Record<string, string> }>('labelPut', hostId, { key, value })).labels,
    deleteLabel: async (hostId, key) => (await request<{ labels: Record<string, string> }>('labelDel', hostId, { key })).labels,
    async stopHost(hostId, { timeoutMs: stopTimeout } = {}) {
      await request('hostStop', hostId, stopTimeout === undefined ? {} : { timeoutMs: stopTimeout });
    },
    request,
    async close() {
      if (options.ownsConnection && !nc.isClosed()) await nc.close();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}

/** Map nats.js transport errors to our codes. */
export function transportError(err: unknown, target: string): TrellisError {
  if (err instanceof TrellisError) return err;
  const code = (err as { code?: string }).code;
  if (code === '503') return new TrellisError('TRELLIS_NO_RESPONDERS', `no responders for ${target}`, { cause: err });
  if (code === 'TIMEOUT') return new TrellisError('TRELLIS_TIMEOUT', `${target} did not answer in time`, { cause: err });
  if (code === 'MAX_PAYLOAD_EXCEEDED') return new TrellisError('TRELLIS_PAYLOAD_TOO_LARGE', `payload too large for the NATS server`, { cause: err });
  if (code === 'CONNECTION_CLOSED' || code === 'CONNECTION_DRAINING') {
    return new TrellisError('TRELLIS_NATS_UNAVAILABLE', `NATS connection closed`, { cause: err });
  }
  return new TrellisError('TRELLIS_INTERNAL', (err as Error).message ?? String(err), { cause: err });
}
