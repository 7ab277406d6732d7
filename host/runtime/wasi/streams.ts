/**
 * wasi:io: errors, pollables and byte streams. This thread runs one guest and every host call
 * is synchronous, so a pollable that is not ready blocks the thread until it is.
 */

class IoError {
  constructor(readonly message: string) {}
  toDebugString(): string {
    return this.message;
  }
}

/** A pollable: `ready` tells, `block` waits. */
export class Pollable {
  constructor(
    readonly isReady: () => boolean = () => true,
    readonly wait: () => void = () => {},
  ) {}
  ready(): boolean {
    return this.isReady();
  }
  block(): void {
    if (!this.isReady()) this.wait();
  }
}

function poll(list: Pollable[]): Uint32Array {
  for (;;) {
    const ready: number[] = [];
    list.forEach((p, i) => p.ready() && ready.push(i));
    if (ready.length > 0) return Uint32Array.from(ready);
    // Nothing ready: block on one; the first is as good as any since all are synchronous.
    list[0]!.block();
  }
}

/** The stream-error a read past the end or a write after close throws. */
export const closed = { tag: 'closed' } as const;

/** Reads from a pull function; `undefined` from it means end of stream. */
export class InputStream {
  #pending: Uint8Array | undefined;
  #done = false;
  constructor(readonly pull: (max: number) => Uint8Array | undefined) {}
  read(len: bigint): Uint8Array {
    if (this.#pending === undefined && !this.#done) {
      this.#pending = this.pull(Number(len));
      if (this.#pending === undefined) this.#done = true;
    }
    if (this.#pending === undefined) throw closed;
    const n = Math.min(Number(len), this.#pending.length);
    const out = this.#pending.subarray(0, n);
    this.#pending = n < this.#pending.length ? this.#pending.subarray(n) : undefined;
    return out;
  }
  blockingRead(len: bigint): Uint8Array {
    return this.read(len);
  }
  skip(len: bigint): bigint {
    return BigInt(this.read(len).length);
  }
  blockingSkip(len: bigint): bigint {
    return this.skip(len);
  }
  subscribe(): Pollable {
    return new Pollable();
  }
}

/** Fully-buffered input. */
export function bytesStream(bytes: Uint8Array): InputStream {
  let offset = 0;
  return new InputStream((max) => {
    if (offset >= bytes.length) return undefined;
    const out = bytes.subarray(offset, offset + max);
    offset += out.length;
    return out;
  });
}

/** Writes to a push function that may throw a stream error. */
export class OutputStream {
  constructor(readonly push: (bytes: Uint8Array) => void) {}
  checkWrite(): bigint {
    return 1n << 20n;
  }
  write(buf: Uint8Array): void {
    this.push(buf.slice());
  }
  blockingWriteAndFlush(buf: Uint8Array): void {
    this.write(buf);
  }
  flush(): void {}
  blockingFlush(): void {}
  writeZeroes(len: bigint): void {
    this.push(new Uint8Array(Number(len)));
  }
  blockingWriteZeroesAndFlush(len: bigint): void {
    this.writeZeroes(len);
  }
  splice(src: InputStream, len: bigint): bigint {
    const chunk = src.read(len);
    this.push(chunk.slice());
    return BigInt(chunk.length);
  }
  blockingSplice(src: InputStream, len: bigint): bigint {
    return this.splice(src, len);
  }
  subscribe(): Pollable {
    return new Pollable();
  }
}

/** The wasi:io interfaces. */
export const ioImports = {
  'wasi:io/error': { Error: IoError },
  'wasi:io/poll': { Pollable, poll },
  'wasi:io/streams': { InputStream, OutputStream },
};
