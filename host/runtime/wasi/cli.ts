/**
 * wasi:cli, wasi:clocks and wasi:random, and the socket interfaces that are never granted.
 * Nothing here reads the host's real environment: the guest sees only its policy's variables,
 * no arguments, an empty stdin, and stdout/stderr as log lines.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { bytesStream, OutputStream, Pollable } from './streams.ts';
import type { SandboxConfig, SandboxHost } from './types.ts';

/** A guest called wasi:cli/exit: ends the invocation (as a trap) and the instance. */
class GuestExit extends Error {
  constructor(readonly code: number) {
    super(`exit called with status ${code}`);
  }
}

/** Guest output as whole lines; a partial line (or UTF-8 sequence) waits for its end. */
function lineSink(stream: 'stdout' | 'stderr', host: SandboxHost): OutputStream {
  const decoder = new TextDecoder();
  let partial = '';
  return new OutputStream((bytes) => {
    const lines = (partial + decoder.decode(bytes, { stream: true })).split('\n');
    partial = lines.pop()!;
    for (const l of lines) host.output(stream, l);
  });
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepNs(ns: bigint): void {
  if (ns > 0n) Atomics.wait(sleeper, 0, 0, Number(ns) / 1e6);
}

function timer(deadlineNs: bigint): Pollable {
  return new Pollable(
    () => process.hrtime.bigint() >= deadlineNs,
    () => sleepNs(deadlineNs - process.hrtime.bigint()),
  );
}

function datetime(ms: number) {
  return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: Math.round((ms % 1000) * 1e6) };
}

const randomU64 = () => randomBytes(8).readBigUInt64LE();

/** The wasi:cli, clocks, random and sockets interfaces of one sandbox. */
export function cliImports(cfg: SandboxConfig, host: SandboxHost) {
  const stdout = lineSink('stdout', host);
  const stderr = lineSink('stderr', host);
  const stdin = bytesStream(new Uint8Array());
  class TerminalInput {}
  class TerminalOutput {}
  return {
    'wasi:cli/environment': {
      getEnvironment: () => cfg.env,
      getArguments: () => [],
      initialCwd: () => undefined,
    },
    'wasi:cli/exit': {
      exit: (status: { tag: string }) => {
        throw new GuestExit(status.tag === 'ok' ? 0 : 1);
      },
      exitWithCode: (code: number) => {
        throw new GuestExit(code);
      },
    },
    'wasi:cli/stdin': { getStdin: () => stdin },
    'wasi:cli/stdout': { getStdout: () => stdout },
    'wasi:cli/stderr': { getStderr: () => stderr },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: () => undefined },
    'wasi:cli/terminal-stdout': { getTerminalStdout: () => undefined },
    'wasi:cli/terminal-stderr': { getTerminalStderr: () => undefined },
    'wasi:clocks/monotonic-clock': {
      now: () => process.hrtime.bigint(),
      resolution: () => 1000n,
      subscribeInstant: (when: bigint) => timer(when),
      subscribeDuration: (d: bigint) => timer(process.hrtime.bigint() + d),
    },
    'wasi:clocks/wall-clock': {
      now: () => datetime(Date.now()),
      resolution: () => ({ seconds: 0n, nanoseconds: 1_000_000 }),
    },
    'wasi:random/random': {
      getRandomBytes: (len: bigint) => randomFillSync(new Uint8Array(Number(len))),
      getRandomU64: randomU64,
    },
    'wasi:random/insecure': {
      getInsecureRandomBytes: (len: bigint) => randomFillSync(new Uint8Array(Number(len))),
      getInsecureRandomU64: randomU64,
    },
    'wasi:random/insecure-seed': { insecureSeed: () => [randomU64(), randomU64()] },
    // Sockets are never granted: the interfaces exist so components that import them still load.
    'wasi:sockets/network': { Network: class Network {} },
    'wasi:sockets/instance-network': { instanceNetwork: () => { throw 'access-denied'; } },
  };
}
