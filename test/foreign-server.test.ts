/**
 * Volley against an OpenAI-compatible server that is not its own simulator (fixtures/quirky-server).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVolley } from 'volley';
import type { QuirkyServer } from './fixtures/quirky-server.js';
import { quirkyVector, reverseAnswer, startQuirkyServer } from './fixtures/quirky-server.js';
import { runCli, tempDir } from './helpers.js';

describe('a foreign OpenAI-compatible server', () => {
  let server: QuirkyServer;
  beforeAll(async () => {
    server = await startQuirkyServer();
  });
  afterAll(() => server.close());

  it('volley run writes one single-line record per custom_id from pretty-printed bodies', async () => {
    await using dir = await tempDir();
    const prompts = Array.from({ length: 300 }, (_, i) => `question number ${i}`);
    await writeFile(
      dir.file('in.jsonl'),
      prompts.map((prompt, i) => JSON.stringify({ custom_id: `q${i}`, prompt })).join('\n'),
    );
    const result = await runCli([
      'run',
      dir.file('in.jsonl'),
      '-o',
      dir.file('out.jsonl'),
      '--base-url',
      server.url,
      '--model',
      'local-model',
      '--progress',
      'none',
    ]);
    expect(result.code).toBe(0);
    const lines = (await readFile(dir.file('out.jsonl'), 'utf8')).split('\n').filter(Boolean);
    expect(lines).toHaveLength(prompts.length);
    for (const line of lines) {
      const record = JSON.parse(line) as {
        custom_id: string;
        response: { body: { choices: Array<{ message: { content: string } }> } };
      };
      const prompt = prompts[Number(record.custom_id.slice(1))] as string;
      expect(record.response.body.choices[0]?.message.content).toBe(reverseAnswer({ prompt }));
    }
  });

  it.each(['async', 'threads'] as const)(
    'streams with CRLF events and no usage chunk (%s)',
    async (mode) => {
      const volley = await createVolley({
        mode,
        endpoints: [{ baseUrl: server.url }],
        model: 'local-model',
      });
      try {
        const deltas: string[] = [];
        const content = 'streaming through a foreign server';
        const reply = await volley.chat(
          { messages: [{ role: 'user', content }] },
          { onDelta: (d) => deltas.push(d.content) },
        );
        expect(deltas.join('')).toBe(reverseAnswer({ prompt: content }));
        expect(reply.choices[0]?.message.content).toBe(reverseAnswer({ prompt: content }));
        expect(reply.choices[0]?.finish_reason).toBe('stop');
        expect(reply.usage).toBeUndefined();
      } finally {
        await volley.close();
      }
    },
  );

  it.each(['async', 'threads'] as const)(
    'falls back to float embeddings when encoding_format is ignored (%s)',
    async (mode) => {
      const volley = await createVolley({
        mode,
        endpoints: [{ baseUrl: server.url }],
        model: 'local-embed',
      });
      try {
        const inputs = ['a', 'bb', 'ccc'];
        const result = await volley.embed(inputs);
        expect(result.matrix.serverSentFloats).toBe(true);
        for (const [i, text] of inputs.entries()) {
          expect(Array.from(result.vectors[i] ?? [])).toEqual(quirkyVector(text));
        }
      } finally {
        await volley.close();
      }
    },
  );

  it('never prints a key, even one the server echoes back in its 401', async () => {
    await using dir = await tempDir();
    await writeFile(dir.file('in.jsonl'), `${JSON.stringify({ custom_id: 'a', prompt: 'hi' })}\n`);
    const canary = 'sk-canary-echoed-back-0123456789';
    const result = await runCli(
      [
        'run',
        dir.file('in.jsonl'),
        '-o',
        dir.file('out.jsonl'),
        '-e',
        dir.file('err.jsonl'),
        '--base-url',
        server.url,
        '--model',
        'wrong-key-model',
        '--progress',
        'plain',
        '--json',
      ],
      { OPENAI_API_KEY: canary, VOLLEY_LOG_LEVEL: 'debug' },
    );
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('Incorrect API key provided');
    const files = [
      await readFile(dir.file('out.jsonl'), 'utf8'),
      await readFile(dir.file('err.jsonl'), 'utf8'),
    ];
    for (const text of [result.stdout, result.stderr, ...files]) expect(text).not.toContain(canary);
  });
});
