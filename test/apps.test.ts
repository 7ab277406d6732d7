/**
 * Apps against a real nats-server and a real host, through the real CLI: manifests refused with
 * field-level errors (nothing stored), revisions (created, unchanged, changed, dry run), history
 * and rollback, status and --wait, delete, the ownership rules, and --json outputs that parse.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHost, type Host } from '../host/index.ts';
import { applyManifest, checkManifest, openApps, rollbackApp, type AppStore } from '../lattice/apps/index.ts';
import { createControlClient } from '../lattice/control/index.ts';
import { digestOf, openArtifacts } from '../lattice/state/index.ts';
import { subjects as buildSubjects } from '../lattice/subjects/index.ts';
import { TRELLIS_BIN, exampleActor, startNats, uniqueLattice, type NatsServer } from './harness/index.ts';

const exec = promisify(execFile);

/** A manifest for app `name` with the given actors block (YAML, indented under `actors:`). */
const manifest = (name: string, actors: string) => `apiVersion: trellis.dev/v1
kind: Application
metadata:
  name: ${name}
spec:
  actors:
${actors}`;

const helloActor = (opts: { name?: string; version?: string; replicas?: number | string; prefix?: string } = {}) => `    - name: ${opts.name ?? 'hello'}
      source: ./hello.wasm
      version: ${opts.version ?? '1.0.0'}
      replicas: ${opts.replicas ?? 2}
      routes:
        - prefix: ${opts.prefix ?? '/hello'}
`;

// Each test runs the real CLI several times (a process each): generous bounds for a busy machine.
describe('trellis apply and app commands', { timeout: 180_000 }, () => {
  let nats: NatsServer;
  let host: Host;
  let nc: NatsConnection;
  let apps: AppStore;
  let dir: string;
  const lattice = uniqueLattice('apps');

  /** Run the real CLI; never throws. */
  async function trellis(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await exec(process.execPath, [TRELLIS_BIN, ...args], { env: { ...process.env, TRELLIS_NATS_URL: nats.url, TRELLIS_LATTICE: lattice }, timeout: 60_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }
  /** Run with --json and parse stdout (which must be exactly one JSON value). */
  async function json<T = Record<string, unknown>>(...args: string[]): Promise<{ code: number; value: T }> {
    const r = await trellis(...args, '--json');
    return { code: r.code, value: JSON.parse(r.stdout) as T };
  }
  async function write(file: string, text: string): Promise<string> {
    const full = path.join(dir, file);
    await writeFile(full, text);
    return full;
  }

  beforeAll(async () => {
    nats = await startNats();
    // No controller: these tests write the leader's status documents themselves (the
    // reconciler's own behaviour is tested in reconciler.test.ts).
    host = await startHost({ nats: nats.url, lattice, labels: { cloud: 'aws' }, logLevel: 'silent', controller: false });
    nc = await connect({ servers: nats.url });
    apps = await openApps(nc, buildSubjects(lattice));
    dir = await mkdtemp(path.join(os.tmpdir(), 'apps-test-'));
    await copyFile(exampleActor('hello'), path.join(dir, 'hello.wasm'));
  });
  afterAll(async () => {
    await nc?.close();
    await host?.stop();
    await nats?.stop();
  });

  it('apps - an invalid manifest gets field-level errors with lines, as text and as a --json list, and nothing is stored', async () => {
    const file = await write(
      'bad.yaml',
      manifest(
        'bad',
        `    - name: api
      source: ./missing.wasm
      version: 1.2
      replicas: 4
      spread:
        - name: aws
          weight: 0
      colour: blue
`,
      ),
    );
    const text = await trellis('apply', '-f', file);
    expect(text.code).toBe(1);
    expect(text.stderr).toContain(`${file} has 4 problems:`);
    expect(text.stderr).toContain(`spec.actors[0].source: ${dir}/missing.wasm: no such file`);
    expect(text.stderr).toContain('spec.actors[0].version: must be a semantic version string like 1.2.0, got 1.2 (quote it) (line 9)');
    expect(text.stderr).toContain('spec.actors[0].spread[0].weight: must be a positive integer, got 0 (line 13)');
    expect(text.stderr).toMatch(/spec\.actors\[0\]\.colour: unknown field; known: .* \(line 14\)/);
    expect(text.stderr).toMatch(/\(line 14\) \[TRELLIS_BAD_REQUEST\]\n/);
    // Checked before connecting: an unreachable lattice does not hide the manifest's problems.
    const offline = await trellis('apply', '-f', file, '--nats', 'nats://127.0.0.1:1');
    expect(offline.code).toBe(1);
    expect(offline.stderr).toContain('spec.actors[0].spread[0].weight: must be a positive integer, got 0 (line 13)');
    const { code, value } = await json<{ ok: boolean; error: { code: string; problems: { path: string; message: string; line: number }[] } }>('apply', '-f', file);
    expect(code).toBe(1);
    expect(value.ok).toBe(false);
    expect(value.error.code).toBe('TRELLIS_BAD_REQUEST');
    expect(value.error.problems.map((p) => [p.path, p.line])).toEqual([
      ['spec.actors[0].source', 8],
      ['spec.actors[0].version', 9],
      ['spec.actors[0].spread[0].weight', 13],
      ['spec.actors[0].colour', 14],
    ]);
    expect(await apps.current('bad')).toBeUndefined();
    expect((await json('get', 'apps')).value).toEqual([]);
  });

  it('apps - apply creates revision 1; re-applying unchanged stores nothing; a change is revision 2; a dry run stores nothing', async () => {
    const file = await write('shop.yaml', manifest('shop', helloActor()));
    const first = await json<{ outcome: string; revision: number; changes: { change: string; kind: string; name: string }[]; artifacts: { digest: string }[] }>('apply', '-f', file);
    expect(first.code).toBe(0);
    expect(first.value).toMatchObject({ outcome: 'created', revision: 1 });
    expect(first.value.changes.map((c) => `${c.change} ${c.kind} ${c.name}`)).toEqual(['add actor hello', 'add route /hello']);
    // The component was pushed, content-addressed.
    const digest = first.value.artifacts[0]!.digest;
    expect((await (await openArtifacts(nc, buildSubjects(lattice))).fetch(digest)).length).toBeGreaterThan(1000);

    const again = await trellis('apply', '-f', file);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe('app shop unchanged (revision 1)');
    expect((await apps.history('shop')).map((r) => r.revision)).toEqual([1]);

    await write('shop.yaml', manifest('shop', helloActor({ replicas: 3 })));
    const dry = await trellis('apply', '-f', file, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('app shop: would store revision 2 (was 1) (dry run: nothing stored)\n  ~ actor hello: replicas 2 → 3');
    expect((await apps.history('shop')).map((r) => r.revision)).toEqual([1]);

    const second = await trellis('apply', '-f', file);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe('app shop: stored revision 2 (was 1)\n  ~ actor hello: replicas 2 → 3\n');
    const current = await apps.current('shop');
    expect(current?.value).toMatchObject({ revision: 2, spec: { actors: [{ name: 'hello', replicas: 3, digest }] } });

    const listed = await json<{ name: string; revision: number; phase: string }[]>('get', 'apps');
    expect(listed.value).toEqual([expect.objectContaining({ name: 'shop', revision: 2, phase: 'Deploying' })]);
  });

  it('apps - history lists the revisions; rollback stores an old spec as the next revision; --to picks one', async () => {
    const history = await json<{ revision: number; specHash: string }[]>('app', 'history', 'shop');
    expect(history.value.map((r) => r.revision)).toEqual([1, 2]);
    const back = await json<{ outcome: string; revision: number; to: number }>('app', 'rollback', 'shop');
    expect(back.value).toMatchObject({ outcome: 'rolled-back', revision: 3, to: 1 });
    expect((await apps.current('shop'))?.value.specHash).toBe(history.value[0]!.specHash);
    const to2 = await trellis('app', 'rollback', 'shop', '--to', '2');
    expect(to2.stdout).toContain('app shop: revision 4 holds the spec of revision 2 (was 3)\n  ~ actor hello: replicas 2 → 3');
    const missing = await trellis('app', 'rollback', 'shop', '--to', '99');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('app shop has no revision 99 (kept: 1, 2, 3, 4) [TRELLIS_NOT_FOUND]');
    const table = await trellis('app', 'history', 'shop');
    expect(table.stdout).toMatch(/^REVISION\s+CREATED\s+ACTORS\s+SPEC\n1 /);
    expect(table.stdout).toMatch(/\n4 \*\s/);
  });

  it('apps - two applies racing from the same read: one wins, the other is TRELLIS_CONFLICT', async () => {
    const current = await apps.current('shop');
    const spec = { ...current!.value.spec, actors: current!.value.spec.actors.map((a) => ({ ...a, replicas: 7 })) };
    await apps.putNext(spec, current);
    await expect(apps.putNext({ ...spec, providers: [] }, current)).rejects.toMatchObject({ code: 'TRELLIS_CONFLICT' });
    const back = await apps.current('shop');
    await apps.putNext(current!.value.spec, back);
  });

  it('apps - status: Deploying until the controller reports (desired from the spec: revision 4 holds replicas 3); --wait exits non-zero on time-out and 0 once Deployed', async () => {
    const revision = (await apps.current('shop'))!.value.revision;
    const status = await json<{ name: string; revision: number; phase: string; actors: { name: string; version: string; desired: number; running: number; spreads: { name: string; desired: number; running: number }[] }[] }>('app', 'status', 'shop');
    expect(status.code).toBe(0);
    expect(status.value).toMatchObject({ name: 'shop', revision, phase: 'Deploying', actors: [{ name: 'hello', version: '1.0.0', desired: 3, running: 0, spreads: [{ name: 'default', desired: 3, running: 0 }] }] });
    const timedOut = await json<{ phase: string }>('app', 'status', 'shop', '--wait', '--timeout', '1s');
    expect(timedOut.code).toBe(1);
    expect(timedOut.value.phase).toBe('Deploying');
    // Write what the leader writes once the revision runs.
    await apps.statuses.put({ name: 'shop', revision, phase: 'Deployed', actors: [{ name: 'hello', version: '1.0.0', desired: 2, running: 2, spreads: [{ name: 'default', desired: 2, running: 2 }] }], reasons: [], observedAt: new Date().toISOString() });
    const deployed = await trellis('app', 'status', 'shop', '--wait', '--timeout', '20s');
    expect(deployed.code).toBe(0);
    expect(deployed.stdout).toMatch(/^app shop {2}revision \d+ {2}Deployed\n\nACTOR\s+VERSION\s+DESIRED\s+RUNNING\s+SPREADS\nhello\s+1\.0\.0\s+2\s+2\s+default 2\/2/);
    // A new revision is not Deployed by the old revision's status: apply --wait times out and says so.
    await write('shop.yaml', manifest('shop', helloActor({ replicas: 4 })));
    const waited = await json<{ revision: number; deployed: boolean; status: { phase: string; revision: number } }>('apply', '-f', path.join(dir, 'shop.yaml'), '--wait', '--timeout', '1s');
    expect(waited.code).toBe(1);
    expect(waited.value).toMatchObject({ revision: revision + 1, deployed: false, status: { phase: 'Deploying', revision: revision + 1 } });
  });

  it('apps - ownership: an actor of another app, a prefix another app routes, a hand-started actor at another version are refused; nothing is stored', async () => {
    // Another component (counter's), so the test can see it was not pushed for a refused apply.
    await copyFile(exampleActor('counter'), path.join(dir, 'counter.wasm'));
    const sameActor = await trellis('apply', '-f', await write('blog.yaml', manifest('blog', helloActor({ prefix: '/blog' }).replace('./hello.wasm', './counter.wasm'))));
    expect(sameActor.code).toBe(1);
    expect(sameActor.stderr).toContain('actor hello belongs to app shop: an actor name belongs to one app');
    expect(sameActor.stderr).toContain('[TRELLIS_CONFLICT]');
    const counterDigest = digestOf(new Uint8Array(await readFile(path.join(dir, 'counter.wasm'))));
    await expect((await openArtifacts(nc, buildSubjects(lattice))).fetch(counterDigest)).rejects.toMatchObject({ code: 'TRELLIS_DIGEST_NOT_FOUND' });
    const sameRoute = await json<{ error: { code: string; message: string } }>('apply', '-f', await write('blog2.yaml', manifest('blog', helloActor({ name: 'blog' }))));
    expect(sameRoute.code).toBe(1);
    expect(sameRoute.value.error).toMatchObject({ code: 'TRELLIS_CONFLICT', message: expect.stringContaining('route /hello is routed by app shop') });

    const digest = (await apps.current('shop'))!.value.spec.actors[0]!.digest;
    await createControlClient(nc, { lattice }).startActor(host.id, { actor: 'legacy', version: '0.9.0', digest, count: 1 });
    const byHand = await trellis('apply', '-f', await write('legacy.yaml', manifest('legacy', helloActor({ name: 'legacy', prefix: '/legacy' }))));
    expect(byHand.code).toBe(1);
    expect(byHand.stderr).toContain(`actor legacy@0.9.0 runs started by hand on ${host.name}, and the app wants 1.0.0`);
    // At the version the hand-started instances run, the app is accepted (and leaves them alone).
    const sameVersion = await trellis('apply', '-f', await write('legacy.yaml', manifest('legacy', helloActor({ name: 'legacy', version: '0.9.0', prefix: '/legacy' }))));
    expect(sameVersion.code).toBe(0);
    expect(await apps.current('blog')).toBeUndefined();
  });

  it('apps - a rollback is held to the ownership rules too: a prefix taken since is refused', async () => {
    const client = createControlClient(nc, { lattice });
    const apply = async (name: string, actors: string) => applyManifest(client, await checkManifest(manifest(name, actors), dir));
    expect((await apply('wiki', helloActor({ name: 'wiki', prefix: '/wiki' }))).revision).toBe(1);
    expect((await apply('wiki', helloActor({ name: 'wiki', prefix: '/w' }))).revision).toBe(2);
    expect((await apply('forum', helloActor({ name: 'forum', prefix: '/wiki' }))).outcome).toBe('created');
    await expect(rollbackApp(client, 'wiki')).rejects.toMatchObject({ code: 'TRELLIS_CONFLICT', message: expect.stringContaining('route /wiki is routed by app forum') });
    expect((await apps.current('wiki'))?.value.revision).toBe(2);
  });

  it('apps - delete app marks it deleting; it then shows Deleting, refuses applies and rollbacks, and a second delete says so', async () => {
    const deleted = await json<{ app: string; deleting: boolean; changed: boolean }>('delete', 'app', 'legacy');
    expect(deleted.value).toMatchObject({ app: 'legacy', deleting: true, changed: true });
    expect((await apps.current('legacy'))?.value.deleting).toBe(true);
    expect((await json<{ phase: string }>('app', 'status', 'legacy')).value.phase).toBe('Deleting');
    const listed = await json<{ name: string; phase: string; deleting?: boolean }[]>('get', 'apps');
    expect(listed.value.find((a) => a.name === 'legacy')).toMatchObject({ phase: 'Deleting', deleting: true });
    const apply = await trellis('apply', '-f', path.join(dir, 'legacy.yaml'));
    expect(apply.code).toBe(1);
    expect(apply.stderr).toContain('app legacy is being deleted');
    const rollback = await trellis('app', 'rollback', 'legacy');
    expect(rollback.code).toBe(1);
    expect(rollback.stderr).toContain('app legacy is being deleted [TRELLIS_CONFLICT]');
    expect((await trellis('delete', 'app', 'legacy')).stdout.trim()).toBe('app legacy is already being deleted');
    const none = await trellis('delete', 'app', 'nosuch');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('[TRELLIS_NOT_FOUND]');
    // Once the controller has removed it (and its documents), the name is free again, and its
    // revision numbers go on from the last one kept, never reusing an old owner revision.
    await apps.revisions.delete('legacy');
    const again = await json<{ outcome: string; revision: number }>('apply', '-f', path.join(dir, 'legacy.yaml'));
    expect(again.value).toMatchObject({ outcome: 'created', revision: 2 });
    // The hand-started instances are no business of the app's documents.
    expect((await host.inventory()).actors.some((a) => a.name === 'legacy' && a.version === '0.9.0')).toBe(true);
  });
});
