/**
 * Answers over 4 MiB are read a few at a time (answerMemoryBytes): with room for one, many large
 * answers arriving together still all complete, whole, without waiting on each other forever.
 * `node --expose-gc test/fixtures/large-answers.mjs <answerMemoryBytes> <count> <MiB>` prints the
 * peak RSS, to compare a small budget with a large one.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('fixtures/large-answers.mjs', import.meta.url));

it('completes every large answer when only one may be read at a time', async () => {
  // 6 answers of 6 MiB, maxResponseBytes 14 MiB, a budget of 14 MiB: one slot.
  const { stdout } = await promisify(execFile)(process.execPath, [
    FIXTURE,
    String(14 * 1024 * 1024),
    '6',
    '6',
  ]);
  expect(JSON.parse(stdout)).toMatchObject({ complete: 6 });
});
