/**
 * Fails a test file whose FileHandles were closed by the garbage collector rather than by
 * close(). Node warns for each (`Closing file descriptor N on garbage collection`, DEP0137) and
 * says it will throw in a future version; when the collector runs is luck, so after the file's
 * tests this forces it (vitest passes --expose-gc to the test processes) and checks. Loaded for
 * every test file (vitest.config.ts setupFiles).
 */
import { afterAll } from 'vitest';

const collected: string[] = [];
process.on('warning', (warning: Error & { code?: string }) => {
  if (warning.code === 'DEP0137' || /on garbage collection/.test(warning.message)) {
    collected.push(warning.message);
  }
});

afterAll(async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  // A handle's collection is noticed in one cycle and its warning emitted after the next turn.
  for (let cycle = 0; gc !== undefined && cycle < 2; cycle++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  if (collected.length > 0) {
    throw new Error(
      `a FileHandle was left for the garbage collector to close (${collected[0]}): close every file this test file opens`,
    );
  }
});
