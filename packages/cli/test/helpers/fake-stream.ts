import type { ProgressSnapshot, RunSummary } from '../../src/progress.js';

/** A stand-in for process.stderr that records what is written. */
export function fakeStream(options: { isTTY?: boolean; columns?: number } = {}) {
  const chunks: string[] = [];
  return {
    chunks,
    text: () => chunks.join(''),
    stream: {
      isTTY: options.isTTY ?? false,
      columns: options.columns ?? 120,
      rows: 24,
      write(chunk: string) {
        chunks.push(chunk);
        return true;
      },
    },
  };
}

export function snapshot(overrides: Partial<ProgressSnapshot> = {}): ProgressSnapshot {
  return {
    total: 1000,
    done: 0,
    succeeded: 0,
    failed: 0,
    inFlight: 0,
    queued: 0,
    retries: 0,
    rateLimited: 0,
    promptTokens: 0,
    completionTokens: 0,
    elapsedMs: 0,
    ...overrides,
  };
}

export const SUMMARY: RunSummary = {
  total: 1000,
  succeeded: 990,
  failed: 10,
  skipped: 2,
  retries: 31,
  extraBilledCalls: 1,
  promptTokens: 123_456,
  completionTokens: 45_678,
  wallMs: 65_000,
  latencyMs: { p50: 120, p90: 480, p99: 2100, max: 9000 },
  byError: { VOLLEY_ERR_RATE_LIMITED: 7, 'VOLLEY_INPUT_JSON_TRUNCATED\u001b[2J': 3 },
  byEndpoint: { 'http://127.0.0.1:8000': { succeeded: 990, failed: 10 } },
  outputPath: 'results.jsonl',
  errorsPath: 'errors\u001b]0;pwned\u0007.jsonl',
};
