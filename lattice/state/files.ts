/** Reading the files a user names (components, manifests, request bodies), with errors that name the file. */
import { readFile } from 'node:fs/promises';
import { TrellisError } from '../errors/index.ts';

/** The bytes of a file given by the user; TRELLIS_FILE_UNREADABLE naming it otherwise. */
export async function readUserFile(file: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    throw new TrellisError('TRELLIS_FILE_UNREADABLE', `cannot read ${what} ${file}: ${reason}`, { cause: err });
  }
}

/** Does `bytes` start like a WebAssembly binary (module or component)? */
export function looksLikeWasm(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && bytes[0] === 0x00 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
}
