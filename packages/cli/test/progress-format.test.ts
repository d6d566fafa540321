import { describe, expect, it } from 'vitest';
import { createRateWindow, formatEta, formatProgressLine } from '../src/progress.js';
import { escapeForTerminal } from '../src/text.js';
import { snapshot } from './helpers/fake-stream.js';

describe('formatEta', () => {
  it.each([
    [0, '0s'],
    [400, '0s'],
    [45_000, '45s'],
    [59_499, '59s'],
    [60_000, '1m00s'],
    [185_000, '3m05s'],
    [3_600_000, '1h00m'],
    [7_380_000, '2h03m'],
    [100_800_000, '1d04h'],
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatEta(ms)).toBe(text);
  });

  it.each([[undefined], [Number.NaN], [Number.POSITIVE_INFINITY], [-1]])('shows — for %s', (ms) => {
    expect(formatEta(ms)).toBe('\u2014');
  });
});

describe('createRateWindow', () => {
  it('uses the last 5 s for the current rate and all time for the average', () => {
    const window = createRateWindow();
    // 10 req/s for 10 s, then 100 req/s for 5 s.
    for (let t = 0; t <= 10_000; t += 1000) window.add(snapshot({ done: t / 100, elapsedMs: t }));
    let last = snapshot();
    for (let t = 11_000; t <= 15_000; t += 1000) {
      last = snapshot({ done: 100 + ((t - 10_000) / 1000) * 100, elapsedMs: t });
      window.add(last);
    }
    const rates = window.rates(last);
    expect(rates.reqPerSec).toBeCloseTo(100, 5);
    expect(rates.reqPerSecOverall).toBeCloseTo(600 / 15, 5);
    expect(rates.etaMs).toBeCloseTo(((1000 - 600) / 100) * 1000, 5);
    expect(rates.percent).toBeCloseTo(60, 5);
  });

  it('has no ETA without a total or before anything finished, and 0 when done', () => {
    const window = createRateWindow();
    const { total: _t, ...noTotal } = snapshot({ done: 10, elapsedMs: 2000 });
    window.add(noTotal);
    expect(window.rates(noTotal).etaMs).toBeUndefined();
    const idle = snapshot({ done: 0, elapsedMs: 3000 });
    expect(window.rates(idle).etaMs).toBeUndefined();
    expect(window.rates(snapshot({ done: 1000, elapsedMs: 4000 })).etaMs).toBe(0);
  });
});

describe('formatProgressLine', () => {
  it('shows ? for the remaining time while the rate is unknown', () => {
    const line = formatProgressLine(
      snapshot({ elapsedMs: 0 }),
      createRateWindow().rates(snapshot()),
      {
        label: 'volley',
        color: false,
        columns: 200,
      },
    );
    expect(line).toContain('[00:00<?, \u2014 req/s]');
  });
});

describe('escapeForTerminal', () => {
  it('escapes C0, DEL, C1, line separators, bidi controls and lone surrogates', () => {
    expect(escapeForTerminal('a\u001b[2Jb\n\t\r\u007f\u009b\u2028\u202e\u2066\ud800z')).toBe(
      'a\\x1b[2Jb\\n\\t\\r\\x7f\\x9b\\u2028\\u202e\\u2066\\ud800z',
    );
  });

  it('keeps ordinary Unicode text and emoji', () => {
    expect(escapeForTerminal('héllo 世界 😀')).toBe('héllo 世界 😀');
  });
});
