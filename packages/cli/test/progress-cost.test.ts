import { stripVTControlCharacters } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createProgressReporter, formatSummary, formatUsd } from '../src/progress.js';
import { fakeStream, SUMMARY, snapshot } from './helpers/fake-stream.js';

beforeEach(() => {
  vi.useFakeTimers();
  vi.stubEnv('TERM', 'xterm-256color');
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
});

describe('cost and resume figures in progress', () => {
  it('formats small and large spends', () => {
    expect(formatUsd(0.00123)).toBe('$0.0012');
    expect(formatUsd(1.5)).toBe('$1.50');
    expect(formatUsd(12_345.6)).toBe('$12,346');
  });

  it('shows the estimated cost on the live line when prices are set', () => {
    const out = fakeStream({ isTTY: true, columns: 200 });
    const progress = createProgressReporter({ mode: 'tty', stream: out.stream });
    progress.update(snapshot({ done: 10, elapsedMs: 2000, costUsd: 0.42 }));
    vi.advanceTimersByTime(200);
    expect(stripVTControlCharacters(out.text())).toContain('cost $0.42');
    progress.finish(SUMMARY);
  });

  it('still draws on a terminal that reports a 0 x 0 size (an unsized pty)', () => {
    const out = fakeStream({ isTTY: true, columns: 0 });
    (out.stream as { rows: number }).rows = 0;
    const progress = createProgressReporter({ mode: 'tty', stream: out.stream });
    progress.update(snapshot({ done: 250, elapsedMs: 5000 }));
    vi.advanceTimersByTime(200);
    expect(stripVTControlCharacters(out.text())).toContain('250/1,000');
    progress.finish(SUMMARY);
  });

  it('summarises status, pending lines, earlier work and cost', () => {
    const text = formatSummary(
      {
        ...SUMMARY,
        status: 'interrupted',
        pending: 12,
        alreadyDone: 40,
        alreadyFailed: 2,
        costUsd: 1.234,
      },
      { label: 'volley', color: false },
    );
    expect(text).toMatch(/status: +interrupted/);
    expect(text).toMatch(/pending: +12/);
    expect(text).toMatch(/already done: +40 \(2 of them failed\)/);
    expect(text).toMatch(/estimated cost: +\$1\.23/);
  });
});
