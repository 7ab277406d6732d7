/** Reading the files a command names, with errors that name the file and the flag. */
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
