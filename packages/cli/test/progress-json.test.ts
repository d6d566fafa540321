import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createProgressReporter } from '../src/progress.js';
import { fakeStream, SUMMARY, snapshot } from './helpers/fake-stream.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('progress json mode', () => {
  it('emits one parseable JSON object per line: progress events, logs and a summary', () => {
    const out = fakeStream({ isTTY: true });
    const progress = createProgressReporter({ mode: 'json', stream: out.stream, intervalMs: 1000 });
    for (let t = 1; t <= 6; t++) {
      progress.update(
        snapshot({
          done: t * 50,
          succeeded: t * 50,
          promptTokens: t * 5000,
          completionTokens: t * 1000,
          elapsedMs: t * 1000,
        }),
      );
      vi.advanceTimersByTime(1000);
    }
    progress.log('hello \u001b');
    progress.finish(SUMMARY);
    const text = out.text();
    expect(text.endsWith('\n')).toBe(true);
    const events = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'progress')).toHaveLength(6);
    expect(types.slice(-2)).toEqual(['log', 'summary']);
    const last = events.filter((e) => e.type === 'progress').at(-1);
    expect(last).toMatchObject({ version: 1, done: 300, total: 1000, percent: 30 });
    expect(last?.reqPerSec).toBeCloseTo(50, 5);
    expect(last?.promptTokensPerSec).toBeCloseTo(5000, 5);
    expect(last?.etaMs).toBe(14_000);
    expect(events.at(-1)).toMatchObject({ type: 'summary', version: 1, ...SUMMARY });
  });

  it('reports unknown totals and rates as null, not missing', () => {
    const out = fakeStream();
    const progress = createProgressReporter({ mode: 'json', stream: out.stream, intervalMs: 100 });
    const { total: _total, ...noTotal } = snapshot({ elapsedMs: 0 });
    progress.update(noTotal);
    vi.advanceTimersByTime(100);
    const event = JSON.parse(out.text()) as Record<string, unknown>;
    expect(event).toMatchObject({ total: null, percent: null, etaMs: null, reqPerSec: null });
  });
});
