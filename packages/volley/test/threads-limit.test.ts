/**
 * `threads` is bounded: 200 worker threads took 12 s and 3.6 GB before a request was sent. The
 * limit is 4 × the available cores, never above 64, and asking for more is an options error that
 * names the limit (the CLI's `--threads` is a usage error, exit 2: test/cli-bounds.test.ts).
 */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createVolley, ErrorCode } from '../src/index.js';
import { MAX_THREADS_HARD_LIMIT, maxThreads } from '../src/options.js';

describe('maxThreads', () => {
  it('is 4 × the cores, at most the hard limit of 64', () => {
    expect(maxThreads(1).limit).toBe(4);
    expect(maxThreads(2).limit).toBe(8);
    expect(maxThreads(16).limit).toBe(64);
    expect(maxThreads(128).limit).toBe(MAX_THREADS_HARD_LIMIT);
    expect(MAX_THREADS_HARD_LIMIT).toBe(64);
    expect(maxThreads(2).reason).toBe('must be at most 8 (4 × 2 available cores, hard maximum 64)');
  });

  it('refuses more threads than the limit with VOLLEY_ERR_INVALID_OPTIONS naming it', async () => {
    const { limit } = maxThreads();
    expect(limit).toBe(Math.min(64, 4 * availableParallelism()));
    const attempt = createVolley({
      mode: 'threads',
      threads: 200,
      endpoints: [{ baseUrl: 'http://127.0.0.1:9/v1' }],
      logger: false,
    });
    await expect(attempt).rejects.toMatchObject({ code: ErrorCode.INVALID_OPTIONS });
    await expect(attempt).rejects.toThrow(`options.threads must be at most ${limit}`);
  });
});
