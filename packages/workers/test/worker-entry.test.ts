/**
 * The thread entry must never be loaded by require(): Piscina tries require() first, and on Node 20
 * a require() of an ES module interrupted by the thread's termination aborts the whole process.
 * The built entry is what Piscina loads, so that is what is checked.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const builtEntry = fileURLToPath(new URL('../dist/worker-entry.js', import.meta.url));

it('refuses require() before evaluating anything, so Piscina falls back to import()', () => {
  const require = createRequire(import.meta.url);
  expect(() => require(builtEntry)).toThrow(
    expect.objectContaining({ code: 'ERR_REQUIRE_ASYNC_MODULE' }),
  );
});
