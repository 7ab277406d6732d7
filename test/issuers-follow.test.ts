/** Following the lattice's allowed issuers over a real nats-server: it fails closed when the watch dies. */
import { connect } from 'nats';
import { createAccount } from 'nkeys.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIssuers, type IssuerState } from '../lattice/signing/index.ts';
import { subjects as buildSubjects } from '../lattice/subjects/index.ts';
import { startNats, uniqueLattice, waitFor, type NatsServer } from './harness/index.ts';

describe('issuers follow', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it('issuers - a watch that ends reports the list unreadable instead of leaving it stale', async () => {
    const subjects = buildSubjects(uniqueLattice('follow'));
    const admin = await connect({ servers: nats.url });
    const follower = await connect({ servers: nats.url });
    const issuer = createAccount().getPublicKey();
    try {
      await (await openIssuers(admin, subjects)).add([issuer]);
      const seen: IssuerState[] = [];
      const stop = await (await openIssuers(follower, subjects)).follow((state) => seen.push(state));
      try {
        expect(seen.at(-1)).toEqual({ issuers: new Set([issuer]), enforce: true });
        // The follower's connection goes away under the watch (as when the server ends it).
        await follower.close();
        await waitFor(() => seen.at(-1) === 'unreadable', { what: 'unreadable after the watch ended' });
      } finally {
        stop();
      }
    } finally {
      await admin.close();
      if (!follower.isClosed()) await follower.close();
    }
  });
});
