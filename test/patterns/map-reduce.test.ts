/**
 * mapReduce against a real simulator, in both modes: 200 chunks with 10% of the branches failing
 * (non-retryable 400s), outputs in input order, the quorum deciding whether aggregation runs,
 * hierarchical prompt aggregation, and token splitting with overlap.
 */
import { loadTokenCounter } from '@volley/core';
import { describe, expect, it } from 'vitest';
import type { ChatClient, MapReduceBranch } from 'volley';
import {
  concatOutputs,
  ErrorCode,
  mapReduce,
  mergeJsonOutputs,
  PatternError,
  PatternErrorCode,
  splitByTokens,
  voteOutputs,
} from 'volley';
import {
  codeOf,
  lastMessage,
  limiterIdle,
  MODES,
  parity,
  rig,
  sleep,
  waitFor,
  words,
} from './helpers.js';

const modes = parity();

const CHUNKS = Array.from({ length: 200 }, (_, i) => `chunk ${i}: notes about otter colony ${i}`);
/** Branches whose chunk index ends in 3 fail: 20 of 200, 10%. */
const failing = (i: number): boolean => i % 10 === 3;
const BRANCH = 'Summarise in one line.\n\n{input}';

/** Branch answers name their chunk; aggregation answers count the outputs they were given. */
function script({ body }: { body: unknown }): string | undefined {
  const text = lastMessage(body);
  const chunk = /^Summarise in one line\.\n\nchunk (\d+):/.exec(text);
  if (chunk !== null) return `summary ${chunk[1]}`;
  if (text.startsWith('Combine') || text.startsWith('Collapse')) {
    return `combined ${(text.match(/^\[\d+\]/gm) ?? []).length} outputs`;
  }
  return undefined;
}

function faultFor({ body }: { body: unknown }): 'status-400-context-length' | undefined {
  const chunk = /^Summarise in one line\.\n\nchunk (\d+):/.exec(lastMessage(body));
  return chunk !== null && failing(Number(chunk[1])) ? 'status-400-context-length' : undefined;
}

const expectedOutputs = CHUNKS.map((_, i) => (failing(i) ? undefined : `summary ${i}`));

describe.each(MODES)('mapReduce (%s mode)', (mode) => {
  it('aggregates 200 chunks when 180 succeed and the quorum is 90%', async () => {
    await using r = await rig(mode, { script, faultFor }, { concurrency: 32 });
    const result = await mapReduce(r.volley, {
      chunks: CHUNKS,
      branch: BRANCH,
      aggregate: concatOutputs('\n'),
      quorum: { fraction: 0.9 },
    });
    expect(result.outputs).toEqual(expectedOutputs);
    expect(result.succeeded).toBe(180);
    expect(result.required).toBe(180);
    expect(result.errors.map((e) => e.index)).toEqual(
      CHUNKS.flatMap((_, i) => (failing(i) ? [i] : [])),
    );
    for (const { error } of result.errors) {
      expect(codeOf(error)).toBe(ErrorCode.HTTP);
      expect((error as { status?: number }).status).toBe(400);
    }
    expect(result.aggregated).toBe(expectedOutputs.filter((o) => o !== undefined).join('\n'));
    expect(result.aggregation).toEqual({ calls: 0, levels: 0 });
    expect(result.cost.calls).toBe(180);
    // A 400 is never retried: exactly one request per chunk reached the server.
    expect(r.log()).toHaveLength(200);
    modes.record(mode, 'quorum holds', {
      outputs: result.outputs,
      errors: result.errors.map((e) => [e.index, codeOf(e.error)]),
      aggregated: result.aggregated,
    });
  });

  it('refuses to aggregate below the quorum, cancelling the branches that can no longer help', async () => {
    await using r = await rig(mode, { script, faultFor }, { concurrency: 32 });
    let aggregated = false;
    const error = await mapReduce(r.volley, {
      chunks: CHUNKS,
      branch: BRANCH,
      aggregate: () => {
        aggregated = true;
        return 'never';
      },
      quorum: 190,
      // One branch at a time makes the stopping point exact: the 11th failure is chunk 103.
      concurrency: 1,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PatternError);
    expect(codeOf(error)).toBe(PatternErrorCode.QUORUM_NOT_MET);
    const refused = error as PatternError;
    expect(refused.required).toBe(190);
    expect(refused.total).toBe(200);
    expect(refused.succeeded).toBe(93);
    expect(refused.outputs).toEqual(expectedOutputs.map((o, i) => (i <= 103 ? o : undefined)));
    // Every chunk without an output is listed: 11 real failures, then 96 never started.
    expect(refused.errors.map((e) => e.index)).toEqual(
      CHUNKS.flatMap((_, i) => (failing(i) || i > 103 ? [i] : [])),
    );
    const codes = refused.errors.map((e) => codeOf(e.error));
    expect(codes.filter((c) => c === ErrorCode.HTTP)).toHaveLength(11);
    expect(codes.filter((c) => c === ErrorCode.ABORTED)).toHaveLength(96);
    expect(r.log()).toHaveLength(104);
    expect(aggregated).toBe(false);
    modes.record(mode, 'quorum fails', [refused.succeeded, refused.outputs, codes]);
  });

  it('aborts the branches in flight as soon as the quorum is lost', async () => {
    // The failing chunks answer at once; the others take 2 s at 20 tokens/s.
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 20 },
      script: () => words('slow', 40),
      faultFor,
    });
    // The failing chunks are sent 50 ms late, so the cancels find the other requests on the wire
    // (a cancel issued within a few ms of dispatch can be lost in threads mode: see helpers.ts).
    const client: ChatClient = {
      chat: async (request, options) => {
        if (/chunk (3|13):/.test(lastMessage(request))) await sleep(50);
        return r.volley.chat(request, options);
      },
    };
    const started = Date.now();
    const error = await mapReduce(client, {
      chunks: CHUNKS.slice(0, 20),
      branch: BRANCH,
      aggregate: concatOutputs(),
      quorum: 19, // chunks 3 and 13 fail: one failure too many
    }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(codeOf(error)).toBe(PatternErrorCode.QUORUM_NOT_MET);
    const log = await waitFor(() => {
      const entries = r.log();
      return entries.length === 20 && entries.every((e) => e.finishedAt !== undefined) && entries;
    });
    expect(log.filter((e) => e.aborted)).toHaveLength(18);
    await limiterIdle(r.volley);
    // The default quorum is all of them.
    r.sim.setOptions({ latency: {} });
    const strict = await mapReduce(r.volley, {
      chunks: CHUNKS.slice(0, 10),
      branch: BRANCH,
      aggregate: concatOutputs(),
    }).catch((e: unknown) => e);
    expect(codeOf(strict)).toBe(PatternErrorCode.QUORUM_NOT_MET);
    modes.record(mode, 'quorum lost', codeOf(error));
  });

  it('aggregates with a prompt hierarchically when the outputs do not fit one call', async () => {
    await using r = await rig(mode, { script, faultFor }, { concurrency: 32 });
    const chunks = CHUNKS.filter((_, i) => !failing(i)).slice(0, 40);
    const result = await mapReduce(r.volley, {
      chunks,
      branch: BRANCH,
      aggregate: {
        prompt: 'Combine these summaries:\n\n{input}',
        collapsePrompt: 'Collapse these summaries:\n\n{input}',
        maxInputTokens: 60,
        request: { model: 'cheap-aggregator', max_tokens: 20 },
      },
    });
    expect(result.aggregation.levels).toBeGreaterThanOrEqual(2);
    const aggregationCalls = r.log().filter((entry) => {
      const text = lastMessage(entry.body);
      return text.startsWith('Combine') || text.startsWith('Collapse');
    });
    expect(aggregationCalls).toHaveLength(result.aggregation.calls);
    expect(result.aggregation.calls).toBeGreaterThan(2);
    for (const entry of aggregationCalls) {
      expect((entry.body as { model: string }).model).toBe('cheap-aggregator');
    }
    // Exactly one final call, and it saw the collapsed results, not the 40 raw outputs.
    const finals = aggregationCalls.filter((e) => lastMessage(e.body).startsWith('Combine'));
    expect(finals).toHaveLength(1);
    const finalInput = lastMessage(finals[0]?.body);
    expect(finalInput).toContain('combined');
    expect(finalInput).not.toContain('summary 0');
    expect(result.aggregated).toMatch(/^combined \d+ outputs$/);
    // Every level's groups covered every item: the collapse calls saw all 40 outputs once.
    const level1 = aggregationCalls
      .map((e) => lastMessage(e.body))
      .filter((t) => t.startsWith('Collapse') && t.includes('summary'));
    const seen = level1.flatMap((t) => t.match(/summary \d+/g) ?? []);
    expect(seen.sort()).toEqual(chunks.map((c) => `summary ${/\d+/.exec(c)?.[0]}`).sort());
    modes.record(mode, 'hierarchical', [result.aggregated, result.aggregation]);
  });

  it('splits a long text by tokens with overlap and maps over the pieces', async () => {
    await using r = await rig(mode);
    const text = Array.from({ length: 300 }, (_, i) => `word${i}`).join(' ');
    const result = await mapReduce(r.volley, {
      text,
      split: { chunkTokens: 100, overlapTokens: 20, countTokens: wordCount },
      branch: (chunk) => ({
        messages: [{ role: 'user', content: `Echo: ${chunk}` }],
        max_tokens: 5,
      }),
      aggregate: (branches) => branches.length,
    });
    expect(result.chunks.length).toBe(4);
    expect(result.aggregated).toBe(4);
    expect(r.log().map((e) => lastMessage(e.body).slice(6, 20))).toEqual(
      expect.arrayContaining(result.chunks.map((c) => c.slice(0, 14))),
    );
    modes.record(mode, 'split', result.outputs);
  });

  it('a caller abort cancels the branches at the server and rejects with VOLLEY_ERR_ABORTED', async () => {
    await using r = await rig(mode, {
      latency: { tokensPerSecond: 20 },
      script: () => words('slow', 100),
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 150);
    const error = await mapReduce(r.volley, {
      chunks: ['a', 'b', 'c', 'd'],
      branch: 'Summarise {input}',
      aggregate: concatOutputs(),
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(codeOf(error)).toBe(ErrorCode.ABORTED);
    const log = await waitFor(() => {
      const entries = r.log();
      return entries.length === 4 && entries.every((e) => e.finishedAt !== undefined) && entries;
    });
    expect(log.every((entry) => entry.aborted)).toBe(true);
    await limiterIdle(r.volley);
    modes.record(mode, 'abort', codeOf(error));
  });

  it('a failing aggregation keeps the outputs on a coded error', async () => {
    await using r = await rig(mode, { script });
    const error = await mapReduce(r.volley, {
      chunks: CHUNKS.slice(0, 3),
      branch: BRANCH,
      aggregate: mergeJsonOutputs(),
    }).catch((e: unknown) => e);
    expect(codeOf(error)).toBe(PatternErrorCode.AGGREGATION_FAILED);
    expect((error as PatternError).outputs).toEqual(['summary 0', 'summary 1', 'summary 2']);
    modes.record(mode, 'aggregation fails', (error as PatternError).outputs);
  });
});

describe('both modes', () => {
  it('give the same results', () => {
    modes.check();
  });
});

const wordCount = (text: string): number => text.split(/\s+/).filter(Boolean).length;

describe('splitByTokens', () => {
  it('cuts between words with the requested overlap', async () => {
    const text = Array.from({ length: 25 }, (_, i) => `w${i}`).join(' ');
    const chunks = await splitByTokens(text, {
      chunkTokens: 10,
      overlapTokens: 3,
      countTokens: wordCount,
    });
    expect(chunks).toEqual([
      'w0 w1 w2 w3 w4 w5 w6 w7 w8 w9',
      'w7 w8 w9 w10 w11 w12 w13 w14 w15 w16',
      'w14 w15 w16 w17 w18 w19 w20 w21 w22 w23',
      'w21 w22 w23 w24',
    ]);
  });

  it('keeps every chunk within the budget of the real tokenizer and loses no text', async () => {
    const count = await loadTokenCounter();
    const text = Array.from(
      { length: 400 },
      (_, i) => `Sentence ${i} talks about rivers, otters and the 1990s.`,
    ).join(' ');
    const chunks = await splitByTokens(text, { chunkTokens: 120, overlapTokens: 0 });
    for (const chunk of chunks) expect(count(chunk)).toBeLessThanOrEqual(120);
    expect(chunks.join(' ')).toBe(text);
  });

  it('cuts a word longer than a chunk', async () => {
    const chunks = await splitByTokens(`short ${'x'.repeat(50)} tail`, {
      chunkTokens: 10,
      countTokens: (t) => t.trim().length,
    });
    for (const chunk of chunks) expect(chunk.trim().length).toBeLessThanOrEqual(10);
    expect(chunks.join('').replace(/\s/g, '')).toBe(`short${'x'.repeat(50)}tail`);
  });

  it('rejects an overlap as large as the chunk', async () => {
    await expect(
      splitByTokens('a b c', { chunkTokens: 2, overlapTokens: 2, countTokens: wordCount }),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_OPTIONS });
  });
});

describe('code aggregators', () => {
  const branches = (outputs: string[]): MapReduceBranch[] =>
    outputs.map((output, index) => ({ index, chunk: `c${index}`, output }));

  it('voteOutputs picks the most common normalised output', async () => {
    expect(await voteOutputs()(branches(['Yes.', 'no', '**YES**', 'maybe']))).toBe('yes');
    expect(await voteOutputs()(branches([]))).toBeUndefined();
  });

  it('mergeJsonOutputs merges objects, concatenates arrays without repeats, first value wins', async () => {
    const merged = await mergeJsonOutputs()(
      branches([
        '{"people":["Ada"],"company":"Acme","meta":{"pages":1}}',
        '```json\n{"people":["Ada","Grace"],"company":"Other","meta":{"lang":"en"}}\n```',
        '{"__proto__":{"polluted":true},"places":["Oslo"]}',
      ]),
    );
    expect(merged).toEqual({
      people: ['Ada', 'Grace'],
      company: 'Acme',
      meta: { pages: 1, lang: 'en' },
      places: ['Oslo'],
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('mapReduce options', () => {
  it('rejects a quorum larger than the chunks before any call', async () => {
    let calls = 0;
    const client = {
      chat: () => {
        calls++;
        return Promise.reject(new Error('unreachable'));
      },
    };
    await expect(
      mapReduce(client, {
        chunks: ['a'],
        branch: '{input}',
        aggregate: concatOutputs(),
        quorum: 2,
      }),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_OPTIONS });
    expect(calls).toBe(0);
  });
});
