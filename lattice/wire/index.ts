/** Wire types and codecs shared by host, gateway, CLI and tests. Dependency-light on purpose. */
export * from './actor.ts';
export * from './codec.ts';
export * from './limits.ts';
export * from './control.ts';
export * from './events.ts';
export * from './rpc.ts';
export * from './provider.ts';
export * from './apps.ts';
export * from './liveness.ts';
export * from './canary.ts';
