import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A native crash takes down one fork, not the run; forks also keep libtorch's OpenMP pools apart.
    pool: 'forks',
    // Two cores: more parallel native work only oversubscribes them.
    maxWorkers: 2,
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
