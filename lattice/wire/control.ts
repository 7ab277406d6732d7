/**
 * Control-plane wire types: the one reply envelope and the typed requests and replies of each
 * control operation. Transport failures throw on the client; application failures are data in
 * the envelope.
 */
import type { WireError } from '../errors/index.ts';

/** The one control reply envelope. */
export interface ControlReply<T = unknown> {
  ok: boolean;
  error?: WireError;
  data?: T;
}

/** Every control request carries the lattice it is meant for, so misdirected commands are refused. */
export interface ControlRequestBase {
  lattice: string;
}

/** An actor instance group as a host reports it. */
export interface ActorInventory {
  name: string;
  version: string;
  digest: string;
  world: string;
  instances: number;
  maxConcurrency: number;
  startedAt: string;
}

/** A provider as a host reports it. */
export interface ProviderInventory {
  name: string;
  health: 'ok' | 'starting' | 'failed';
  restarts: number;
  startedAt: string;
  /** OS process id of the provider process, when the host supervises one. */
  pid?: number;
}

/** What a host says about itself: in heartbeats, ping answers and inventory replies. */
export interface HostInventory {
  id: string;
  name: string;
  lattice: string;
  labels: Record<string, string>;
  version: string;
  startedAt: string;
  uptimeMs: number;
  actors: ActorInventory[];
  providers: ProviderInventory[];
}

export interface LabelPutRequest extends ControlRequestBase {
  key: string;
  value: string;
}

export interface LabelDelRequest extends ControlRequestBase {
  key: string;
}

export interface StopHostRequest extends ControlRequestBase {
  /** How long in-flight work may take to finish before the host exits. */
  timeoutMs?: number;
}
