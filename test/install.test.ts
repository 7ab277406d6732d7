/**
 * Installation: what CI (`.ci/run`) and the image (`host/Dockerfile`) run first is `npm ci`, which
 * refuses a lock file out of sync with package.json. npm 11 counts other platforms' optional
 * binaries as part of the lock, so a lock written on one machine without them breaks every clean
 * install. Checked offline and without installing: `--dry-run` against an empty cache.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');

describe('installation', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-install-'));
    for (const file of ['package.json', 'package-lock.json']) await copyFile(path.join(root, file), path.join(dir, file));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const [what, extra] of [['npm ci (CI)', []], ['npm ci --omit=dev (the image)', ['--omit=dev']]] as const) {
    it(`install - ${what} accepts the committed lock file on a clean machine`, async () => {
      const args = ['ci', ...extra, '--dry-run', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--cache', path.join(dir, 'cache')];
      const result = await run('npm', args, { cwd: dir, timeout: 60_000 }).then(
        () => 'ok',
        (err: { stderr?: string; message: string }) => (err.stderr ?? err.message).split('\n').slice(0, 8).join('\n'),
      );
      expect(result).toBe('ok');
    });
  }
});
