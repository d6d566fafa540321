/** The resume hint: the command the user typed, with --resume, quoted for a POSIX shell. */
import { describe, expect, it } from 'vitest';
import { summaryForJson } from '../src/progress.js';
import { resumeCommandLine, shellWord } from '../src/resume-hint.js';

describe('resumeCommandLine', () => {
  it('adds --resume and drops --overwrite', () => {
    expect(resumeCommandLine(['run', 'in.jsonl', '-o', 'out.jsonl', '--overwrite'])).toBe(
      'volley run in.jsonl -o out.jsonl --resume',
    );
  });

  it('keeps an existing --resume or --force-resume as it is', () => {
    expect(resumeCommandLine(['run', 'a', '-o', 'b', '--resume'])).toBe(
      'volley run a -o b --resume',
    );
    expect(resumeCommandLine(['run', 'a', '-o', 'b', '--force-resume'])).toBe(
      'volley run a -o b --force-resume',
    );
  });

  it('quotes what the shell would split or expand', () => {
    expect(shellWord("my file's.jsonl")).toBe(`'my file'\\''s.jsonl'`);
    expect(shellWord('$HOME')).toBe(`'$HOME'`);
    expect(shellWord('')).toBe(`''`);
    expect(shellWord('http://127.0.0.1:8000/v1')).toBe('http://127.0.0.1:8000/v1');
  });
});

describe('summaryForJson', () => {
  it('rounds times to the millisecond and spend to the micro-dollar', () => {
    const rounded = summaryForJson({
      total: 1,
      succeeded: 1,
      failed: 0,
      skipped: 0,
      retries: 0,
      extraBilledCalls: 0,
      promptTokens: 1,
      completionTokens: 1,
      wallMs: 1000.8524029999999,
      latencyMs: { p50: 12.000001, p90: 13.5, p99: 14.49, max: 20.7 },
      costUsd: 0.00012345678901234,
      byError: {},
    });
    expect(rounded.wallMs).toBe(1001);
    expect(rounded.latencyMs).toEqual({ p50: 12, p90: 14, p99: 14, max: 21 });
    expect(rounded.costUsd).toBe(0.000123);
  });
});
