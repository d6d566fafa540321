import { describe, expect, it } from 'vitest';
import { filePrompts, syntheticPrompts, tokenCounter } from '../src/dataset.js';

const base = {
  endpoint: 'chat' as const,
  outputLen: 64,
  inputDistribution: 'fixed' as const,
  outputDistribution: 'fixed' as const,
  rangeRatio: 0,
  stddevRatio: 0,
  seed: 5,
  model: 'm',
  stream: true,
  ignoreEos: true,
};

describe('datasets', () => {
  it('synthetic prompts have the asked token length, counted with gpt-tokenizer, and repeat with the seed', async () => {
    const a = await syntheticPrompts({ ...base, count: 5, inputLen: 200 });
    const b = await syntheticPrompts({ ...base, count: 5, inputLen: 200 });
    const count = await tokenCounter();
    for (const p of a) {
      const body = JSON.parse(p.body) as {
        messages: Array<{ content: string }>;
        max_tokens: number;
        stream: boolean;
        stream_options: unknown;
        ignore_eos: boolean;
        model: string;
      };
      expect(p.promptTokens).toBe(200);
      expect(count(body.messages[0]?.content as string)).toBe(200);
      expect(body).toMatchObject({
        model: 'm',
        max_tokens: 64,
        stream: true,
        stream_options: { include_usage: true },
        ignore_eos: true,
      });
      expect(p.path).toBe('/chat/completions');
    }
    expect(a.map((p) => p.body)).toEqual(b.map((p) => p.body));
    expect(new Set(a.map((p) => p.body)).size).toBe(5);
  });

  it('uniform and normal lengths spread around the length', async () => {
    const uniform = await syntheticPrompts({
      ...base,
      count: 200,
      inputLen: 100,
      inputDistribution: 'uniform',
      rangeRatio: 0.5,
      outputDistribution: 'uniform',
    });
    const lens = uniform.map((p) => p.promptTokens);
    expect(Math.min(...lens)).toBeGreaterThanOrEqual(50);
    expect(Math.max(...lens)).toBeLessThanOrEqual(150);
    expect(Math.max(...lens) - Math.min(...lens)).toBeGreaterThan(60);
    const normal = await syntheticPrompts({
      ...base,
      count: 300,
      inputLen: 100,
      inputDistribution: 'normal',
      stddevRatio: 0.2,
      outputLen: 8,
      endpoint: 'completions',
    });
    const mean = normal.reduce((s, p) => s + p.promptTokens, 0) / normal.length;
    expect(mean).toBeGreaterThan(95);
    expect(mean).toBeLessThan(105);
    expect((JSON.parse(normal[0]?.body as string) as { prompt: unknown }).prompt).toEqual(
      expect.any(String),
    );
    expect(normal[0]?.path).toBe('/completions');
  });

  it('file requests keep their own max_tokens and refuse endpoints that cannot be benchmarked', async () => {
    const prompts = await filePrompts(
      [
        {
          url: '/v1/chat/completions',
          body: { model: 'x', messages: [{ role: 'user', content: 'hi there' }], max_tokens: 7 },
          where: 'line 1',
        },
      ],
      { model: 'm', stream: false, ignoreEos: false, outputLen: 99 },
    );
    expect(JSON.parse(prompts[0]?.body as string)).toEqual({
      model: 'x',
      messages: [{ role: 'user', content: 'hi there' }],
      max_tokens: 7,
    });
    await expect(
      filePrompts([{ url: '/v1/embeddings', body: { input: 'x' }, where: 'data.jsonl line 3' }], {
        model: 'm',
        stream: true,
        ignoreEos: false,
      }),
    ).rejects.toThrow(/data.jsonl line 3: "url" "\/v1\/embeddings" cannot be benchmarked/);
  });
});
