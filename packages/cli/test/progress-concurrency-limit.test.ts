// `--concurrency auto`: the progress line, the JSON event and the summary show each endpoint's
// adaptive limit, and say nothing of it without one.
import { describe, expect, it } from 'vitest';
import { createRateWindow, formatProgressLine, formatSummary } from '../src/progress.js';
import { SUMMARY, snapshot } from './helpers/fake-stream.js';

const line = (limits?: Array<number | null>) => {
  const s = snapshot({
    done: 10,
    elapsedMs: 1000,
    ...(limits ? { concurrencyLimits: limits } : {}),
  });
  return formatProgressLine(s, createRateWindow().rates(s), {
    label: 'volley',
    color: false,
    columns: 200,
  });
};

describe('concurrency limits in progress and summary', () => {
  it('shows one limit, several, and - for an endpoint without one', () => {
    expect(line([48])).toContain(' limit 48 ');
    expect(line([24, 64])).toContain(' limits 24/64 ');
    expect(line([1200, null])).toContain(' limits 1,200/- ');
    expect(line()).not.toContain('limit');
  });

  it("prints each endpoint's limit in the summary", () => {
    const text = formatSummary(
      {
        ...SUMMARY,
        byEndpoint: {
          'http://a/v1': { succeeded: 5, failed: 0, concurrencyLimit: 24 },
          'http://b/v1': { succeeded: 7, failed: 1 },
        },
      },
      { label: 'volley', color: false },
    );
    expect(text).toContain('http://a/v1:  succeeded 5, failed 0, concurrency limit 24\n');
    expect(text).toContain('http://b/v1:  succeeded 7, failed 1\n');
  });
});
