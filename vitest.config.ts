import { defineConfig } from 'vitest/config';

// Tests import the packages by name, which resolves to their built `dist/` (the root `test`
// script builds first): what the tests exercise is exactly what ships, and Piscina's worker
// threads load plain JavaScript with no loader hooks.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // --expose-gc: the FileHandle guard forces a collection after each file (see the file).
    execArgv: ['--expose-gc'],
    setupFiles: ['test/setup/file-handle-guard.ts'],
  },
});
