#!/usr/bin/env node
// Installs what Trellis needs when it is missing: the npm dependencies, nats-server, and with
// `--toolchain` what the tests need besides: the C → wasm32 toolchain for the example actors
// and docker-compose, which validates compose.yaml offline (no Docker engine needed). Runs before
// `npm run up` and `npm test`, so a fresh Debian/Ubuntu machine needs nothing by hand.
// Plain Node with no dependencies, because it runs before they are installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const lock = `${root}/package-lock.json`;
const installed = `${root}/node_modules/.package-lock.json`;
const stale = !existsSync(installed) || (existsSync(lock) && statSync(installed).mtimeMs < statSync(lock).mtimeMs);
if (stale && lstatSync(`${root}/node_modules`, { throwIfNoEntry: false })?.isSymbolicLink()) {
  // A linked node_modules is another checkout's install: `npm ci` would empty it for everyone.
  console.error('trellis: node_modules is a symbolic link and older than package-lock.json; not reinstalling through it');
} else if (stale) {
  // `npm ci` installs exactly what the lock says (the same tree CI and the image get); without a
  // lock there is nothing to be exact about, so `npm install` makes one.
  const args = existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'];
  console.error(`trellis: installing npm dependencies (npm ${args[0]})...`);
  execFileSync('npm', args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}
// The compiled CLI in dist/ (host/cli/build-dist.mjs; a no-op when it is current).
execFileSync(process.execPath, [`${root}/host/cli/build-dist.mjs`], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

const wantToolchain = process.argv.includes('--toolchain');

function onPath(bin) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin'];
  return dirs.some((d) => d && existsSync(`${d}/${bin}`));
}

const missing = [];
if (!onPath('nats-server') && !process.env.NATS_SERVER_BIN) missing.push('nats-server');
if (wantToolchain) {
  if (!onPath('clang')) missing.push('clang');
  if (!onPath('wasm-ld')) missing.push('lld');
  if (!onPath('docker-compose')) missing.push('docker-compose');
  // The dashboard's browser tests drive a real headless Chromium (playwright-core has no browser).
  if (!onPath('chromium')) missing.push('chromium');
  // The bench drives its HTTP rows with wrk when present; cheap enough to always have for tests.
  if (!onPath('wrk')) missing.push('wrk');
}
if (missing.length === 0) process.exit(0);

const hasApt = onPath('apt-get');
if (!hasApt) {
  console.error(`trellis: missing ${missing.join(', ')} and this system has no apt-get.`);
  console.error('  nats-server: https://docs.nats.io/running-a-nats-service/introduction/installation (e.g. `brew install nats-server`),');
  console.error('               then put it on PATH or set NATS_SERVER_BIN=/path/to/nats-server');
  if (wantToolchain) console.error('  tests:       clang and wasm-ld (LLVM) with a wasm32 target; docker-compose (1.29+) to validate compose.yaml; chromium for the dashboard tests; wrk for the bench');
  process.exit(1);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const sudo = isRoot ? [] : ['sudo'];
if (!isRoot && spawnSync('sudo', ['-n', 'true']).status !== 0) {
  console.error(`trellis: missing ${missing.join(', ')}; install with: sudo apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
console.error(`trellis: installing ${missing.join(', ')} with apt-get...`);
const run = (args) => execFileSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
run(['apt-get', 'update', '-qq']);
run(['apt-get', 'install', '-y', '-qq', ...missing]);
