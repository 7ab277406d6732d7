import { describe, expect, it } from 'vitest';
import { durationOption, intOption, latticeOption, parseDuration, serversOption } from './index.ts';

describe('options', () => {
  it('options - durations parse with every unit and as bare milliseconds', () => {
    expect(parseDuration('500ms', '--x')).toBe(500);
    expect(parseDuration('30s', '--x')).toBe(30_000);
    expect(parseDuration('1.5s', '--x')).toBe(1500);
    expect(parseDuration('10m', '--x')).toBe(600_000);
    expect(parseDuration('2h', '--x')).toBe(7_200_000);
    expect(parseDuration('90d', '--x')).toBe(90 * 86_400_000);
    expect(parseDuration('250', '--x')).toBe(250);
  });

  it('options - bad durations and out-of-range values name the flag', () => {
    for (const text of ['', 'soon', '10 minutes', '-5s', '5x', '1e3']) {
      expect(() => parseDuration(text, '--interval')).toThrow(/option --interval: .* is not a duration/);
    }
    expect(() => durationOption('--deadline', '0', 1, 60_000)).toThrow(/option --deadline: must be an integer from 1 to 60000, got 0/);
    expect(durationOption('--deadline', '3s', 1, 60_000)).toBe(3000);
    expect(() => intOption('--max-body-bytes', 0, 1, 1024)).toThrow(/--max-body-bytes/);
    expect(() => intOption('--count', 1.5, 1, 10)).toThrow(/integer/);
  });

  it('options - servers and lattice come from the flag, then the environment, and are checked', () => {
    expect(serversOption(undefined, {})).toEqual(['nats://127.0.0.1:4222']);
    expect(serversOption(undefined, { TRELLIS_NATS_URL: 'nats://a:1, tls://b:2' })).toEqual(['nats://a:1', 'tls://b:2']);
    expect(() => serversOption('http://x', {})).toThrow(/option --nats: "http:\/\/x" is not a NATS URL/);
    // A credential in the URL is refused, and the message does not repeat it.
    expect(() => serversOption('nats://alice:s3cret@host:4222', {})).toThrow(/must not carry a user, password or token/);
    expect(() => serversOption('nats://alice:s3cret@host:4222', {})).not.toThrow(/s3cret/);
    expect(latticeOption(undefined, { TRELLIS_LATTICE: 'prod' })).toBe('prod');
    expect(() => latticeOption('a.b', {})).toThrow(/option --lattice/);
  });
});
