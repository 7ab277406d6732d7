#!/usr/bin/env node
// The `trellis` command. Sources are TypeScript run through tsx's loader, so there is no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./index.ts');
// Exit explicitly: a long-running command has already closed what it owns, and a lingering
// handle (a half-closed socket to a dead server) must not keep a stopped process alive.
process.exit(await main(process.argv.slice(2)));
