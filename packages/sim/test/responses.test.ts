import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSimulator,
  estimatePromptTokens,
  type Simulator,
  simulatedChatContent,
  simulatedResponseText,
} from '../src/index.js';
import { chatBody, send } from './helpers.js';

interface ResponseBody {
  id: string;
  object: string;
  status: string;
  incomplete_details: { reason: string } | null;
  model: string;
  output: Array<{
    type: string;
    role: string;
    status: string;
    content: Array<{ type: string; text: string }>;
  }>;
  usage: { input_tokens: number; output_tokens: number; total_tokens: number } | null;
}

interface StreamEvent {
  type: string;
  sequence_number: number;
  delta?: string;
  response?: ResponseBody;
}

/** Each SSE block's `event:` name and parsed `data:`; checks the two agree, as the API's do. */
function responseEvents(body: string): StreamEvent[] {
  const events: StreamEvent[] = [];
  for (const block of body.split('\n\n')) {
    const lines = block.split('\n').filter((line) => !line.startsWith(':'));
    if (lines.length === 0 || lines[0] === '') continue;
    const name = lines.find((line) => line.startsWith('event: '))?.slice(7);
    const data = lines.find((line) => line.startsWith('data: '))?.slice(6);
    const event = JSON.parse(data ?? 'null') as StreamEvent;
    expect(event.type).toBe(name);
    events.push(event);
  }
  return events;
}

describe('/v1/responses', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await createSimulator();
  });
  afterAll(() => sim.close());

  it('answers a string input with the chat answer to the same user message, with Responses usage', async () => {
    const body = { model: 'volley-sim-1', input: 'Tell me about volleys.' };
    const res = await send(sim.url, '/responses', { body });
    expect(res.status).toBe(200);
    const json = JSON.parse(res.body) as ResponseBody;
    const chat = chatBody('Tell me about volleys.');
    const expected = simulatedChatContent(chat);
    expect(simulatedResponseText(body)).toEqual(expected);
    expect(json).toMatchObject({ object: 'response', status: 'completed', model: 'volley-sim-1' });
    expect(json.id).toMatch(/^resp_/);
    expect(json.output).toHaveLength(1);
    expect(json.output[0]).toMatchObject({
      type: 'message',
      role: 'assistant',
      status: 'completed',
    });
    expect(json.output[0]?.content[0]).toMatchObject({
      type: 'output_text',
      text: expected.content,
    });
    const prompt = estimatePromptTokens(chat);
    expect(json.usage).toEqual({
      input_tokens: prompt,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: expected.completionTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: prompt + expected.completionTokens,
    });
  });

  it('reads instructions and input items, and max_output_tokens makes the response incomplete', async () => {
    const body = {
      model: 'volley-sim-1',
      instructions: 'Be brief.',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Hello there' }] }],
      max_output_tokens: 3,
    };
    const res = await send(sim.url, '/responses', { body });
    const json = JSON.parse(res.body) as ResponseBody;
    const expected = simulatedResponseText(body);
    expect(expected.completionTokens).toBe(3);
    expect(json.status).toBe('incomplete');
    expect(json.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(json.output[0]?.content[0]?.text).toBe(expected.content);
    expect(json.usage?.output_tokens).toBe(3);
  });

  it('streams created, one output_text.delta per token and completed with the whole response', async () => {
    const body = { model: 'volley-sim-1', input: 'Stream a response.', stream: true };
    const res = await send(sim.url, '/responses', { body });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('text/event-stream');
    expect(res.body).not.toContain('[DONE]');
    const events = responseEvents(res.body);
    const types = events.map((event) => event.type);
    expect(types.slice(0, 4)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
    ]);
    expect(types.at(-1)).toBe('response.completed');
    expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, i) => i));
    const expected = simulatedResponseText(body);
    const deltas = events.filter((event) => event.type === 'response.output_text.delta');
    expect(deltas).toHaveLength(expected.completionTokens);
    expect(deltas.map((event) => event.delta).join('')).toBe(expected.content);
    expect(events[0]?.response).toMatchObject({ status: 'in_progress', output: [], usage: null });
    const final = events.at(-1)?.response;
    expect(final?.output[0]?.content[0]?.text).toBe(expected.content);
    expect(final?.usage?.output_tokens).toBe(expected.completionTokens);
  });

  it('a truncated stream loses its final event; a bad input is a 400 naming the param', async () => {
    const body = { model: 'volley-sim-1', input: 'Cut me short.', stream: true };
    const cut = await send(sim.url, '/responses', {
      body,
      headers: { 'x-volley-sim-fault': 'truncate-stream' },
    });
    expect(cut.complete).toBe(true);
    const types = responseEvents(cut.body).map((event) => event.type);
    expect(types).toContain('response.output_text.delta');
    expect(types).not.toContain('response.completed');

    const bad = await send(sim.url, '/responses', { body: { model: 'volley-sim-1', input: [] } });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ error: { param: 'input' } });
  });
});
