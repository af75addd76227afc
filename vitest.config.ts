import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // A native crash takes down one fork, not the run; forks also keep libtorch's OpenMP pools apart.
    pool: 'forks',
    // Two cores: more parallel native work only oversubscribes them.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      // Pure TypeScript: neither the addon nor Python.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      // The addon, real photos and the tiny TorchScript fixture that the global set-up makes with Python.
      {
        extends: true,
        test: {
          name: 'native',
          include: ['test/native/**/*.test.ts', 'test/gpu/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
        },
      },
    ],
  },
});
