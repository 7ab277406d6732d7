/**
 * The WebAssembly JS API, typed. The project's TS lib set (ES2022, no DOM) declares no
 * `WebAssembly` value, so this is the one place that reaches for it.
 */
/** An opaque compiled core module (cloneable to workers: they share the compiled code). */
export interface WasmModule {
  readonly __brand?: 'WebAssembly.Module';
}
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports?: Record<string, unknown>) => WasmInstance;
  Memory: abstract new (...args: never[]) => WasmMemory;
  RuntimeError: new (...args: never[]) => Error;
}
export const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
