import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';
import {
  createSimulator,
  estimatePromptTokens,
  type Simulator,
  simulatedChatContent,
  simulatedCompletionText,
  simulatedEmbedding,
} from '@volley/sim';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers.js';

// The official SDK, unchanged, against the simulator: if this passes, the wire format is right.
describe('the OpenAI SDK against @volley/sim', () => {
  let sim: Simulator;
  let client: OpenAI;
  beforeAll(async () => {
    sim = await createSimulator();
    client = new OpenAI({ baseURL: sim.url, apiKey: 'test', maxRetries: 0 });
  });
  afterAll(() => sim.close());

  it('runs a chat completion', async () => {
    const body = {
      model: 'volley-sim-1',
      messages: [{ role: 'user' as const, content: 'Hello from the SDK' }],
      n: 2,
    };
    const res = await client.chat.completions.create(body);
    expect(res.choices.map((c) => c.message.content)).toEqual([
      simulatedChatContent(body, 0).content,
      simulatedChatContent(body, 1).content,
    ]);
    expect(res.usage?.prompt_tokens).toBe(estimatePromptTokens(body));
    expect(res.usage?.total_tokens).toBe(
      estimatePromptTokens(body) +
        simulatedChatContent(body, 0).completionTokens +
        simulatedChatContent(body, 1).completionTokens,
    );
  });

  it('streams a chat completion that reassembles to the same content', async () => {
    const body = {
      model: 'volley-sim-1',
      messages: [{ role: 'user' as const, content: 'Stream from the SDK' }],
      max_tokens: 12,
    };
    const stream = await client.chat.completions.create({
      ...body,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    const expected = simulatedChatContent(body);
    expect(text).toBe(expected.content);
    expect(finish).toBe(expected.finishReason);
    expect(usage?.completion_tokens).toBe(expected.completionTokens);
  });

  it('gets embeddings through the default base64 path equal to simulatedEmbedding', async () => {
    const input = ['embed me', 'and me'];
    const res = await client.embeddings.create({ model: 'volley-sim-embed-1', input });
    expect(sim.requests.at(-1)?.body).toMatchObject({ encoding_format: 'base64' });
    for (const [i, text] of input.entries()) {
      expect(Float32Array.from(res.data[i]!.embedding)).toEqual(
        simulatedEmbedding(text, 'volley-sim-embed-1', 1536),
      );
    }
    const floats = await client.embeddings.create({
      model: 'volley-sim-embed-1',
      input: 'x',
      encoding_format: 'float',
      dimensions: 64,
    });
    expect(Float32Array.from(floats.data[0]!.embedding)).toEqual(
      simulatedEmbedding('x', 'volley-sim-embed-1', 64),
    );
  });

  it('runs a legacy completion', async () => {
    const body = { model: 'volley-sim-1', prompt: 'The SDK says' };
    const res = await client.completions.create(body);
    expect(res.choices[0]?.text).toBe(simulatedCompletionText(body).content);
  });

  it('lists models', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(['volley-sim-1', 'volley-sim-embed-1']);
  });

  it('surfaces simulated errors as the SDK error classes', async () => {
    const call = client.chat.completions.create(
      { model: 'volley-sim-1', messages: [{ role: 'user', content: 'x' }] },
      { headers: { 'x-volley-sim-fault': 'status-429' } },
    );
    await expect(call).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    await expect(
      client.chat.completions.create(
        { model: 'volley-sim-1', messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'x-volley-sim-fault': 'status-400-context-length' } },
      ),
    ).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
  });
});

// The same SDK against `volley sim` running as its own process, as a user would start it.
describe('the OpenAI SDK against the `volley sim` command', () => {
  let child: ChildProcessWithoutNullStreams;
  let client: OpenAI;
  beforeAll(async () => {
    child = spawn(process.execPath, [CLI, 'sim', '--port', '0'], {
      env: { PATH: process.env.PATH ?? '' },
    });
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.setEncoding('utf8').once('data', (line: string) => resolve(line.trim()));
      child.once('exit', (code) => reject(new Error(`volley sim exited with ${code}`)));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    client = new OpenAI({ baseURL: url, apiKey: 'test', maxRetries: 0 });
  });
  afterAll(async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    await exited;
  });

  it('serves chat, streaming chat and embeddings', async () => {
    const body = {
      model: 'volley-sim-1',
      messages: [{ role: 'user' as const, content: 'over the wire' }],
    };
    const expected = simulatedChatContent(body).content;
    expect((await client.chat.completions.create(body)).choices[0]?.message.content).toBe(expected);
    let streamed = '';
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) {
      streamed += chunk.choices[0]?.delta.content ?? '';
    }
    expect(streamed).toBe(expected);
    const embedding = await client.embeddings.create({
      model: 'volley-sim-embed-1',
      input: 'vector me',
      dimensions: 32,
    });
    expect(embedding.data[0]?.embedding).toEqual(
      Array.from(simulatedEmbedding('vector me', 'volley-sim-embed-1', 32)),
    );
  });
});
