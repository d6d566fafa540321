/**
 * The live line: a bar, elapsed<remaining and the rate always; then the counters in order of
 * usefulness, the least useful dropped first so the line fits the terminal (80 and 160 columns).
 */
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { ProgressSnapshot } from '../src/progress.js';
import { createRateWindow, formatClock, formatProgressLine } from '../src/progress.js';

function snapshot(overrides: Partial<ProgressSnapshot> = {}): ProgressSnapshot {
  return {
    total: 200_000,
    done: 90_000,
    succeeded: 89_990,
    failed: 10,
    inFlight: 47,
    queued: 38,
    retries: 17,
    rateLimited: 0,
    promptTokens: 9_000_000,
    completionTokens: 2_000_000,
    elapsedMs: 14_000,
    ...overrides,
  };
}

function line(
  columns: number,
  overrides: Partial<ProgressSnapshot> = {},
  color = false,
  knownTotal = true,
): string {
  const at = (o: Partial<ProgressSnapshot>): ProgressSnapshot => {
    const s = snapshot(o);
    if (!knownTotal) delete s.total;
    return s;
  };
  const window = createRateWindow();
  window.add(at({ done: 0, promptTokens: 0, completionTokens: 0, elapsedMs: 0 }));
  const now = at(overrides);
  window.add(now);
  return formatProgressLine(now, window.rates(now), { label: 'volley', color, columns, bar: true });
}

describe('the live progress line', () => {
  it('at 80 columns: bar, elapsed<remaining, rate and errors, within the width', () => {
    const text = line(80);
    expect(text).toBe(
      'volley 45.0% |████▌     | 90,000/200,000 [00:14<00:17, 6,429 req/s] │ errors 10',
    );
    expect(text.length).toBeLessThan(80);
  });

  it('at 160 columns: in flight and queued as separate counts, retries and token rates', () => {
    const text = line(160);
    expect(text.length).toBeLessThan(160);
    expect(text).toContain('in flight 47 (+38 queued)');
    expect(text).toContain('retries 17');
    expect(text).toContain('tok/s in 643k out 143k');
  });

  it('drops the least useful counters first', () => {
    const text = line(120);
    expect(text).toContain('errors 10');
    expect(text).toContain('retries 17');
    expect(text).not.toContain('in flight');
    expect(text).not.toContain('tok/s');
    expect(text).not.toContain('avg');
    // A rate-limit wait, when there is one, ranks above the token rates.
    const limited = line(160, { rateLimited: 3 });
    expect(limited).toContain('waiting on limiter 3');
    expect(limited).not.toContain('tok/s');
  });

  it('at 80 columns, shows the retries of a run that gets no answer (the only sign of trouble)', () => {
    const text = line(80, {
      total: 5,
      done: 0,
      succeeded: 0,
      failed: 0,
      inFlight: 5,
      queued: 0,
      promptTokens: 0,
      completionTokens: 0,
      elapsedMs: 30_000,
    });
    expect(text).toBe('volley 0.0% |          | 0/5 [00:30<?, 0.0 req/s] │ errors 0 │ retries 17');
    expect(text.length).toBeLessThan(80);
  });

  it('measures the width without colour codes', () => {
    for (const columns of [80, 100, 160]) {
      const text = stripVTControlCharacters(line(columns, {}, true));
      expect(text.length).toBeLessThan(columns);
      expect(text).toBe(line(columns));
    }
  });

  it('says nothing about a queue that is empty', () => {
    expect(line(160, { queued: 0 })).toMatch(/in flight 47 │/);
  });

  it('without a known total: counts done and elapsed, no bar', () => {
    const text = line(160, {}, false, false);
    expect(text).toMatch(/^volley 90,000 done \[00:14, 6,429 req\/s\]/);
    expect(text).not.toContain('|');
  });
});

describe('formatClock', () => {
  it.each([
    [0, '00:00'],
    [14_400, '00:14'],
    [725_000, '12:05'],
    [3_723_000, '1:02:03'],
    [undefined, '?'],
    [Number.NaN, '?'],
  ])('%s ms is %s', (ms, text) => {
    expect(formatClock(ms)).toBe(text);
  });
});
