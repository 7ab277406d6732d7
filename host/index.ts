/** The host process: the single entry others import. */
export { startHost, TRELLIS_VERSION, type Host } from './host.ts';
export { compileHostOptions, stateDir, AUTOMATIC_LABEL_KEYS, type HostOptions, type CompiledHostOptions } from './options/index.ts';
