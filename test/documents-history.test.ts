/** The document store's history read (what `app history` is built on), against a real nats-server. */
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDocuments, type DocumentKind } from '../lattice/documents/index.ts';
import { TrellisError } from '../lattice/errors/index.ts';
import { subjects as buildSubjects } from '../lattice/subjects/index.ts';
import { isRecord } from '../lattice/wire/index.ts';
import { startNats, uniqueLattice, type NatsServer } from './harness/index.ts';

interface Note {
  id: string;
  n: number;
}
const noteKind: DocumentKind<Note> = {
  name: 'note',
  bucket: (s) => `trellis-${s.lattice}-notes`,
  history: 3,
  key: (note) => note.id,
  decode(value) {
    if (!isRecord(value) || typeof value.id !== 'string' || typeof value.n !== 'number') throw new TrellisError('TRELLIS_BAD_REQUEST', 'note needs id and n');
    return { id: value.id, n: value.n };
  },
};

describe('document history', () => {
  let nats: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('documents - history gives the revisions the kind keeps, oldest first, without deletes; none for an unknown key', async () => {
    const notes = await openDocuments(nc, buildSubjects(uniqueLattice('hist')), noteKind);
    expect(await notes.history('a')).toEqual([]);
    const written = [];
    for (let n = 1; n <= 4; n++) written.push(await notes.put({ id: 'a', n }));
    await notes.put({ id: 'b', n: 9 });
    expect(await notes.history('a')).toEqual(written.slice(1));
    await notes.delete('a');
    // The delete marker is one of the three kept entries, and is left out.
    expect((await notes.history('a')).map((d) => d.value.n)).toEqual([3, 4]);
    await expect(notes.history('a b')).rejects.toMatchObject({ code: 'TRELLIS_BAD_REQUEST' });
  });
});
