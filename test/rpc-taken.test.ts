/**
 * The RPC client against hand-written takers on a real nats-server: what it does with the
 * taken and progress replies of the invocation wire (lattice/wire/rpc.ts), attempt by attempt.
 */
import { connect, type Msg, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRpcClient, type RpcClient } from '../lattice/rpc/index.ts';
import { subjects as buildSubjects } from '../lattice/subjects/index.ts';
import { bytesRequest, encode, PROGRESS_EVERY_MS, RpcHeaders, type InvokeReply } from '../lattice/wire/index.ts';
import { PROGRESS_REPLY, natsFastPaths } from '../host/runtime/index.ts';
import { startNats, uniqueLattice, type NatsServer } from './harness/index.ts';

const TAKEN = natsFastPaths.constantHeaders([[RpcHeaders.progress, '1'], [RpcHeaders.taken, '1']]);

describe('rpc client - taken calls', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let taker: NatsConnection;
  let rpc: RpcClient;
  const lattice = uniqueLattice('taken');
  const subjects = buildSubjects(lattice);

  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
    taker = await connect({ servers: nats.url });
    // Attempts far shorter than the calls below: only taken and progress replies can keep the
    // client from sending a call again.
    rpc = await createRpcClient(nc, { lattice, caller: 'test', attemptTimeoutMs: 300, minAttemptTimeoutMs: 300 });
  });
  afterAll(async () => {
    await rpc?.close();
    await taker?.close();
    await nc?.close();
    await nats?.stop();
  });

  /** Serve actor@1.0.0 with `onCall`; returns the messages it received. */
  async function serve(actor: string, onCall: (msg: Msg) => void): Promise<Msg[]> {
    const seen: Msg[] = [];
    taker.subscribe(subjects.rpc(actor, '1.0.0'), { queue: subjects.rpcQueue(actor, '1.0.0'), callback: (_e, m) => (seen.push(m), onCall(m)) });
    await taker.flush();
    return seen;
  }

  const answer = (msg: Msg) => msg.respond(encode({ ok: true, response: { status: 200, headers: [], body: new Uint8Array([1]) }, host: 'fake', version: '1.0.0' } satisfies InvokeReply));

  it('rpc - a call acknowledged as taken is not sent again while its taker keeps sending progress', async () => {
    const seen = await serve('busy', (msg) => {
      msg.respond(new Uint8Array(0), { headers: TAKEN });
      // Runs for ten attempt time-outs, saying so the way hosts do, but only from twice the
      // attempt time-out on: until then the taken reply alone keeps the caller waiting.
      let beats = 0;
      const beat = () => {
        if (++beats * PROGRESS_EVERY_MS >= 2400) return answer(msg);
        msg.respond(PROGRESS_REPLY.body, { headers: PROGRESS_REPLY.headers });
        setTimeout(beat, PROGRESS_EVERY_MS);
      };
      setTimeout(beat, 600);
    });
    const result = await rpc.invoke('busy', bytesRequest('x'), { version: '1.0.0', deadlineMs: 20_000 });
    expect(result).toMatchObject({ attempts: 1, hostId: 'fake' });
    expect(seen).toHaveLength(1);
  });

  it('rpc - a taker that goes silent after taking a call is presumed dead: the call is sent again', async () => {
    const seen = await serve('dies', (msg) => {
      // Taken, then nothing (the taker "died"); the second copy is answered.
      if (seen.length === 1) msg.respond(new Uint8Array(0), { headers: TAKEN });
      else answer(msg);
    });
    const result = await rpc.invoke('dies', bytesRequest('x'), { version: '1.0.0', deadlineMs: 20_000 });
    expect(result.attempts).toBe(2);
    expect(seen).toHaveLength(2);
    // Both attempts are one invocation: a provider de-duplicates its writes by this id.
    expect(new Set(seen.map((m) => m.headers?.get(RpcHeaders.invocationId)))).toEqual(new Set([result.invocationId]));
  });

  it('rpc - a call nobody acknowledges is sent again once its attempt expires', async () => {
    const seen = await serve('mute', (msg) => {
      if (seen.length > 1) answer(msg);
    });
    const result = await rpc.invoke('mute', bytesRequest('x'), { version: '1.0.0', deadlineMs: 20_000 });
    expect(result.attempts).toBe(2);
    expect(seen).toHaveLength(2);
  });

  it("rpc - an actor's call to another actor carries an id derived from its own invocation: the same when the caller is retried", async () => {
    const seen = await serve('callee', (msg) => answer(msg));
    const parent = { id: 'caller-invocation', seq: 2 };
    const first = await rpc.invoke('callee', bytesRequest('x'), { version: '1.0.0', parent });
    const retried = await rpc.invoke('callee', bytesRequest('x'), { version: '1.0.0', parent });
    const next = await rpc.invoke('callee', bytesRequest('x'), { version: '1.0.0', parent: { ...parent, seq: 3 } });
    expect(retried.invocationId).toBe(first.invocationId);
    expect(next.invocationId).not.toBe(first.invocationId);
    expect(seen.map((m) => m.headers?.get(RpcHeaders.invocationId))).toEqual([first.invocationId, first.invocationId, next.invocationId]);
  });
});
