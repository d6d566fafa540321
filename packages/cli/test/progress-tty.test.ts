import { stripVTControlCharacters } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createProgressReporter } from '../src/progress.js';
import { fakeStream, SUMMARY, snapshot } from './helpers/fake-stream.js';

beforeEach(() => {
  vi.useFakeTimers();
  vi.stubEnv('TERM', 'xterm-256color');
  vi.stubEnv('NO_COLOR', undefined);
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllEnvs();
});

const ESC = '\u001b';
const strip = stripVTControlCharacters;

describe('progress tty mode', () => {
  it('is what auto picks on a TTY, and redraws one live line containing done/total', () => {
    const out = fakeStream({ isTTY: true, columns: 160 });
    const progress = createProgressReporter({ mode: 'auto', stream: out.stream });
    expect(progress.mode).toBe('tty');
    progress.update(
      snapshot({ done: 250, failed: 4, inFlight: 64, rateLimited: 3, retries: 9, elapsedMs: 5000 }),
    );
    vi.advanceTimersByTime(200);
    const first = strip(out.text());
    expect(first).toContain('250/1,000');
    expect(first).toContain('25.0%');
    expect(first).toContain('in flight 64');
    expect(first).toContain('waiting on limiter 3');
    expect(first).toContain('errors 4');
    progress.update(snapshot({ done: 500, elapsedMs: 10_000 }));
    vi.advanceTimersByTime(200);
    expect(strip(out.chunks.at(-1) ?? '')).toContain('500/1,000');
    progress.finish(SUMMARY);
  });

  it('uses colour unless NO_COLOR is set', () => {
    const colored = fakeStream({ isTTY: true });
    const a = createProgressReporter({ mode: 'tty', stream: colored.stream });
    a.update(snapshot({ done: 1, failed: 1, elapsedMs: 1000 }));
    vi.advanceTimersByTime(200);
    expect(colored.text()).toContain(`${ESC}[31m`);
    a.finish(SUMMARY);

    vi.stubEnv('NO_COLOR', '');
    const plain = fakeStream({ isTTY: true });
    const b = createProgressReporter({ mode: 'tty', stream: plain.stream });
    b.update(snapshot({ done: 1, failed: 1, elapsedMs: 1000 }));
    vi.advanceTimersByTime(200);
    b.finish(SUMMARY);
    for (const sgr of ['[31m', '[32m', '[33m']) expect(plain.text()).not.toContain(`${ESC}${sgr}`);
  });

  it('fits the line to the terminal width by dropping whole segments', () => {
    const out = fakeStream({ isTTY: true, columns: 50 });
    const progress = createProgressReporter({ mode: 'tty', stream: out.stream });
    progress.update(snapshot({ done: 250, elapsedMs: 5000 }));
    vi.advanceTimersByTime(200);
    const line = strip(out.chunks.at(-1) ?? '').replace(/\n$/, '');
    expect(line.length).toBeLessThan(50);
    expect(line).toContain('250/1,000');
    progress.finish(SUMMARY);
  });

  it('prints log lines above the live line and keeps the live line', () => {
    const out = fakeStream({ isTTY: true });
    const progress = createProgressReporter({ mode: 'tty', stream: out.stream });
    progress.update(snapshot({ done: 7, elapsedMs: 1000 }));
    vi.advanceTimersByTime(200);
    out.chunks.length = 0;
    progress.log('endpoint down \u001b[2J');
    const text = strip(out.text());
    expect(text.indexOf('endpoint down \\x1b[2J')).toBeGreaterThanOrEqual(0);
    expect(text.indexOf('7/1,000')).toBeGreaterThan(text.indexOf('endpoint down'));
    progress.finish(SUMMARY);
  });

  it('clears the live line and prints the summary on finish', () => {
    const out = fakeStream({ isTTY: true });
    const progress = createProgressReporter({ mode: 'tty', stream: out.stream });
    progress.update(snapshot({ done: 7, elapsedMs: 1000 }));
    vi.advanceTimersByTime(200);
    progress.finish(SUMMARY);
    const text = strip(out.text());
    expect(text).toContain('volley summary');
    expect(text).toMatch(/succeeded: +990/);
  });
});
