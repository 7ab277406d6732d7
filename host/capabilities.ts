/**
 * How actor imports reach providers: a capability call from an actor looks up the actor's link
 * for that interface (kept current by a KV watch) and asks the linked provider kind over NATS,
 * passing the link's config. No link: TRELLIS_NOT_LINKED naming the missing link.
 */
import type { NatsConnection } from 'nats';
import { TrellisError, fromWire } from '../lattice/errors/index.ts';
import { linkKey, openLinks, type CapabilityInterface, type Link } from '../lattice/links/index.ts';
import type { RpcClient } from '../lattice/rpc/index.ts';
import { openOnce } from '../lattice/state/index.ts';
import type { Subjects } from '../lattice/subjects/index.ts';
import { transportError } from '../lattice/control/index.ts';
import { decode, encode, type ActorResponse, type ProviderReply } from '../lattice/wire/index.ts';
import type { HostCapabilities } from './runtime/index.ts';

/** Runtime names are `actor@version`; links are per actor. */
const actorOf = (runtimeName: string) => runtimeName.split('@')[0]!;

/** Build the capabilities a host offers its actors. Links are followed lazily on first use. */
export function createCapabilities(options: {
  nc: NatsConnection;
  subjects: Subjects;
  rpc: () => Promise<RpcClient>;
  allowedHostsOf: (runtimeName: string) => string[];
}): { capabilities: HostCapabilities; close(): void } {
  const { nc, subjects } = options;
  const links = new Map<string, Link>();
  const following = openOnce(() => openLinks(nc, subjects).then((store) => store.follow(links)));

  async function linkFor(runtimeName: string, iface: CapabilityInterface): Promise<Link> {
    await following.get();
    const actor = actorOf(runtimeName);
    const link = links.get(linkKey(actor, iface));
    if (!link) {
      const provider = iface === 'keyvalue' ? 'keyvalue-nats bucket=<name>' : 'http-client';
      throw new TrellisError('TRELLIS_NOT_LINKED', `actor ${actor} has no ${iface} link; run: trellis link put ${actor} ${provider}`);
    }
    return link;
  }

  async function call(runtimeName: string, iface: CapabilityInterface, op: string, args: unknown[]): Promise<unknown> {
    const link = await linkFor(runtimeName, iface);
    // Only outbound HTTP needs the policy's hosts; other calls skip the lookup.
    const allowedHosts = iface === 'http-client' ? options.allowedHostsOf(runtimeName) : undefined;
    const request = { actor: actorOf(runtimeName), op, config: link.config, args, allowedHosts };
    let reply: ProviderReply;
    try {
      const msg = await nc.request(subjects.provider(link.provider), encode(request), { timeout: 10_000 });
      reply = decode<ProviderReply>(msg.data, `${link.provider} reply`);
    } catch (err) {
      const error = transportError(err, `provider ${link.provider}`);
      if (error.code === 'TRELLIS_NO_RESPONDERS') {
        throw new TrellisError('TRELLIS_NO_RESPONDERS', `no ${link.provider} provider is running; start one: trellis start provider ${link.provider}`);
      }
      throw error;
    }
    if (!reply.ok) throw fromWire(reply.error);
    return reply.value;
  }

  const kv = (op: string) => (actor: string, ...args: unknown[]) => call(actor, 'keyvalue', op, args);
  const capabilities: HostCapabilities = {
    keyvalue: {
      get: async (actor, key) => ((await kv('get')(actor, key)) as Uint8Array | null) ?? undefined,
      set: async (actor, key, value) => void (await kv('set')(actor, key, value)),
      delete: async (actor, key) => void (await kv('delete')(actor, key)),
      exists: async (actor, key) => Boolean(await kv('exists')(actor, key)),
      keys: async (actor, prefix) => (await kv('keys')(actor, prefix)) as string[],
      // 64-bit values travel as decimal text: msgpack and JSON would lose precision.
      increment: async (actor, key, delta) => BigInt((await kv('increment')(actor, key, String(delta))) as string),
    },
    httpSend: async (actor, request) => (await call(actor, 'http-client', 'send', [request])) as ActorResponse,
    callActor: async (_caller, target, request, deadlineMs) => (await (await options.rpc()).invoke(target, request, { deadlineMs })).response,
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
