import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createProgressReporter } from '../src/progress.js';
import { fakeStream, SUMMARY, snapshot } from './helpers/fake-stream.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('progress plain mode', () => {
  it('is what auto picks for a non-TTY stream, and TERM=dumb', () => {
    expect(createProgressReporter({ mode: 'auto', stream: fakeStream().stream }).mode).toBe(
      'plain',
    );
    vi.stubEnv('TERM', 'dumb');
    try {
      const tty = fakeStream({ isTTY: true }).stream;
      expect(createProgressReporter({ mode: 'auto', stream: tty }).mode).toBe('plain');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('prints one line per interval, with no ESC bytes, even for hostile text', () => {
    const out = fakeStream();
    const progress = createProgressReporter({
      mode: 'plain',
      stream: out.stream,
      label: 'run\u001b[31m',
    });
    progress.update(snapshot({ done: 100, failed: 3, retries: 2, elapsedMs: 5000 }));
    expect(out.chunks).toHaveLength(0); // updates never write
    vi.advanceTimersByTime(5000);
    expect(out.chunks).toHaveLength(1);
    progress.update(snapshot({ done: 200, elapsedMs: 10_000 }));
    vi.advanceTimersByTime(5000);
    progress.log('line 3: bad \u001b[2J snippet\r\nforged line');
    progress.finish(SUMMARY);
    const text = out.text();
    expect(text).not.toContain('\u001b');
    expect(text).not.toContain('\u0007');
    expect(text).toContain('100/1,000');
    expect(text).toContain('200/1,000');
    expect(text.split('\n').filter((l) => l.includes('forged line'))).toHaveLength(1);
    expect(text).toContain('line 3: bad \\x1b[2J snippet\\r\\nforged line');
  });

  it('honours intervalMs and stops rendering after finish', () => {
    const out = fakeStream();
    const progress = createProgressReporter({
      mode: 'plain',
      stream: out.stream,
      intervalMs: 1000,
    });
    progress.update(snapshot({ done: 1, elapsedMs: 1000 }));
    vi.advanceTimersByTime(3000);
    expect(out.chunks).toHaveLength(3);
    progress.finish(SUMMARY);
    const after = out.chunks.length;
    progress.update(snapshot({ done: 2, elapsedMs: 2000 }));
    vi.advanceTimersByTime(5000);
    progress.finish(SUMMARY);
    expect(out.chunks).toHaveLength(after);
  });

  it('prints an aligned human-readable summary with escaped paths and codes', () => {
    const out = fakeStream();
    createProgressReporter({ mode: 'plain', stream: out.stream }).finish(SUMMARY);
    const text = out.text();
    expect(text).toMatch(/^ {2}succeeded: +990$/m);
    expect(text).toMatch(/^ {2}extra billed calls: +1$/m);
    expect(text).toContain('errors\\x1b]0;pwned\\x07.jsonl');
    expect(text).toContain('VOLLEY_INPUT_JSON_TRUNCATED\\x1b[2J');
    // Every top-level "key: value" row starts its value in the same column.
    const valueColumns = text
      .split('\n')
      .map((l) => /^ {2}[a-z][a-z/ ]*: +/.exec(l)?.[0].length)
      .filter((n) => n !== undefined);
    expect(valueColumns.length).toBeGreaterThan(10);
    expect(new Set(valueColumns).size).toBe(1);
  });

  it('prints nothing for none, except log lines', () => {
    const out = fakeStream();
    const progress = createProgressReporter({ mode: 'none', stream: out.stream });
    progress.update(snapshot({ done: 5, elapsedMs: 5000 }));
    vi.advanceTimersByTime(60_000);
    progress.finish(SUMMARY);
    expect(out.text()).toBe('');
    progress.log('skipped line 4');
    expect(out.text()).toBe('skipped line 4\n');
  });
});
