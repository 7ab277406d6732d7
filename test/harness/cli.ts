/** Run the `trellis` CLI to completion as a child process (a real process, as users run it). */
import { execFile } from 'node:child_process';
import { TRELLIS_BIN } from './index.ts';

/** Exit code, stdout and stderr of `trellis <args>`. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TRELLIS_BIN, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
