/**
 * The dashboard in a real browser: a real nats-server, two host processes labelled cloud=aws and
 * cloud=gcp, a gateway process and `trellis dashboard` as a process, opened in headless Chromium
 * (Debian's, driven by playwright-core). The page must group hosts by cloud, show actors and
 * versions, pick up a new host and version, a weight change, a new event, an app and a canary's
 * step, and count real HTTP requests. Screenshots go to test/artifacts/ (git-ignored); with
 * TRELLIS_DOCS_SCREENSHOT=1 the full-page one also replaces docs/dashboard.png.
 *
 * Bounds are generous (a busy 2-core machine): the page updates within about 100 ms of a NATS
 * message, but a host process may take seconds to answer on such a machine.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY_DEFAULTS } from '../lattice/apps/index.ts';
import { connectControl, type ControlClient } from '../lattice/control/index.ts';
import { startDashboard, type Dashboard } from '../lattice/dashboard/index.ts';
import { openHttpRoutes } from '../lattice/http-routes/index.ts';
import { openKv } from '../lattice/state/index.ts';
import { subjects } from '../lattice/subjects/index.ts';
import { openWeights, type WeightStore } from '../lattice/weights/index.ts';
import { encodeJson, type CanaryState } from '../lattice/wire/index.ts';
import { actorSpec, httpLoad, openAppDocs, putRevision } from './harness/apps.ts';
import { deployExample, spawnHost, spawnTrellis, startNats, uniqueLattice, waitFor, type HostProcess, type NatsServer, type TrellisProcess } from './harness/index.ts';

const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const DOCS_SCREENSHOT = fileURLToPath(new URL('../docs/dashboard.png', import.meta.url));
/** Debian's chromium (what ensure-tools installs), or another Chromium on PATH, or CHROMIUM_PATH. */
const CHROMIUM =
  process.env.CHROMIUM_PATH ??
  ['chromium', 'chromium-browser', 'google-chrome']
    .flatMap((name) => (process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, name)))
    .find((file) => existsSync(file)) ??
  '/usr/bin/chromium';
/** What "appears" may take on a busy machine; the page itself updates within ~100 ms of NATS. */
const SHOWS_MS = 15_000;

describe('dashboard in headless Chromium against a real lattice', () => {
  let nats: NatsServer;
  let aws: HostProcess;
  let gcp: HostProcess;
  const extraHosts: HostProcess[] = [];
  let gateway: TrellisProcess;
  let dashboardProcess: TrellisProcess;
  let client: ControlClient;
  let weights: WeightStore;
  let browser: Browser;
  let page: Page;
  let gatewayUrl: string;
  let digest: string;
  const lattice = uniqueLattice('dash');
  let env: NodeJS.ProcessEnv;

  const shot = async (name: string, p: Page = page) => {
    await mkdir(ARTIFACTS, { recursive: true });
    await p.screenshot({ path: path.join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true });
  };

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    nats = await startNats();
    env = { XDG_STATE_HOME: await mkdtemp(path.join(os.tmpdir(), 'trellis-state-')) };
    [aws, gcp] = await Promise.all([
      spawnHost({ nats: nats.url, lattice, env, name: 'aws-use1-a', labels: { cloud: 'aws', region: 'us-east-1' }, heartbeatMs: 1000 }),
      spawnHost({ nats: nats.url, lattice, env, name: 'gcp-euw1-a', labels: { cloud: 'gcp', region: 'europe-west1' }, heartbeatMs: 1000 }),
    ]);
    client = await connectControl({ nats: nats.url, lattice, timeoutMs: 60_000 });
    weights = await openWeights(client.nc, client.subjects);
    gateway = await spawnTrellis(['gateway', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0', '--deadline-ms', '5000'], 'gateway ready');
    gatewayUrl = gateway.ready.url as string;
    digest = await deployExample(client, 'echo-c', [aws], { actor: 'echo', version: '1.0.0', count: 2 });
    await deployExample(client, 'echo-c', [gcp], { actor: 'echo', version: '1.1.0' });
    await (await openHttpRoutes(client.nc, client.subjects)).add('/echo', 'echo');
    await weights.set('echo', { '1.0.0': 90, '1.1.0': 10 });
    await waitFor(async () => (await fetch(`${gatewayUrl}/echo`)).status === 200, { timeoutMs: 30_000, what: 'gateway route to echo' });
    dashboardProcess = await spawnTrellis(['dashboard', '--nats', nats.url, '--lattice', lattice, '--listen', '127.0.0.1:0'], 'dashboard ready', env);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 }, colorScheme: 'dark' });
    await page.goto(dashboardProcess.ready.url as string);
    await page.waitForSelector('body[data-ready="true"]', { timeout: SHOWS_MS });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await dashboardProcess?.[Symbol.asyncDispose]();
    await gateway?.[Symbol.asyncDispose]();
    await Promise.all([aws, gcp, ...extraHosts].map((h) => h?.[Symbol.asyncDispose]()));
    await client?.close();
    await nats?.stop();
  });

  it('dashboard - `trellis dashboard` serves the page and its state; other methods and paths are refused', async () => {
    const base = dashboardProcess.ready.url as string;
    const html = await fetch(base);
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(html.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await html.text()).toContain('dashboard.js');
    const state = (await (await fetch(new URL('api/state', base))).json()) as { view: { lattice: string; hosts: { name: string }[] } };
    expect(state.view.lattice).toBe(lattice);
    expect(state.view.hosts.map((h) => h.name).sort()).toEqual(['aws-use1-a', 'gcp-euw1-a']);
    expect((await fetch(new URL('nope.js', base))).status).toBe(404);
    expect((await fetch(base, { method: 'POST' })).status).toBe(405);
  });

  it('dashboard - hosts are grouped by cloud with their actors and versions', async () => {
    const awsCard = page.locator(`[data-group="aws"] [data-host-id="${aws.id}"]`);
    const gcpCard = page.locator(`[data-group="gcp"] [data-host-id="${gcp.id}"]`);
    await awsCard.waitFor({ timeout: SHOWS_MS });
    await gcpCard.waitFor({ timeout: SHOWS_MS });
    expect(await page.locator('[data-group]').evaluateAll((els) => els.map((e) => e.getAttribute('data-group')))).toEqual(['aws', 'gcp']);
    await expect.poll(() => awsCard.getAttribute('data-health'), { timeout: SHOWS_MS }).toBe('ok');
    await awsCard.locator('[data-actor="echo"][data-version="1.0.0"]').waitFor({ timeout: SHOWS_MS });
    await gcpCard.locator('[data-actor="echo"][data-version="1.1.0"]').waitFor({ timeout: SHOWS_MS });
    expect(await awsCard.locator('[data-actor="echo"]').innerText()).toContain('×2');
    expect(await awsCard.locator('[data-actor="echo"][data-version="1.1.0"]').count()).toBe(0);
    // Another label regroups the same cards.
    await page.selectOption('#group-by', 'region');
    await page.locator(`[data-group="us-east-1"] [data-host-id="${aws.id}"]`).waitFor({ timeout: SHOWS_MS });
    await page.locator(`[data-group="europe-west1"] [data-host-id="${gcp.id}"]`).waitFor({ timeout: SHOWS_MS });
    await page.selectOption('#group-by', 'cloud');
    await page.locator(`[data-group="aws"] [data-host-id="${aws.id}"]`).waitFor({ timeout: SHOWS_MS });
    await shot('hosts');
    await page.emulateMedia({ colorScheme: 'light' });
    await shot('hosts-light');
    await page.emulateMedia({ colorScheme: 'dark' });
  });

  it('dashboard - a newly started host and a new actor version show up', async () => {
    const third = await spawnHost({ nats: nats.url, lattice, env, name: 'aws-use1-b', labels: { cloud: 'aws', region: 'us-east-1' }, heartbeatMs: 1000 });
    extraHosts.push(third);
    const started = Date.now();
    const card = page.locator(`[data-group="aws"] [data-host-id="${third.id}"]`);
    await card.waitFor({ timeout: SHOWS_MS });
    console.log(`dashboard: new host shown ${Date.now() - started} ms after it logged "host started"`);
    await deployExample(client, 'echo-c', [third], { actor: 'echo', version: '1.2.0' });
    await card.locator('[data-actor="echo"][data-version="1.2.0"]').waitFor({ timeout: SHOWS_MS });
    expect(await page.locator('[data-group="aws"] [data-host-id]').count()).toBe(2);
  });

  it('dashboard - a weight change shows in the split', async () => {
    const row = page.locator('[data-weights-actor="echo"]');
    await expect.poll(() => row.getAttribute('data-weights'), { timeout: SHOWS_MS }).toBe('1.0.0=90 1.1.0=10');
    const started = Date.now();
    await weights.set('echo', { '1.0.0': 50, '1.1.0': 30, '1.2.0': 20 });
    await expect.poll(() => row.getAttribute('data-weights'), { timeout: SHOWS_MS, interval: 25 }).toBe('1.0.0=50 1.1.0=30 1.2.0=20');
    console.log(`dashboard: weight change shown ${Date.now() - started} ms after the write`);
    expect(await row.locator('.bar div').count()).toBe(3);
  });

  it('dashboard - a new lattice event shows in the events list', async () => {
    const before = await page.locator('[data-event-kind="labels_changed"]').count();
    await client.putLabel(gcp.id, 'tier', 'edge');
    await expect.poll(() => page.locator('[data-event-kind="labels_changed"]').count(), { timeout: SHOWS_MS }).toBeGreaterThan(before);
    expect(await page.locator('[data-event-kind="labels_changed"]').first().innerText()).toContain('tier=edge');
    // The card shows the new label too.
    await page.locator(`[data-host-id="${gcp.id}"] .chip`, { hasText: 'tier=edge' }).waitFor({ timeout: SHOWS_MS });
  });

  it('dashboard - an app shows desired against running', { timeout: 150_000 }, async () => {
    const docs = await openAppDocs(client.nc, client.subjects);
    // The echo component (small, C): the controller's placement is what this waits for, not a compile.
    await putRevision(docs, { name: 'shop', actors: [actorSpec('greeter', '1.0.0', digest, 2)], providers: [] });
    const app = page.locator('[data-app="shop"]');
    await app.waitFor({ timeout: SHOWS_MS });
    // Placing takes the controller a few seconds, and on a busy machine much longer.
    await expect.poll(() => app.getAttribute('data-phase'), { timeout: 120_000 }).toBe('Deployed');
    expect(await app.locator('[data-app-actor="greeter@1.0.0"] .c').innerText()).toBe('2/2');
  });

  it('dashboard - live request counters move under real HTTP traffic', async () => {
    const total = page.locator('[data-total="echo@1.0.0"]');
    const load = httpLoad(`${gatewayUrl}/echo`, 4);
    try {
      await total.waitFor({ timeout: SHOWS_MS });
      const first = await waitFor(async () => Number(await total.getAttribute('data-requests')) || undefined, { timeoutMs: SHOWS_MS, what: 'a request count' });
      await expect.poll(async () => Number(await total.getAttribute('data-requests')), { timeout: SHOWS_MS }).toBeGreaterThan(first);
      // Requests/s shows above zero for the version, and on the host that served it.
      await expect.poll(async () => Number(await page.locator('[data-traffic="echo@1.0.0"] ~ .metric .rps').first().innerText()), { timeout: SHOWS_MS }).toBeGreaterThan(0);
      await expect.poll(async () => Number(await page.locator(`[data-host-id="${aws.id}"] .load`).innerText()), { timeout: SHOWS_MS }).toBeGreaterThan(0);
      // A few seconds of chart for the screenshot.
      await new Promise((r) => setTimeout(r, 4000));
    } finally {
      await load.stop();
    }
    expect(load.ok).toBeGreaterThan(0);
    await shot('traffic');
    // One column on a narrow window (a laptop split screen, a tablet).
    await page.setViewportSize({ width: 820, height: 1000 });
    await shot('narrow');
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  it('dashboard - a canary state in KV shows its step and decision history', { timeout: 180_000 }, async () => {
    // A canary state document as the canary controller writes it (the controller itself is
    // tested in canary-controller.test.ts): the page must show what the document says.
    const bucket = subjects(lattice).buckets.canaries;
    const kv = await openKv(client.nc, bucket);
    await using inProcess: Dashboard = await startDashboard({ nc: client.nc, lattice, listen: '127.0.0.1:0' });
    const p = await browser.newPage({ viewport: { width: 1440, height: 1000 }, colorScheme: 'dark' });
    try {
      await p.goto(inProcess.url);
      await p.waitForSelector('body[data-ready="true"]', { timeout: SHOWS_MS });
      expect(await p.locator('#canaries-panel').isHidden()).toBe(true);
      const t = (s: number) => new Date(Date.now() - s * 1000).toISOString();
      const state: CanaryState = {
        actor: 'echo', stable: '1.0.0', canary: '1.1.0', phase: 'Progressing', step: 1, steps: [10, 30, 50, 100], weight: { set: 10 },
        failedChecks: 0, failureLimit: 2, spec: { ...CANARY_DEFAULTS, steps: [10, 30, 50, 100] }, generation: 1,
        startedAt: t(90), stepStartedAt: t(60), windowStartedAt: t(60),
        history: [
          { at: t(90), decision: 'started', reason: 'canary 1.1.0 against stable 1.0.0', step: 0, weight: 0 },
          { at: t(60), decision: 'step', reason: 'canary serving: step 1 at 10%', step: 1, weight: 10 },
        ],
      };
      await kv.put('echo', encodeJson(state));
      const card = p.locator('[data-canary="echo"]');
      await expect.poll(() => card.getAttribute('data-step'), { timeout: SHOWS_MS }).toBe('1');
      await kv.put('echo', encodeJson({ ...state, step: 2, weight: { set: 30 }, stepStartedAt: t(0), history: [...state.history, { at: t(0), decision: 'step', reason: 'success 100% >= 99%, p99 2 ms <= 500 ms: step 2 at 30%', numbers: { successRate: 1, p99Ms: 2 }, step: 2, weight: 30 }] }));
      await expect.poll(() => card.getAttribute('data-step'), { timeout: SHOWS_MS }).toBe('2');
      expect(await card.locator('.step.done').count()).toBe(1);
      expect(await card.locator('.step.now').innerText()).toBe('30%');
      expect(await card.locator('.history li').first().innerText()).toContain('step 2 at 30%');
      expect(await card.getAttribute('data-phase')).toBe('Progressing');
      await shot('canary', p);
      if (process.env.TRELLIS_DOCS_SCREENSHOT === '1') {
        // The README's picture: a minute of varying traffic and a few events on this page.
        for (const concurrency of [2, 6, 3]) {
          const load = httpLoad(`${gatewayUrl}/echo`, concurrency);
          await new Promise((r) => setTimeout(r, 20_000));
          await load.stop();
        }
        const load = httpLoad(`${gatewayUrl}/echo`, 4);
        await client.putLabel(aws.id, 'tier', 'core');
        await client.scaleActor(extraHosts[0]!.id, { actor: 'echo', version: '1.2.0', count: 2 });
        await new Promise((r) => setTimeout(r, 3000));
        await p.screenshot({ path: path.join(ARTIFACTS, 'dashboard-docs.png'), fullPage: false });
        await load.stop();
        await mkdir(path.dirname(DOCS_SCREENSHOT), { recursive: true });
        await copyFile(path.join(ARTIFACTS, 'dashboard-docs.png'), DOCS_SCREENSHOT);
      }
    } finally {
      await p.close();
    }
  });

  it('dashboard - a stopped host shows stopped and a killed one dead, greyed out', async () => {
    const [leaving, killed] = await Promise.all([
      spawnHost({ nats: nats.url, lattice, env, name: 'gcp-euw1-b', labels: { cloud: 'gcp' }, heartbeatMs: 1000 }),
      spawnHost({ nats: nats.url, lattice, env, name: 'gcp-euw1-c', labels: { cloud: 'gcp' }, heartbeatMs: 1000 }),
    ]);
    extraHosts.push(leaving, killed);
    const cardOf = (h: HostProcess) => page.locator(`[data-group="gcp"] [data-host-id="${h.id}"]`);
    await expect.poll(() => cardOf(leaving).getAttribute('data-health'), { timeout: SHOWS_MS }).toBe('ok');
    await expect.poll(() => cardOf(killed).getAttribute('data-health'), { timeout: SHOWS_MS }).toBe('ok');
    await leaving[Symbol.asyncDispose]();
    killed.kill('SIGKILL');
    await expect.poll(() => cardOf(leaving).getAttribute('data-health'), { timeout: SHOWS_MS }).toBe('stopped');
    // Dead after 3 missed beats (3 s), however busy the machine is: the dashboard's own clock counts them.
    await expect.poll(() => cardOf(killed).getAttribute('data-health'), { timeout: SHOWS_MS }).toBe('dead');
    expect(await cardOf(killed).locator('.reason').innerText()).toMatch(/^no beat for \d+ s$/);
    expect(await page.locator('[data-event-kind="host_stopped"]').count()).toBeGreaterThan(0);
    await shot('gone');
  });
});
