#!/usr/bin/env node
// The `trellis` command. It runs the compiled CLI in dist/ (built by `npm run build`, which the
// install step before `npm run up` and `npm test` runs) when dist/ was built from exactly the
// sources on disk; otherwise (no build yet, a source edited since, or TRELLIS_FROM_SOURCE=1) it
// runs the TypeScript sources through tsx, so nobody ever runs stale code. See dist.mjs.
import { pathToFileURL } from 'node:url';
import { cliBundle, staleReason } from './dist.mjs';

const fromDist = process.env.TRELLIS_FROM_SOURCE !== '1' && staleReason() === undefined;
let main;
if (fromDist) ({ main } = await import(pathToFileURL(cliBundle).href));
else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('./index.ts'));
}
// Exit explicitly: a long-running command has already closed what it owns, and a lingering
// handle (a half-closed socket to a dead server) must not keep a stopped process alive.
process.exit(await main(process.argv.slice(2)));
