import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSimulator,
  type SimEngineTiming,
  type Simulator,
  simulatedChatContent,
  simulatedCompletionText,
  TIMING_HEADER,
} from '../src/index.js';
import { chatBody, engineState, send, sseData, timingComment, waitForState } from './helpers.js';

type ChatChunk = { choices: { index: number; delta: { content?: string } }[]; usage?: unknown };

describe('engine answers on the wire', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await createSimulator({ engine: { slots: 8, decodeStepMs: 2 } });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('streams one event per decoded token, the truth as a comment just before [DONE]', async () => {
    const body = chatBody('stream me', {
      max_tokens: 120,
      stream: true,
      stream_options: { include_usage: true },
    });
    const res = await send(sim.url, '/chat/completions', { body });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(res.headers[TIMING_HEADER]).toBeUndefined();

    // Well-formed SSE: every block is a data event or the one comment, which precedes [DONE].
    const blocks = res.body.split('\n\n');
    expect(blocks.pop()).toBe('');
    expect(blocks.at(-1)).toBe('data: [DONE]');
    expect(blocks.at(-2)).toMatch(/^: x-volley-sim-timing \{.*\}$/);
    expect(blocks.every((block) => block.startsWith('data: ') || block.startsWith(': '))).toBe(
      true,
    );
    const events = sseData(res.body).slice(0, -1) as ChatChunk[];
    const tokens = events.filter((event) => event.choices[0]?.delta.content);
    // Runs to max_tokens (the engine generates as with ignore_eos), text computable as usual.
    expect(tokens).toHaveLength(120);
    const text = tokens.map((event) => event.choices[0]!.delta.content).join('');
    expect(text).toBe(simulatedChatContent({ ...body, ignore_eos: true }).content);
    expect(events.at(-1)?.usage).toMatchObject({ completion_tokens: 120 });

    const truth = timingComment(res.body) as SimEngineTiming;
    const entry = sim.requests.at(-1)!;
    expect(entry.engine).toEqual(truth);
    expect(truth).toMatchObject({ outputTokens: 120, queuedMs: 0, runningAtAdmission: 1 });
    expect(Object.keys(truth).sort()).toEqual(
      [
        'e2eMs',
        'outputTokens',
        'prefillMs',
        'queuedMs',
        'runningAtAdmission',
        'tpotMs',
        'ttftMs',
      ].sort(),
    );
    expect(truth.tpotMs).toBeGreaterThanOrEqual(2 * 0.8);
    expect(truth.e2eMs).toBeGreaterThanOrEqual(truth.ttftMs + 119 * 2 * 0.8);
  });

  it('answers JSON when the last token is decoded, the truth in x-volley-sim-timing', async () => {
    const body = chatBody('json me', { max_tokens: 50 });
    const res = await send(sim.url, '/chat/completions', { body });
    expect(res.status).toBe(200);
    const json = JSON.parse(res.body) as {
      choices: { message: { content: string }; finish_reason: string }[];
      usage: { completion_tokens: number };
    };
    expect(json.choices[0]?.message.content).toBe(
      simulatedChatContent({ ...body, ignore_eos: true }).content,
    );
    expect(json.usage.completion_tokens).toBe(50);
    const truth = JSON.parse(String(res.headers[TIMING_HEADER])) as SimEngineTiming;
    expect(sim.requests.at(-1)?.engine).toEqual(truth);
    expect(truth.outputTokens).toBe(50);
    expect(truth.ttftMs).toBeLessThanOrEqual(truth.e2eMs);
    expect(truth.e2eMs).toBeGreaterThanOrEqual(truth.prefillMs + 50 * 2 - 0.01);
  });

  it('serves completions with n choices as one sequence of the longest choice', async () => {
    const body = { model: 'volley-sim-1', prompt: ['one', 'two'], n: 2, max_tokens: 30 };
    const res = await send(sim.url, '/completions', { body });
    expect(res.status).toBe(200);
    const json = JSON.parse(res.body) as { choices: { text: string }[] };
    expect(json.choices.map((choice) => choice.text)).toEqual(
      [0, 1, 2, 3].map((i) => simulatedCompletionText({ ...body, ignore_eos: true }, i).content),
    );
    const truth = JSON.parse(String(res.headers[TIMING_HEADER])) as SimEngineTiming;
    expect(truth.outputTokens).toBe(30);

    const stream = await send(sim.url, '/completions', {
      body: { model: 'volley-sim-1', prompt: 'stream', max_tokens: 12, stream: true },
    });
    expect(sseData(stream.body).at(-1)).toBe('[DONE]');
    expect(timingComment(stream.body)).toMatchObject({ outputTokens: 12 });
  });

  it('keeps natural lengths without max_tokens, and a script answer its own length', async () => {
    const body = chatBody('natural');
    const res = await send(sim.url, '/chat/completions', { body });
    const expected = simulatedChatContent(body);
    expect(JSON.parse(res.body).choices[0].message.content).toBe(expected.content);
    expect(JSON.parse(String(res.headers[TIMING_HEADER])).outputTokens).toBe(
      expected.completionTokens,
    );

    const scripted = await createSimulator({
      engine: { slots: 1, decodeStepMs: 1 },
      script: () => 'three short words',
    });
    try {
      const answer = await send(scripted.url, '/chat/completions', {
        body: chatBody('x', { max_tokens: 100 }),
      });
      expect(JSON.parse(answer.body).choices[0].message.content).toBe('three short words');
      expect(JSON.parse(String(answer.headers[TIMING_HEADER])).outputTokens).toBe(3);
    } finally {
      await scripted.close();
    }
  });
});

describe('engine with rate limits and faults', () => {
  it('answers 429s and answer-replacing faults before the engine sees the request', async () => {
    const sim = await createSimulator({
      engine: { slots: 2, decodeStepMs: 1 },
      limits: { rpm: 60 },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        statuses.push((await send(sim.url, '/chat/completions', { body: chatBody('x') })).status);
      }
      expect(statuses).toEqual([200, 429, 429]);
      sim.setOptions({ limits: undefined });
      const faulted = await send(sim.url, '/chat/completions', {
        body: chatBody('x'),
        headers: { 'x-volley-sim-fault': 'status-500' },
      });
      expect(faulted.status).toBe(500);
      expect(faulted.headers[TIMING_HEADER]).toBeUndefined();
      expect(await engineState(sim)).toMatchObject({ admitted: 1, completed: 1 });
    } finally {
      await sim.close();
    }
  });

  it('cuts, pauses and stalls engine streams as delivery faults say', async () => {
    const sim = await createSimulator({
      engine: { slots: 4, decodeStepMs: 2 },
      faults: { slowMs: 300 },
    });
    try {
      const body = chatBody('faulty', { max_tokens: 40, stream: true });
      const fault = (kind: string, timeoutMs?: number) =>
        send(sim.url, '/chat/completions', {
          body,
          headers: { 'x-volley-sim-fault': kind },
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        });

      const truncated = await fault('truncate-stream');
      expect(truncated.complete).toBe(true);
      expect(truncated.body).not.toContain('[DONE]');
      expect(timingComment(truncated.body)).toBeUndefined();
      expect(sim.requests.at(-1)?.engine?.outputTokens).toBe(40);

      const reset = await fault('reset-mid-stream');
      expect(reset.error?.code).toBe('ECONNRESET');

      const slow = await fault('slow-body');
      expect(slow.complete).toBe(true);
      expect(slow.totalMs - slow.firstByteMs).toBeGreaterThanOrEqual(290);
      expect(timingComment(slow.body)).toMatchObject({ outputTokens: 40 });

      const slowHeaders = await fault('slow-headers');
      expect(slowHeaders.headersMs).toBeGreaterThanOrEqual(290);
      expect(sseData(slowHeaders.body).at(-1)).toBe('[DONE]');

      // The client sees a stall; the engine still finishes decoding and frees the slot.
      const stalled = fault('stall-stream', 1500);
      await waitForState(sim, (state) => state.completed === 4 && state.running === 0);
      const res = await stalled;
      expect(res.error?.code).toBe('TEST_TIMEOUT');
      expect(res.body).not.toContain('[DONE]');
      expect(await engineState(sim)).toMatchObject({ admitted: 5, cancelled: 1 });
    } finally {
      await sim.close();
    }
  });
});
