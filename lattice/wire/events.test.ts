import { describe, expect, it } from 'vitest';
import { encodeJson } from './codec.ts';
import type { HostInventory } from './control.ts';
import { decodeEvent, makeEvent, MAX_EVENT_BYTES, encodeEvent } from './events.ts';
import { decodeBeat, encodeBeat } from './liveness.ts';

const inventory: HostInventory = { id: 'N1', name: 'h', lattice: 'l', labels: { a: 'b' }, version: '0.1.0', startedAt: '2026-01-01T00:00:00.000Z', uptimeMs: 1, actors: [{ name: 'api', version: '1.0.0', digest: 'sha256:x', world: 'actor', instances: 2, maxConcurrency: 1, startedAt: '' }], providers: [{ name: 'kv', health: 'ok', restarts: 0, startedAt: '' }], seq: 3, beatMs: 1000 };
const event = (kind: string, data: unknown) => encodeJson({ specversion: '1.0', id: 'e', source: 's', type: `dev.trellis.${kind}`, time: '', datacontenttype: 'application/json', kind, data });

describe('event and beat checks', () => {
  it('event check - inventories and actor events listeners act on are checked, extra fields pass through', () => {
    const back = decodeEvent(encodeEvent(makeEvent('host_heartbeat', '/x', { ...inventory, future: 1 } as HostInventory)));
    expect(back.data).toMatchObject({ id: 'N1', future: 1 });
    expect(() => decodeEvent(event('host_heartbeat', { ...inventory, actors: 'all' }))).toThrow('event host_heartbeat.data.actors: must be a list, got string');
    expect(() => decodeEvent(event('host_heartbeat', { ...inventory, actors: [{ ...inventory.actors[0]!, instances: -1 }] }))).toThrow(/data\.actors\[0\]\.instances: must be an integer/);
    expect(() => decodeEvent(event('host_heartbeat', { ...inventory, id: '' }))).toThrow(/data\.id: must not be empty/);
    expect(() => decodeEvent(event('actor_started', { hostId: 'N1', actor: 'api', version: '1.0.0' }))).toThrow(/actor_started\.data\.instances/);
    expect(() => decodeEvent(event('host_stopped', { hostId: 7, reason: 'x' }))).toThrow(/host_stopped\.data\.hostId: must be a string/);
    // Events nobody acts on are not held to a shape.
    expect(decodeEvent(event('app_deployed', { anything: true })).kind).toBe('app_deployed');
    expect(() => decodeEvent(new Uint8Array(MAX_EVENT_BYTES + 1))).toThrow(/exceeds/);
  });

  it('beat check - a beat is small and complete', () => {
    expect(decodeBeat(encodeBeat({ id: 'N1', periodMs: 1000, seq: 0 }))).toEqual({ id: 'N1', periodMs: 1000, seq: 0 });
    expect(() => decodeBeat(encodeJson({ id: '', periodMs: 1000, seq: 0 }))).toThrow(/expected \{ id, periodMs, seq \}/);
    expect(() => decodeBeat(encodeJson({ id: 'N1', periodMs: 1000, seq: 0, pad: 'x'.repeat(2000) }))).toThrow(/a beat is at most 1024/);
    // Deep JSON is refused by size before it is parsed.
    expect(() => decodeBeat(new TextEncoder().encode('['.repeat(100_000)))).toThrow(/a beat is at most/);
  });
});
