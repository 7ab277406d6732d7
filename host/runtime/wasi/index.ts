/**
 * The WASI 0.2 imports an actor may use, implemented inside the actor's worker thread, deny by
 * default; one module per interface group. One implementation serves every 0.2.x version (the
 * worker maps each versioned import name onto these). Nothing here touches the host's real
 * environment, and the file system is only reachable through the policy's directory grants.
 *
 * Error conventions of jco bindings: throwing a non-Error value from an import that returns
 * `result<_, E>` becomes `err(value)`; throwing an Error traps the guest.
 */
import { cliImports } from './cli.ts';
import { filesystemImports } from './filesystem.ts';
import { httpImports } from './http.ts';
import { ioImports } from './streams.ts';
import type { SandboxConfig, SandboxHost } from './types.ts';

export { IncomingRequest, ResponseOutparam } from './http.ts';
export type { OutgoingHttp, SandboxConfig, SandboxHost } from './types.ts';

/** All WASI interfaces of one sandbox, keyed by unversioned name (`wasi:io/streams`). */
export function wasiImports(cfg: SandboxConfig, host: SandboxHost): Record<string, Record<string, unknown>> {
  return { ...ioImports, ...cliImports(cfg, host), ...filesystemImports(cfg, host), ...httpImports(cfg, host) };
}
