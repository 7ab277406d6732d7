/**
 * Reading a manifest from disk: the text, then the files it names (components must exist, policy
 * files must compile), every problem gathered with its path and line before anything is refused.
 */
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { loadPolicyFile } from '../policy/index.ts';
import { readUserFile } from '../cli/files.ts';
import { parseManifest, type Manifest } from './manifest.ts';
import { ManifestError } from './problems.ts';

/**
 * Check manifest text and the files it names (relative to `dir`); throws one ManifestError
 * (TRELLIS_BAD_REQUEST) listing every problem. `source` names the manifest in the message.
 */
export async function checkManifest(text: string, dir: string, source = 'the manifest'): Promise<Manifest> {
  const { manifest, problems, files } = parseManifest(text, dir);
  const policies = new Map<string, Awaited<ReturnType<typeof loadPolicyFile>>>();
  for (const ref of files) {
    const line = problems.lineOf(ref.path);
    if (ref.kind === 'source') {
      const found = await componentProblem(ref.file);
      if (found) problems.add(ref.path, `${ref.file}: ${found} (give a component file, or sha256:<digest> of one already pushed)`, { line });
    } else {
      try {
        policies.set(ref.file, await loadPolicyFile(ref.file));
      } catch (err) {
        // A policy file's own problems are in that file: name it, at the manifest line naming it.
        const message = (err as Error).message;
        problems.add(ref.path, message.includes(ref.file) ? message : `${ref.file}: ${message}`, { line });
      }
    }
  }
  if (problems.list.length > 0 || !manifest) throw new ManifestError(source, problems.sorted());
  for (const actor of manifest.actors) if (actor.policyFile) actor.policy = policies.get(actor.policyFile);
  return manifest;
}

/** Why a file cannot be a component (missing, not a file, not WebAssembly), or undefined. */
async function componentProblem(file: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
    if (!(await handle.stat()).isFile()) return 'is not a file';
    const head = new Uint8Array(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && head[0] === 0x00 && head[1] === 0x61 && head[2] === 0x73 && head[3] === 0x6d ? undefined : 'is not a WebAssembly file';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is not a file' : (code ?? (err as Error).message);
  } finally {
    await handle?.close();
  }
}

/** Read and check a manifest file; its relative paths resolve from its own folder. */
export async function loadManifest(file: string): Promise<Manifest> {
  const text = new TextDecoder().decode(await readUserFile(file, 'manifest'));
  return checkManifest(text, dirname(resolve(file)), file);
}
