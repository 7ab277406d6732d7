/** The provider wire: hosts ask providers to perform capability operations on behalf of actors. */
import type { WireError } from '../errors/index.ts';

/** One capability operation. `config` is the link's config (e.g. the KV bucket). */
export interface ProviderRequest {
  actor: string;
  op: string;
  config: Record<string, string>;
  args: unknown[];
  /** The actor's allowed outbound hosts, for providers that reach the network. */
  allowedHosts?: string[];
}

/** The provider's answer. */
export type ProviderReply = { ok: true; value: unknown } | { ok: false; error: WireError };
