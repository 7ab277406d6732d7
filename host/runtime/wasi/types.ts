/** What the WASI layer of one worker's sandbox is given: its policy and the worker's services. */
import type { Grant } from './grants.ts';

/** What the worker's sandbox knows of its policy (values resolved on the main thread). */
export interface SandboxConfig {
  actor: string;
  env: [string, string][];
  allowedEnvVars: string[];
  allowedHosts: string[];
  /** hostPath is already a real path. */
  dirs: Grant[];
}

/** The services the worker provides to the WASI layer. */
export interface SandboxHost {
  /**
   * Record a policy violation of the current invocation. An escape attempt (`permission denied`)
   * outranks a write to a read-only grant; otherwise the first one wins.
   */
  violation(message: string): void;
  /** A line the guest wrote to stdout/stderr. */
  output(stream: 'stdout' | 'stderr', line: string): void;
  /** Send an HTTP request through the host capability (blocking). */
  httpSend(req: OutgoingHttp): { status: number; headers: [string, string][]; body: Uint8Array };
}

export interface OutgoingHttp {
  method: string;
  url: string;
  headers: [string, string][];
  body: Uint8Array;
}
