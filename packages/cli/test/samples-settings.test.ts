import { describe, expect, it } from 'vitest';
import { CliError, ExitCode } from '../src/exit-codes.js';
import { parseBatchLine } from '../src/jsonl/batch-line.js';
import { describeSampling, resolveSampling } from '../src/run/samples/settings.js';

function usageError(run: () => unknown): CliError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(ExitCode.USAGE);
    return error as CliError;
  }
  throw new Error('expected a usage error');
}

describe('resolveSampling', () => {
  it('is off without --samples or with --samples 1', () => {
    expect(resolveSampling({})).toBeUndefined();
    expect(resolveSampling({ samples: 1 })).toBeUndefined();
  });

  it('defaults --select to all and keeps the judge settings of --select judge', () => {
    expect(resolveSampling({ samples: 3 })).toEqual({
      samples: 3,
      select: 'all',
      judgeModel: null,
      judgeInstructions: null,
    });
    expect(
      resolveSampling({
        samples: 2,
        select: 'judge',
        judgeModel: 'j',
        judgeInstructions: 'Be fair.',
      }),
    ).toEqual({ samples: 2, select: 'judge', judgeModel: 'j', judgeInstructions: 'Be fair.' });
  });

  it('refuses --select or judge flags without samples to choose from', () => {
    expect(usageError(() => resolveSampling({ select: 'vote' })).message).toContain(
      '--select vote needs --samples 2 or more',
    );
    expect(usageError(() => resolveSampling({ samples: 1, select: 'judge' })).message).toContain(
      '--select judge needs --samples 2 or more',
    );
    expect(usageError(() => resolveSampling({ judgeModel: 'j' })).message).toContain(
      '--judge-model',
    );
  });

  it('refuses judge flags with another --select', () => {
    expect(usageError(() => resolveSampling({ samples: 3, judgeModel: 'j' })).message).toContain(
      'not --select all',
    );
    expect(
      usageError(() => resolveSampling({ samples: 3, select: 'vote', judgeInstructions: 'x' }))
        .message,
    ).toContain('not --select vote');
  });

  it('refuses sample counts that are not positive integers or over the cap', () => {
    for (const samples of [0, -1, 2.5, Number.NaN]) {
      expect(usageError(() => resolveSampling({ samples })).message).toContain('--samples');
    }
    expect(usageError(() => resolveSampling({ samples: 129 })).message).toContain('at most 128');
    expect(resolveSampling({ samples: 128 })?.samples).toBe(128);
  });

  it('refuses empty judge settings', () => {
    expect(
      usageError(() => resolveSampling({ samples: 2, select: 'judge', judgeModel: ' ' })).message,
    ).toContain('--judge-model');
  });

  it('describes the settings as flags', () => {
    expect(describeSampling(undefined)).toBe('one request per line');
    expect(describeSampling(resolveSampling({ samples: 5, select: 'vote' }))).toBe(
      '--samples 5 --select vote',
    );
    expect(
      describeSampling(resolveSampling({ samples: 2, select: 'judge', judgeModel: 'big' })),
    ).toBe('--samples 2 --select judge --judge-model big');
  });
});

describe('lines under --samples', () => {
  const parse = (value: unknown, select: 'all' | 'vote' | 'judge') =>
    parseBatchLine(
      { lineNo: 4, offset: 90, text: JSON.stringify(value) },
      { sampling: { samples: 3, select } },
    );
  const chat = (body: Record<string, unknown>) => ({
    custom_id: 'c',
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'm', messages: [{ role: 'user', content: 'x' }], ...body },
  });

  it('refuses /v1/responses lines (their answers are not chat choices to merge)', () => {
    const batch = parse(
      { custom_id: 'r', method: 'POST', url: '/v1/responses', body: { model: 'm', input: 'x' } },
      'all',
    );
    expect(batch.ok).toBe(false);
    if (!batch.ok) expect(batch.issue.code).toBe('VOLLEY_INPUT_SAMPLES_UNSUPPORTED');
  });

  it('refuses embeddings, naming the line and the field', () => {
    const batch = parse(
      { custom_id: 'e', method: 'POST', url: '/v1/embeddings', body: { model: 'm', input: 'x' } },
      'all',
    );
    expect(batch.ok).toBe(false);
    if (!batch.ok) {
      expect(batch.issue.code).toBe('VOLLEY_INPUT_SAMPLES_UNSUPPORTED');
      expect(batch.issue.message).toMatch(/^line 4: "url" \/v1\/embeddings cannot be sampled/);
      expect(batch.issue.customId).toBe('e');
    }
    const convenience = parse({ custom_id: 'e', model: 'm', input: 'x' }, 'vote');
    expect(!convenience.ok && convenience.issue.message).toMatch(/^line 4: "input"/);
  });

  it('refuses n > 1 under vote and judge, not under all', () => {
    for (const select of ['vote', 'judge'] as const) {
      const result = parse(chat({ n: 2 }), select);
      expect(!result.ok && result.issue.message).toContain(`"body.n" is 2, but --select ${select}`);
    }
    expect(parse(chat({ n: 2 }), 'all').ok).toBe(true);
    expect(parse(chat({ n: 1 }), 'vote').ok).toBe(true);
  });

  it('accepts chat and completion lines', () => {
    expect(parse(chat({}), 'judge').ok).toBe(true);
    expect(
      parse(
        {
          custom_id: 'p',
          method: 'POST',
          url: '/v1/completions',
          body: { model: 'm', prompt: 'x' },
        },
        'vote',
      ).ok,
    ).toBe(true);
  });
});
