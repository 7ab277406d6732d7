/**
 * Pins the nats.js internals the host's serving relies on, so a nats.js update that changes
 * them fails here, loudly, instead of silently taking the slow path (or, for the synchronous
 * flush, sending taken replies only after the guest has run).
 */
import { connect, headers as natsHeaders, type Msg, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsFastPaths, PROGRESS_REPLY } from '../host/runtime/index.ts';
import { emptyReplyKind } from '../lattice/rpc/reply-mux.ts';
import { RpcHeaders } from '../lattice/wire/index.ts';
import { startNats, type NatsServer } from './harness/index.ts';

describe('nats.js fast paths', () => {
  let nats: NatsServer;
  let a: NatsConnection;
  let b: NatsConnection;

  beforeAll(async () => {
    nats = await startNats({ jetstream: false });
    a = await connect({ servers: nats.url });
    b = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await nats?.stop();
  });

  /** The next message on a fresh subject of `b` after `send` ran on `a`. */
  async function roundTrip(send: (subject: string) => void): Promise<Msg> {
    const subject = `fast.${Math.random().toString(36).slice(2)}`;
    const got = new Promise<Msg>((resolve) => b.subscribe(subject, { max: 1, callback: (_e, m) => resolve(m) }));
    await b.flush();
    send(subject);
    return got;
  }

  it('nats - the header reader reads the raw header bytes, not the fallback, and agrees with nats.js', async () => {
    const h = natsHeaders();
    h.set(RpcHeaders.invocationId, 'inv-1');
    h.set(RpcHeaders.deadline, '1700000000123');
    h.set(RpcHeaders.attemptExpires, '1700000000045');
    h.set(RpcHeaders.caller, 'test');
    const msg = await roundTrip((s) => a.publish(s, new Uint8Array([1, 2, 3]), { headers: h }));
    const read = natsFastPaths.readHeaders(msg);
    expect(read).toEqual({ fast: true, invocationId: 'inv-1', deadline: 1700000000123, attemptExpires: 1700000000045 });
    expect(msg.headers?.get(RpcHeaders.deadline)).toBe('1700000000123');
    // Without headers: still the fast path, nothing read.
    expect(natsFastPaths.readHeaders(await roundTrip((s) => a.publish(s, new Uint8Array([1]))))).toEqual({ fast: true });
  });

  it('nats - publish encodes a constant header set through its encode(), which answers the bytes built once', async () => {
    const h = natsFastPaths.constantHeaders([[RpcHeaders.progress, '1']]);
    const built = (h as unknown as { encode: () => Uint8Array }).encode;
    let calls = 0;
    (h as unknown as { encode: () => Uint8Array }).encode = () => (calls++, built());
    const msg = await roundTrip((s) => a.publish(s, new Uint8Array(0), { headers: h }));
    expect(calls).toBe(1);
    expect(msg.headers?.get(RpcHeaders.progress)).toBe('1');
    // The bytes are the ones encoded when the set was built: changing it later changes nothing sent.
    h.set('x-late', 'yes');
    const again = await roundTrip((s) => a.publish(s, new Uint8Array(0), { headers: h }));
    expect(again.headers?.get('x-late')).toBe('');
  });

  it('nats - flushNow writes the outbound buffer synchronously: a message leaves while the publisher stays blocked', async () => {
    expect(natsFastPaths.canFlushNow(a)).toBe(true);
    const { outbound, transport } = (a as unknown as { protocol: { outbound: { size(): number }; transport: { socket: { writableLength: number } } } }).protocol;
    const subject = `fast.${Math.random().toString(36).slice(2)}`;
    const got = new Promise<number>((resolve) => b.subscribe(subject, { max: 1, callback: () => resolve(Date.now()) }));
    await b.flush();
    a.publish(subject, new Uint8Array([7]));
    expect(outbound.size()).toBeGreaterThan(0);
    expect(natsFastPaths.flushNow(a)).toBe(true);
    expect(outbound.size()).toBe(0);
    // Handed to the kernel, not queued in Node's socket stream for a later turn.
    expect(transport.socket.writableLength).toBe(0);
    // Hold this thread as a synchronous guest would; the message must not wait for it.
    const blockedUntil = Date.now() + 300;
    while (Date.now() < blockedUntil) {
      // busy
    }
    // b's socket already holds the message: it is delivered on b's first read, with no
    // further write from a (whose buffer stayed empty while it was blocked).
    expect(outbound.size()).toBe(0);
    await got;
  });

  it('nats - an RPC caller tells taken/progress replies from no-responders by their raw first header line', async () => {
    const taken = natsFastPaths.constantHeaders([[RpcHeaders.progress, '1'], [RpcHeaders.taken, '1']]);
    expect(emptyReplyKind(await roundTrip((s) => a.publish(s, new Uint8Array(0), { headers: taken })))).toBe('progress');
    expect(emptyReplyKind(await roundTrip((s) => a.publish(s, PROGRESS_REPLY.body, { headers: PROGRESS_REPLY.headers })))).toBe('progress');
    // Header names are case-insensitive.
    const shouting = natsHeaders();
    shouting.set('TRELLIS-PROGRESS', '1');
    expect(emptyReplyKind(await roundTrip((s) => a.publish(s, new Uint8Array(0), { headers: shouting })))).toBe('progress');
    const other = natsHeaders();
    other.set('x-other', '1');
    expect(emptyReplyKind(await roundTrip((s) => a.publish(s, new Uint8Array(0), { headers: other })))).toBe('other');
    expect(emptyReplyKind(await roundTrip((s) => a.publish(s, new Uint8Array(0))))).toBe('other');
    // The server's own no-responders status, to a request nobody subscribes to.
    const inbox = `fast.inbox.${Math.random().toString(36).slice(2)}`;
    const status = new Promise<Msg>((resolve) => b.subscribe(inbox, { max: 1, callback: (_e, m) => resolve(m) }));
    await b.flush();
    b.publish(`fast.nobody.${Math.random().toString(36).slice(2)}`, new Uint8Array(0), { reply: inbox });
    const msg = await status;
    expect(msg.headers?.code).toBe(503);
    expect(emptyReplyKind(msg)).toBe('no-responders');
  });
});
