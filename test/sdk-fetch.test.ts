/**
 * The SDKs people use, unchanged, with `volley.fetch` as their transport, against a simulator
 * that enforces a low RPM limit and answers 429 beyond it. The claims: no 429 reaches the SDK,
 * the simulator's own log shows the limit held (Volley paced the calls), streams arrive as they
 * are generated, and errors Volley gave up on are not retried again by the SDK.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOpenAI } from '@ai-sdk/openai';
import type { SimRequestLogEntry, Simulator } from '@volley/sim';
import {
  createSimulator,
  simulatedChatContent,
  simulatedCompletionText,
  simulatedEmbedding,
} from '@volley/sim';
import { embedMany, generateText, jsonSchema, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Volley } from 'volley';
import { createVolley, ErrorCode } from 'volley';

const MODEL = 'volley-sim-1';
const EMBED_MODEL = 'volley-sim-embed-1';
/** 10 requests a second, a burst of 10: the calls below exceed it several times over. */
const RPM = 600;
const CALLS = 30;

function body(i: number) {
  return {
    model: MODEL,
    messages: [{ role: 'user' as const, content: `sdk call ${i}` }],
    max_tokens: 8,
  };
}

/**
 * The limit held when no second of the log admitted more than the simulator's bucket allows
 * (one second of refill on top of a one-second burst) and the 429s it had to answer were few:
 * Volley waited for capacity instead of spending attempts on refusals.
 */
function expectLimitHeld(sim: Simulator, accepted: number): void {
  const log = sim.requests.filter((entry) => entry.path !== '/v1/models');
  const ok = log.filter((entry) => entry.status === 200);
  expect(ok).toHaveLength(accepted);
  const perSecond = RPM / 60;
  const times = ok.map((entry) => entry.receivedAt).sort((a, b) => a - b);
  const spanSeconds = ((times.at(-1) ?? 0) - (times[0] ?? 0)) / 1000;
  expect(accepted).toBeLessThanOrEqual(perSecond + perSecond * spanSeconds + 1);
  expect(spanSeconds).toBeGreaterThanOrEqual((accepted - 2 * perSecond) / perSecond);
  expect(log.filter((entry) => entry.status === 429).length).toBeLessThanOrEqual(accepted / 5);
}

function statuses(log: readonly SimRequestLogEntry[]): number[] {
  return log.map((entry) => entry.status);
}

describe('volley.fetch under the openai SDK and the AI SDK, against a rate-limited simulator', () => {
  let sim: Simulator;
  let volley: Volley;
  beforeEach(async () => {
    sim = await createSimulator({ limits: { rpm: RPM } });
    volley = await createVolley({
      endpoints: [{ baseUrl: sim.url, rpm: RPM }],
      concurrency: 16,
      logger: false,
    });
  });
  afterEach(async () => {
    await volley.close();
    await sim.close();
  });

  it('the same calls without Volley get 429s from the simulator (the limit is real)', async () => {
    const direct = new OpenAI({ baseURL: sim.url, apiKey: 'unused', maxRetries: 0 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: CALLS }, (_, i) => direct.chat.completions.create(body(i))),
    );
    const refused = outcomes.filter(
      (outcome) =>
        outcome.status === 'rejected' && (outcome.reason as { status?: number }).status === 429,
    );
    expect(refused.length).toBeGreaterThanOrEqual(CALLS / 3);
  });

  it('openai SDK chat: every call answered, no 429 to the caller, the limit held', async () => {
    const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const replies = await Promise.all(
      Array.from({ length: CALLS }, (_, i) => client.chat.completions.create(body(i))),
    );
    replies.forEach((reply, i) => {
      expect(reply.choices[0]?.message.content).toBe(simulatedChatContent(body(i)).content);
    });
    expectLimitHeld(sim, CALLS);
  });

  it('openai SDK streaming chat: deltas reassemble to the answer, with finish reason and usage', async () => {
    const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const streamed = await Promise.all(
      Array.from({ length: CALLS }, async (_, i) => {
        const stream = await client.chat.completions.create({
          ...body(i),
          stream: true,
          stream_options: { include_usage: true },
        });
        let text = '';
        let chunks = 0;
        let finish: string | null = null;
        let usage: OpenAI.CompletionUsage | null | undefined;
        for await (const chunk of stream) {
          chunks++;
          text += chunk.choices[0]?.delta.content ?? '';
          finish = chunk.choices[0]?.finish_reason ?? finish;
          usage = chunk.usage ?? usage;
        }
        return { text, chunks, finish, usage };
      }),
    );
    streamed.forEach(({ text, chunks, finish, usage }, i) => {
      const expected = simulatedChatContent(body(i));
      expect(text).toBe(expected.content);
      expect(chunks).toBeGreaterThan(2);
      expect(finish).toBe(expected.finishReason);
      expect(usage?.completion_tokens).toBe(expected.completionTokens);
    });
    expect(sim.requests.every((entry) => entry.stream)).toBe(true);
    expectLimitHeld(sim, CALLS);
  });

  it('openai SDK embeddings: the vectors the simulator made, the limit held', async () => {
    const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const results = await Promise.all(
      Array.from({ length: CALLS }, (_, i) =>
        client.embeddings.create({ model: EMBED_MODEL, input: [`text ${i}`] }),
      ),
    );
    results.forEach((result, i) => {
      expect(Float32Array.from(result.data[0]?.embedding ?? [])).toEqual(
        simulatedEmbedding(`text ${i}`, EMBED_MODEL, 1536),
      );
    });
    expectLimitHeld(sim, CALLS);
  });

  it('AI SDK generateText, streamText and embedMany: every call answered, the limit held', async () => {
    const openai = createOpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const prompt = (i: number) => `ai sdk call ${i}`;
    const generated = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        generateText({
          model: openai.chat(MODEL),
          prompt: prompt(i),
          maxOutputTokens: 8,
          maxRetries: 0,
        }),
      ),
    );
    const streamed = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const result = streamText({
          model: openai.chat(MODEL),
          prompt: prompt(i),
          maxOutputTokens: 8,
          maxRetries: 0,
        });
        let parts = 0;
        for await (const part of result.textStream) if (part.length > 0) parts++;
        return { parts, text: await result.text, usage: await result.usage };
      }),
    );
    const embedded = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        embedMany({
          model: openai.embedding(EMBED_MODEL),
          values: [`a ${i}`, `b ${i}`],
          maxRetries: 0,
        }),
      ),
    );
    for (const [i, result] of generated.entries()) {
      const expected = simulatedChatContent({
        model: MODEL,
        messages: [{ role: 'user', content: prompt(i) }],
        max_tokens: 8,
      });
      expect(result.text).toBe(expected.content);
      expect(streamed[i]?.text).toBe(expected.content);
      expect(streamed[i]?.parts).toBeGreaterThan(1);
      expect(streamed[i]?.usage.outputTokens).toBe(expected.completionTokens);
    }
    for (const [i, result] of embedded.entries()) {
      expect(Float32Array.from(result.embeddings[1] ?? [])).toEqual(
        simulatedEmbedding(`b ${i}`, EMBED_MODEL, 1536),
      );
    }
    expectLimitHeld(sim, 30);
  });
});

describe('volley.fetch under a TPM limit', () => {
  it('openai SDK chat: the simulator admitted no more tokens than its limit allows', async () => {
    const tpm = 12_000;
    const sim = await createSimulator({ limits: { tpm } });
    const volley = await createVolley({
      endpoints: [{ baseUrl: sim.url, tpm }],
      concurrency: 16,
      logger: false,
    });
    try {
      const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
      const replies = await Promise.all(
        Array.from({ length: CALLS }, (_, i) => client.chat.completions.create(body(i))),
      );
      expect(replies).toHaveLength(CALLS);
      const ok = sim.requests.filter((entry) => entry.status === 200);
      expect(ok).toHaveLength(CALLS);
      // Admission cost as the simulator counts it: prompt tokens + max_tokens.
      const admitted = replies.reduce(
        (sum, reply) => sum + (reply.usage?.prompt_tokens ?? 0) + 8,
        0,
      );
      const times = ok.map((entry) => entry.receivedAt).sort((a, b) => a - b);
      const spanSeconds = ((times.at(-1) ?? 0) - (times[0] ?? 0)) / 1000;
      const perSecond = tpm / 60;
      expect(admitted).toBeLessThanOrEqual(perSecond + perSecond * spanSeconds + 50);
      expect(sim.stats().rateLimited).toBeLessThanOrEqual(CALLS / 5);
    } finally {
      await volley.close();
      await sim.close();
    }
  });
});

describe('volley.fetch semantics', () => {
  let sim: Simulator;
  let volley: Volley;
  afterEach(async () => {
    await volley?.close();
    await sim?.close();
  });

  it('an error Volley gave up on reaches the openai SDK once, with its status, and is not retried again', async () => {
    sim = await createSimulator({ faultFor: () => 'status-500' });
    volley = await createVolley({
      endpoints: [{ baseUrl: sim.url }],
      maxRetries: 2,
      backoff: { baseDelayMs: 1, maxDelayMs: 5 },
      logger: false,
    });
    // The SDK's own default (2 retries) is left on: `x-should-retry: false` must stop it.
    const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const error = await client.chat.completions.create(body(0)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(500);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe(ErrorCode.RETRIES_EXHAUSTED);
    // Volley's three attempts, not three times three.
    expect(statuses(sim.requests)).toEqual([500, 500, 500]);
  });

  it("a client error comes back with the server's status at once", async () => {
    sim = await createSimulator({ faultFor: () => 'status-400-context-length' });
    volley = await createVolley({ endpoints: [{ baseUrl: sim.url }], logger: false });
    const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const error = await client.chat.completions
      .create({ ...body(0), stream: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(statuses(sim.requests)).toEqual([400]);
  });

  it('works the same when the HTTP runs on worker threads', async () => {
    sim = await createSimulator();
    volley = await createVolley({
      mode: 'threads',
      threads: 2,
      endpoints: [{ baseUrl: sim.url }],
      logger: false,
    });
    const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const stream = await client.chat.completions.create({ ...body(5), stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    const reply = await client.chat.completions.create(body(6));
    expect(text).toBe(simulatedChatContent(body(5)).content);
    expect(reply.choices[0]?.message.content).toBe(simulatedChatContent(body(6)).content);
    // Both threads report once started; the second may still be starting after two calls.
    await vi.waitFor(async () => expect((await volley.workerStats()).length).toBe(2), {
      timeout: 10_000,
    });
  });

  it('streams text completions (/completions) too', async () => {
    sim = await createSimulator();
    volley = await createVolley({ endpoints: [{ baseUrl: sim.url }], logger: false });
    const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const request = { model: MODEL, prompt: 'Once upon a time', max_tokens: 12 };
    const stream = await client.completions.create({ ...request, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    const expected = simulatedCompletionText(request);
    expect(text).toBe(expected.content);
    expect(finish).toBe(expected.finishReason);
  });

  it("maps the SDK's path onto Volley's endpoint whatever the SDK's base URL", async () => {
    sim = await createSimulator();
    volley = await createVolley({ endpoints: [{ baseUrl: sim.url }], logger: false });
    for (const baseURL of [
      'https://api.openai.com/v1',
      'http://volley.invalid/openai/v1',
      'http://volley.invalid',
    ]) {
      const client = new OpenAI({ baseURL, apiKey: 'unused', fetch: volley.fetch });
      await client.chat.completions.create(body(0));
    }
    expect(sim.requests.map((entry) => entry.path)).toEqual(Array(3).fill('/v1/chat/completions'));
  });

  it('passes deltas through as they are generated, not at the end', async () => {
    sim = await createSimulator({ latency: { tokensPerSecond: 40 } });
    volley = await createVolley({ endpoints: [{ baseUrl: sim.url }], logger: false });
    const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const started = performance.now();
    const stream = await client.chat.completions.create({
      ...body(0),
      max_tokens: 20,
      stream: true,
    });
    const arrivals: number[] = [];
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) arrivals.push(performance.now() - started);
    }
    // 20 tokens at 40 a second take about 500 ms: the first must arrive well before the last.
    expect(arrivals.length).toBeGreaterThan(5);
    expect((arrivals.at(-1) as number) - (arrivals[0] as number)).toBeGreaterThan(250);
  });

  it('a stream that breaks after its first delta fails the SDK stream, with no second answer spliced on', async () => {
    sim = await createSimulator({
      latency: { tokensPerSecond: 200 },
      faultFor: ({ index }) => (index === 0 ? 'reset-mid-stream' : undefined),
    });
    volley = await createVolley({
      endpoints: [{ baseUrl: sim.url }],
      backoff: { baseDelayMs: 1, maxDelayMs: 2 },
      logger: false,
    });
    const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const request = { ...body(4), max_tokens: 20 };
    const stream = await client.chat.completions.create({ ...request, stream: true });
    let text = '';
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TypeError);
    const answer = simulatedChatContent(request).content;
    expect(text.length).toBeGreaterThan(0);
    expect(answer.startsWith(text)).toBe(true);
    expect(text).not.toBe(answer);
  });

  it("the SDK's abort mid-stream aborts Volley's call and its HTTP request", async () => {
    sim = await createSimulator({ latency: { tokensPerSecond: 40 } });
    volley = await createVolley({ endpoints: [{ baseUrl: sim.url }], logger: false });
    const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { ...body(0), max_tokens: 200, stream: true },
      { signal: controller.signal },
    );
    let chunks = 0;
    // The openai SDK ends the loop quietly when its own signal aborts.
    for await (const _chunk of stream) {
      chunks++;
      controller.abort();
    }
    expect(chunks).toBeLessThan(5);
    await expect.poll(() => sim.requests[0]?.aborted).toBe(true);
    await expect.poll(() => volley.stats().inFlight).toBe(0);
  });
});

/** A model server that answers every chat call with one tool call, streamed in pieces. */
async function startToolCallServer(): Promise<{ url: string; close(): Promise<void> }> {
  const call = { id: 'call_1', type: 'function', function: { name: 'get_weather' } };
  const base = {
    id: 'chatcmpl-tool',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'tool-model',
  };
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    req.on('end', () => {
      const stream = (JSON.parse(text) as { stream?: boolean }).stream === true;
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            ...base,
            object: 'chat.completion',
            choices: [
              {
                index: 0,
                message: {
                  role: 'assistant',
                  content: null,
                  tool_calls: [
                    { ...call, function: { ...call.function, arguments: '{"city":"Oslo"}' } },
                  ],
                },
                finish_reason: 'tool_calls',
              },
            ],
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const pieces = [
        {
          role: 'assistant',
          tool_calls: [{ index: 0, ...call, function: { ...call.function, arguments: '' } }],
        },
        { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] },
        { tool_calls: [{ index: 0, function: { arguments: '"Oslo"}' } }] },
      ];
      for (const delta of pieces) {
        res.write(
          `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`,
        );
      }
      res.write(
        `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] })}\n\n`,
      );
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('volley.fetch with tool calls streamed', () => {
  it('the openai SDK and the AI SDK get the tool call of a streamed answer', async () => {
    const server = await startToolCallServer();
    const volley = await createVolley({ endpoints: [{ baseUrl: server.url }], logger: false });
    try {
      const client = new OpenAI({ apiKey: 'unused', fetch: volley.fetch });
      const stream = await client.chat.completions.create({
        model: 'tool-model',
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
        stream: true,
      });
      let name = '';
      let args = '';
      let finish: string | null = null;
      for await (const chunk of stream) {
        for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
          name += call.function?.name ?? '';
          args += call.function?.arguments ?? '';
        }
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect({ name, args: JSON.parse(args), finish }).toEqual({
        name: 'get_weather',
        args: { city: 'Oslo' },
        finish: 'tool_calls',
      });

      const openai = createOpenAI({ apiKey: 'unused', fetch: volley.fetch });
      const result = streamText({
        model: openai.chat('tool-model'),
        prompt: 'Weather in Oslo?',
        tools: {
          get_weather: tool({
            description: 'The weather in a city',
            inputSchema: jsonSchema<{ city: string }>({
              type: 'object',
              properties: { city: { type: 'string' } },
              required: ['city'],
            }),
          }),
        },
        maxRetries: 0,
      });
      const toolCalls = await result.toolCalls;
      expect(toolCalls.map((c) => [c.toolName, c.input])).toEqual([
        ['get_weather', { city: 'Oslo' }],
      ]);
      expect(await result.finishReason).toBe('tool-calls');
    } finally {
      await volley.close();
      await server.close();
    }
  });
});

describe('volley.stream', () => {
  let sim: Simulator;
  let volley: Volley;
  afterEach(async () => {
    await volley?.close();
    await sim?.close();
  });

  it('yields the deltas of the answer, then its completion', async () => {
    sim = await createSimulator();
    volley = await createVolley({ endpoints: [{ baseUrl: sim.url }], model: MODEL, logger: false });
    const stream = volley.stream({ messages: body(0).messages, max_tokens: 8 });
    let text = '';
    let deltas = 0;
    for await (const delta of stream) {
      text += delta.content;
      deltas++;
    }
    const completion = await stream.completion;
    expect(text).toBe(simulatedChatContent(body(0)).content);
    expect(completion.choices[0]?.message.content).toBe(text);
    expect(deltas).toBeGreaterThan(2);
  });

  it('a break aborts the call: the HTTP request is cancelled', async () => {
    sim = await createSimulator({ latency: { tokensPerSecond: 40 } });
    volley = await createVolley({ endpoints: [{ baseUrl: sim.url }], model: MODEL, logger: false });
    const stream = volley.stream({ messages: body(0).messages, max_tokens: 200 });
    for await (const _delta of stream) break;
    await expect(stream.completion).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    await expect.poll(() => sim.requests[0]?.aborted).toBe(true);
  });

  it('the call’s error is thrown from the loop', async () => {
    sim = await createSimulator({ faultFor: () => 'status-400-context-length' });
    volley = await createVolley({ endpoints: [{ baseUrl: sim.url }], model: MODEL, logger: false });
    const consume = async () => {
      for await (const _delta of volley.stream({ messages: body(0).messages })) {
        // nothing arrives
      }
    };
    await expect(consume()).rejects.toMatchObject({ status: 400 });
  });

  it.each(['async', 'threads'] as const)(
    'an attempt that broke before its deltas were read is retried, and its deltas dropped (%s)',
    async (mode) => {
      sim = await createSimulator({
        faultFor: ({ index }) => (index === 0 ? 'reset-mid-stream' : undefined),
      });
      volley = await createVolley({
        mode,
        endpoints: [{ baseUrl: sim.url }],
        model: MODEL,
        backoff: { baseDelayMs: 1, maxDelayMs: 2 },
        logger: false,
      });
      const request = { messages: body(2).messages, max_tokens: 20 };
      const stream = volley.stream(request);
      await stream.completion; // both attempts streamed before the loop reads anything
      let text = '';
      for await (const delta of stream) text += delta.content;
      expect(sim.requests.map((entry) => entry.fault)).toEqual(['reset-mid-stream', undefined]);
      expect(text).toBe(simulatedChatContent({ ...request, model: MODEL }).content);
    },
  );

  it('an attempt that broke after deltas were read stops the call: no second answer spliced on', async () => {
    sim = await createSimulator({
      latency: { tokensPerSecond: 200 },
      faultFor: ({ index }) => (index === 0 ? 'reset-mid-stream' : undefined),
    });
    volley = await createVolley({
      endpoints: [{ baseUrl: sim.url }],
      model: MODEL,
      backoff: { baseDelayMs: 1, maxDelayMs: 2 },
      logger: false,
    });
    const request = { messages: body(3).messages, max_tokens: 20 };
    let text = '';
    const consume = async () => {
      for await (const delta of volley.stream(request)) text += delta.content;
    };
    await expect(consume()).rejects.toMatchObject({ code: ErrorCode.TRUNCATED_STREAM });
    const answer = simulatedChatContent({ ...request, model: MODEL }).content;
    expect(text.length).toBeGreaterThan(0);
    expect(answer.startsWith(text)).toBe(true);
    expect(text).not.toBe(answer);
  });

  it('a slow consumer loses nothing: deltas wait for it in order', async () => {
    sim = await createSimulator();
    volley = await createVolley({ endpoints: [{ baseUrl: sim.url }], model: MODEL, logger: false });
    const request = { messages: body(1).messages, max_tokens: 64 };
    const stream = volley.stream(request);
    await stream.completion; // every delta has arrived before the first is read
    let text = '';
    for await (const delta of stream) text += delta.content;
    expect(text).toBe(simulatedChatContent({ ...request, model: MODEL }).content);
  });
});
