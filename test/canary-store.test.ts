/**
 * Canary documents on a real nats-server: transitions written with compare-and-set serialize
 * however they race. Many runs get a full promote and an abort at the same instant (each writer
 * on its own connection, as two CLI processes would be): exactly one wins each time, the loser
 * is refused with its stable code, and the weights match the winner.
 */
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY_DEFAULTS } from '../lattice/apps/canary.ts';
import { abort, begin, pause, promote, resume, start } from '../lattice/canary/index.ts';
import { openWriter, transition, type Writer } from '../lattice/canary-controller/index.ts';
import { TrellisError } from '../lattice/errors/index.ts';
import { subjects as buildSubjects } from '../lattice/subjects/index.ts';
import { startNats, uniqueLattice, type NatsServer } from './harness/index.ts';

describe('canary documents under racing writers', () => {
  let nats: NatsServer;
  const conns: NatsConnection[] = [];
  let a: Writer;
  let b: Writer;
  const subjects = buildSubjects(uniqueLattice('cs'));
  const spec = { ...CANARY_DEFAULTS, steps: [10, 100], intervalMs: 1000 };

  beforeAll(async () => {
    nats = await startNats();
    for (let i = 0; i < 2; i++) conns.push(await connect({ servers: nats.url }));
    a = await openWriter(conns[0]!, subjects, 'a', '/test/a');
    b = await openWriter(conns[1]!, subjects, 'b', '/test/b');
  }, 60_000);

  afterAll(async () => {
    for (const nc of conns) await nc.close();
    await nats?.stop();
  });

  const code = (p: Promise<unknown>) => p.then(() => 'ok', (err: unknown) => (err instanceof TrellisError ? err.code : String(err)));

  it('canary store - abort and a full promote racing on 20 runs: one wins each, the other is refused, weights follow the winner', async () => {
    const actors = Array.from({ length: 20 }, (_, i) => `svc${i}`);
    for (const actor of actors) {
      await transition(a, actor, (st, now) => ({ transition: start(st, { actor, stable: '1.0.0', canary: '1.1.0', spec }, now) }));
      await transition(a, actor, (st, now) => ({ transition: begin(st!, now) }));
    }
    const outcomes = await Promise.all(
      actors.map(async (actor) => {
        const [promoted, aborted] = await Promise.all([
          code(transition(a, actor, (st, now) => ({ transition: promote(st, { full: true }, now, actor) }))),
          code(transition(b, actor, (st, now) => ({ transition: abort(st, now, actor) }))),
        ]);
        const record = (await a.docs.get(actor))!.value;
        const weights = (await a.weights.get(actor))!.weights;
        return { promoted, aborted, phase: record.phase, weights, history: record.history.map((h) => h.decision) };
      }),
    );
    for (const o of outcomes) {
      if (o.promoted === 'ok') {
        expect(o).toMatchObject({ aborted: 'TRELLIS_NOT_FOUND', phase: 'Promoted', weights: { '1.1.0': 100 } });
      } else {
        expect(o).toMatchObject({ promoted: 'TRELLIS_CONFLICT', aborted: 'ok', phase: 'Aborted', weights: { '1.0.0': 100 } });
      }
      // One decision recorded, never both.
      expect(o.history.filter((d) => d === 'promoted' || d === 'aborted')).toHaveLength(1);
    }
  });

  it('canary store - pause and resume from two writers never lose an update; abort with no run writes nothing', async () => {
    const actor = 'pausing';
    await transition(a, actor, (st, now) => ({ transition: start(st, { actor, stable: '1.0.0', canary: '1.1.0', spec }, now) }));
    await transition(a, actor, (st, now) => ({ transition: begin(st!, now) }));
    for (let i = 0; i < 5; i++) {
      await Promise.all([code(transition(a, actor, (st, now) => ({ transition: pause(st, now, actor) }))), code(transition(b, actor, (st, now) => ({ transition: pause(st, now, actor) })))]);
      expect((await a.docs.get(actor))!.value.phase).toBe('Paused');
      await Promise.all([code(transition(a, actor, (st, now) => ({ transition: resume(st, now, actor) }))), code(transition(b, actor, (st, now) => ({ transition: resume(st, now, actor) })))]);
      expect((await a.docs.get(actor))!.value.phase).toBe('Progressing');
    }
    // Two writers asked each time, one transition each time: 5 pauses and 5 resumes recorded.
    const history = (await a.docs.get(actor))!.value.history.map((h) => h.decision);
    expect(history.filter((d) => d === 'paused')).toHaveLength(5);
    expect(history.filter((d) => d === 'resumed')).toHaveLength(5);

    expect(await code(transition(a, 'nothing', (st, now) => ({ transition: abort(st, now, 'nothing') })))).toBe('TRELLIS_NOT_FOUND');
    expect(await a.docs.get('nothing')).toBeUndefined();
    expect(await a.weights.get('nothing')).toBeUndefined();
  });
});
