import { describe, expect, it } from 'vitest';
import { parseWrk, wrkDurationUs } from './gateway.ts';

// A real wrk 4.1 --latency report (a server answering 404 to every request).
const REPORT = `Running 1s test @ http://127.0.0.1:18099/nope
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.04ms  781.17us  11.72ms   84.95%
    Req/Sec     1.94k   137.94     2.14k    60.00%
  Latency Distribution
     50%    1.94ms
     75%    2.32ms
     90%    2.71ms
     99%    4.47ms
  1928 requests in 1.00s, 0.96MB read
  Non-2xx or 3xx responses: 1000
  Socket errors: connect 0, read 2, write 0, timeout 3
Requests/sec:   1927.11
`;

describe('the gateway bench reads wrk reports', () => {
  it('converts wrk durations to µs', () => {
    expect(wrkDurationUs('781.17us')).toBeCloseTo(781.17);
    expect(wrkDurationUs('1.94ms')).toBeCloseTo(1940);
    expect(wrkDurationUs('2.01s')).toBeCloseTo(2_010_000);
    expect(wrkDurationUs('fast')).toBeNaN();
  });

  it('counts only 2xx responses as served and every other outcome as an error', () => {
    const r = parseWrk(REPORT, 2);
    expect(r.requests).toBe(928);
    expect(r.errors).toBe(1005);
    expect(r.rps).toBe(464);
    expect(r.p50Us).toBeCloseTo(1940);
    expect(r.p90Us).toBeCloseTo(2710);
    expect(r.p99Us).toBeCloseTo(4470);
    expect(r.maxUs).toBeCloseTo(11_720);
  });
});
