/**
 * Rate limits a run can never meet are said so at start, with the arithmetic: `--rpm 1` with 1000
 * lines and `--timeout-ms 60000` timed most lines out without a word of why.
 */
import { describe, expect, it } from 'vitest';
import type { PaceFacts } from '../src/run/pace-warning.js';
import { paceWarning } from '../src/run/pace-warning.js';

const run = (facts: Partial<PaceFacts>): string | undefined =>
  paceWarning({
    lines: 1000,
    concurrency: 64,
    rpm: undefined,
    tpm: undefined,
    endpoints: 1,
    requestsPerLine: 1,
    timeoutMs: 60_000,
    ...facts,
  });

describe('paceWarning', () => {
  it('--rpm 1, 1000 lines, -c 64, 60 s: warns with the wait, the share that times out and the fix', () => {
    expect(run({ rpm: 1 })).toBe(
      '--rpm 1 (requests a minute) with 64 lines in flight at once (-c 64, of 1000 lines): the last waits up to 64 min for its turn, past its --timeout-ms of 1 min; about 63 of every 64 will time out. To finish them, lower -c to 1 or raise --timeout-ms to 3840000',
    );
  });

  it('says nothing when the limit can serve the lines in flight within the deadline', () => {
    expect(run({ rpm: 64 })).toBeUndefined();
    expect(run({ rpm: 5000, tpm: 2_000_000, timeoutMs: 600_000 })).toBeUndefined();
    expect(run({})).toBeUndefined();
    // Fewer lines than -c: only they are in flight.
    expect(run({ rpm: 3, lines: 3 })).toBeUndefined();
  });

  it('counts every endpoint, and every request of a sampled line', () => {
    expect(run({ rpm: 32, endpoints: 2 })).toBeUndefined();
    expect(run({ rpm: 64, requestsPerLine: 4 })).toContain(
      '--rpm 64 (requests a minute) (4 requests a line) with 64 lines',
    );
  });

  it('--tpm: warns only when even 1 token a request cannot make it', () => {
    expect(run({ tpm: 10 })).toContain('--tpm 10 (tokens a minute, 1 or more a request)');
    expect(run({ tpm: 10 })).toContain('the last waits up to 6.4 min');
    expect(run({ tpm: 64 })).toBeUndefined();
  });

  it('standard input (lines unknown): -c lines are in flight; no line fits at all: raise the deadline', () => {
    expect(run({ lines: undefined, rpm: 1, concurrency: 2, timeoutMs: 30_000 })).toContain(
      'with 2 lines in flight at once (-c 2): the last waits up to 2 min for its turn, past its --timeout-ms of 30 s; about 2 of every 2 will time out. To finish them, raise --timeout-ms to 120000',
    );
  });
});
