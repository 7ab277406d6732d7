/**
 * How actor imports reach providers: a capability call from an actor looks up the actor's link
 * for that interface (kept current by a KV watch) and asks the linked provider kind over NATS,
 * passing the link's config and who calls for which invocation (providers make writes
 * idempotent by the invocation id and the call's sequence number). No link: TRELLIS_NOT_LINKED
 * naming the missing link.
 */
import type { NatsConnection } from 'nats';
import { TrellisError, fromNatsError, fromWire, toTrellisError } from '../lattice/errors/index.ts';
import { linkKey, openLinks, type CapabilityInterface, type Link } from '../lattice/links/index.ts';
import type { RpcClient } from '../lattice/rpc/index.ts';
import { requireCapability, type Capability } from '../lattice/signing/index.ts';
import { openOnce } from '../lattice/state/index.ts';
import type { Subjects } from '../lattice/subjects/index.ts';
import type { Tracing } from '../lattice/telemetry/index.ts';
import { decode, encode, type ActorResponse, type KeyValueOp, type ProviderReply, type ProviderRequest } from '../lattice/wire/index.ts';
import type { CapabilityCall, HostCapabilities, HttpRequest, KeyValueCapability } from './runtime/index.ts';

/** The request with the trace context as its traceparent header (the guest's own one replaced). */
function withTraceparent(request: HttpRequest, traceparent: string): HttpRequest {
  const headers = request.headers.filter(([name]) => name.toLowerCase() !== 'traceparent' && name.toLowerCase() !== 'tracestate');
  headers.push(['traceparent', traceparent]);
  return { ...request, headers };
}

/**
 * Build the capabilities a host offers its actors. Links are followed lazily on first use.
 * A signed instance carries its capabilities on every call (CapabilityCall.caps), so the bound
 * holds for as long as the instance runs, starting and stopping included; a link it was not
 * signed for is refused on every call, so a link written later cannot widen it either. An
 * instance loaded unsigned, while `signingRequired()` says this host now checks signatures
 * (issuers were added after it started), may use nothing: the host fails closed.
 */
export function createCapabilities(options: { nc: NatsConnection; subjects: Subjects; rpc: () => Promise<RpcClient>; signingRequired?: () => boolean; tracing?: Tracing }): { capabilities: HostCapabilities; close(): void } {
  const { nc, subjects } = options;
  const bound = (who: CapabilityCall, cap: Capability) => {
    const name = `${who.actor}@${who.version}`;
    if (who.caps === undefined && options.signingRequired?.()) {
      throw new TrellisError('TRELLIS_CAPABILITY_DENIED', `actor ${name} was started unsigned and this host now requires signed components, so it may not use ${cap}; restart it from a signed component`);
    }
    requireCapability(name, who.caps as ReadonlySet<Capability> | undefined, cap);
  };
  const links = new Map<string, Link>();
  const following = openOnce(() => openLinks(nc, subjects).then((store) => store.follow(links)));

  async function linkFor(actor: string, iface: CapabilityInterface): Promise<Link> {
    await following.get();
    const link = links.get(linkKey(actor, iface));
    if (!link) {
      const provider = iface === 'keyvalue' ? 'keyvalue-nats bucket=<name>' : 'http-client';
      throw new TrellisError('TRELLIS_NOT_LINKED', `actor ${actor} has no ${iface} link; run: trellis link put ${actor} ${provider}`);
    }
    return link;
  }

  /** A capability call, as a client span under the guest's when tracing is on. */
  function call(who: CapabilityCall, iface: CapabilityInterface, op: string, args: unknown[]): Promise<unknown> {
    // The signature's bound first: a refused call makes no span and reaches no provider.
    try {
      bound(who, iface);
    } catch (err) {
      return Promise.reject(err);
    }
    const { tracing } = options;
    if (!tracing) return callProvider(who, iface, op, args);
    const span = tracing.span(`${iface} ${op}`, { kind: 'client', parent: who.traceparent, attributes: { 'trellis.actor': who.actor, 'trellis.version': who.version, 'trellis.invocation_id': who.invocationId, 'trellis.capability': iface, 'trellis.op': op } });
    // Outbound HTTP sends the trace on: the called service's spans join it under this one.
    const sent = iface === 'http-client' ? [withTraceparent(args[0] as HttpRequest, span.traceparent)] : args;
    return callProvider(who, iface, op, sent).then(
      (value) => (span.end(), value),
      (err: unknown) => {
        span.fail(toTrellisError(err));
        span.end();
        throw err;
      },
    );
  }

  async function callProvider(who: CapabilityCall, iface: CapabilityInterface, op: string, args: unknown[]): Promise<unknown> {
    const link = await linkFor(who.actor, iface);
    const request: ProviderRequest = {
      actor: who.actor,
      version: who.version,
      op,
      config: link.config,
      // Sealed: passed through unopened; only the provider holds the key.
      ...(link.secrets ? { secrets: link.secrets } : {}),
      args,
      // Only outbound HTTP needs the policy's hosts.
      allowedHosts: iface === 'http-client' ? [...who.allowedHosts] : undefined,
      invocation: { id: who.invocationId, seq: who.seq },
    };
    let reply: ProviderReply;
    try {
      const msg = await nc.request(subjects.provider(link.provider), encode(request), { timeout: 10_000 });
      reply = decode<ProviderReply>(msg.data, `${link.provider} reply`);
    } catch (err) {
      const error = fromNatsError(err, `provider ${link.provider}`);
      if (error.code === 'TRELLIS_NO_RESPONDERS') {
        throw new TrellisError('TRELLIS_NO_RESPONDERS', `no ${link.provider} provider is running; start one: trellis start provider ${link.provider}`);
      }
      throw error;
    }
    if (!reply.ok) throw fromWire(reply.error);
    return reply.value;
  }

  const kv = (op: KeyValueOp, who: CapabilityCall, ...args: unknown[]) => call(who, 'keyvalue', op, args);
  const keyvalue: KeyValueCapability = {
    get: async (who, key) => ((await kv('get', who, key)) as Uint8Array | null) ?? undefined,
    set: async (who, key, value) => void (await kv('set', who, key, value)),
    delete: async (who, key) => void (await kv('delete', who, key)),
    exists: async (who, key) => Boolean(await kv('exists', who, key)),
    keys: async (who, prefix) => (await kv('keys', who, prefix)) as string[],
    // 64-bit values travel as decimal text: msgpack and JSON would lose precision.
    increment: async (who, key, delta) => BigInt((await kv('increment', who, key, String(delta))) as string),
  };
  const capabilities: HostCapabilities = {
    keyvalue,
    httpSend: async (who, request) => (await call(who, 'http-client', 'send', [options.tracing || !who.traceparent ? request : withTraceparent(request, who.traceparent)])) as ActorResponse,
    // The callee's invocation id follows from this call's (see lattice/rpc/ids.ts): a retry of
    // the calling invocation repeats it, so the callee's writes are applied once as well.
    // The callee continues the caller's trace (the RPC client's span is the hop when tracing is on).
    callActor: async (who, target, request, deadlineMs) => {
      bound(who, 'actor-call');
      return (await (await options.rpc()).invoke(target, request, { deadlineMs, parent: { id: who.invocationId, seq: who.seq }, traceparent: who.traceparent })).response;
    },
  };
  return {
    capabilities,
    close() {
      void following.opened()?.then(
        (stop) => stop(),
        () => {}, // never followed: nothing to stop
      );
    },
  };
}
