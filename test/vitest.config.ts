import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Integration tests start real nats-server and host processes; two cores means modest parallelism.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts', '{lattice,host,providers,actors}/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    globalSetup: ['test/harness/global-setup.ts'],
    setupFiles: ['test/harness/setup.ts'],
  },
});
