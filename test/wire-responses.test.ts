/**
 * The Responses API (`/v1/responses`) through the library, in every mode, against the simulator:
 * JSON and streamed answers assemble to the same body, which the openai SDK's `Response` type
 * reads; usage lands in Volley's counters; a cut stream is retried to one answer. The SDK itself
 * against the simulator's `/v1/responses` shows the wire format is the real one.
 */
import type { Simulator } from '@volley/sim';
import { createSimulator, estimatePromptTokens, simulatedResponseText } from '@volley/sim';
import OpenAI from 'openai';
import type { Response as SdkResponse } from 'openai/resources/responses/responses';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Volley } from 'volley';
import { createVolley } from 'volley';

const MODES = ['async', 'threads', 'auto'] as const;

/** The answer text of a Responses API body, read through the SDK's own type. */
function outputText(response: SdkResponse): string {
  let text = '';
  for (const item of response.output) {
    if (item.type !== 'message') continue;
    for (const part of item.content) if (part.type === 'output_text') text += part.text;
  }
  return text;
}

describe.each(MODES)('/responses through volley.request (%s mode)', (mode) => {
  let sim: Simulator;
  let volley: Volley;

  beforeAll(async () => {
    let cut = false;
    sim = await createSimulator({
      logBodies: true,
      // The first request asking for it loses its final event; its retry does not.
      faultFor: ({ body }) => {
        if (cut || !JSON.stringify(body).includes('cut once')) return undefined;
        cut = true;
        return 'truncate-stream';
      },
    });
    volley = await createVolley({
      mode,
      endpoints: [{ baseUrl: sim.url }],
      model: 'volley-sim-1',
      concurrency: 8,
      backoff: { baseDelayMs: 1, maxDelayMs: 5 },
    });
  });
  afterAll(async () => {
    await volley.close();
    await sim.close();
  });

  it('returns the response the server produced, typed as the SDK reads it, with usage counted', async () => {
    const body = { model: 'volley-sim-1', input: `Responses in ${mode} mode.` };
    const before = volley.stats();
    const result = await volley.request({ path: '/v1/responses', body });
    const response = result.body as SdkResponse;
    const expected = simulatedResponseText(body);
    expect(response.object).toBe('response');
    expect(response.status).toBe('completed');
    expect(outputText(response)).toBe(expected.content);
    const prompt = estimatePromptTokens({ messages: [{ role: 'user', content: body.input }] });
    expect(response.usage?.input_tokens).toBe(prompt);
    // Volley's counters speak chat's names; the Responses API's are mapped onto them.
    expect(result.usage).toEqual({
      prompt_tokens: prompt,
      completion_tokens: expected.completionTokens,
      total_tokens: prompt + expected.completionTokens,
    });
    const after = volley.stats();
    expect(after.promptTokens - before.promptTokens).toBe(prompt);
    expect(after.completionTokens - before.completionTokens).toBe(expected.completionTokens);
  });

  it('streams: deltas add up to the answer and the body is the final response, as without streaming', async () => {
    const body = {
      model: 'volley-sim-1',
      instructions: 'Answer in words.',
      input: [{ role: 'user', content: [{ type: 'input_text', text: `Stream in ${mode}.` }] }],
    };
    const deltas: string[] = [];
    const streamed = await volley.request({
      path: '/responses',
      body,
      onDelta: (delta) => deltas.push(delta.content),
    });
    const plain = await volley.request({ path: '/responses', body });
    const expected = simulatedResponseText(body);
    expect(deltas.join('')).toBe(expected.content);
    expect(deltas.length).toBe(expected.completionTokens);
    expect(streamed.ttftMs).toBeGreaterThan(0);
    const response = streamed.body as SdkResponse;
    expect(outputText(response)).toBe(expected.content);
    expect(response.usage).toEqual((plain.body as SdkResponse).usage);
    expect(streamed.usage).toEqual(plain.usage);
    // The simulator saw `stream: true` and no chat-only `stream_options` (the real API refuses them).
    const sent = sim.requests.filter((entry) => entry.path === '/v1/responses' && entry.stream);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.body).toMatchObject({ stream: true });
    expect(sent[0]?.body).not.toHaveProperty('stream_options');
  });

  it('a stream cut before its final event is retried and answered once', async () => {
    const body = { model: 'volley-sim-1', input: `Please cut once (${mode}).` };
    const result = await volley.request({ path: '/responses', body, stream: true });
    expect(result.attempts).toBe(2);
    expect(outputText(result.body as SdkResponse)).toBe(simulatedResponseText(body).content);
    const faults = sim.requests.filter((entry) => entry.fault === 'truncate-stream');
    expect(faults).toHaveLength(1);
  });
});

describe('the openai SDK on the simulator’s /v1/responses', () => {
  let sim: Simulator;
  let client: OpenAI;
  beforeAll(async () => {
    sim = await createSimulator();
    client = new OpenAI({ baseURL: sim.url, apiKey: 'test', maxRetries: 0 });
  });
  afterAll(() => sim.close());

  it('creates a response and streams one, both with the deterministic text and usage', async () => {
    const body = { model: 'volley-sim-1', input: 'Hello from the SDK' };
    const response = await client.responses.create(body);
    const expected = simulatedResponseText(body);
    expect(response.output_text).toBe(expected.content);
    expect(response.usage?.output_tokens).toBe(expected.completionTokens);

    const stream = await client.responses.create({ ...body, stream: true });
    let text = '';
    let final: SdkResponse | undefined;
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') final = event.response;
    }
    expect(text).toBe(expected.content);
    expect(final?.usage?.total_tokens).toBe(response.usage?.total_tokens);
  });
});
