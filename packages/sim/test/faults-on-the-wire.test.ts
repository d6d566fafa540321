import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSimulator,
  FAULT_KINDS,
  type FaultKind,
  type Simulator,
  simulatedChatContent,
} from '../src/index.js';
import {
  chatBody,
  type SendOptions,
  send,
  sseData,
  type WireResponse,
  waitFor,
} from './helpers.js';

const JSON_BODY = chatBody('Fault me, please.');
const STREAM_BODY = chatBody('Fault me, please.', { stream: true });
// `stream` is not part of the content hash: both bodies have the same answer.
const EXPECTED = simulatedChatContent(JSON_BODY);
const HALF = Math.floor(EXPECTED.completionTokens / 2);
const SLOW_MS = 150;

let sim: Simulator;

function inject(
  kind: FaultKind,
  body: Record<string, unknown>,
  options: SendOptions = {},
): Promise<WireResponse> {
  return send(sim.url, '/chat/completions', {
    body,
    headers: { 'x-volley-sim-fault': kind },
    ...options,
  });
}

interface Delta {
  choices: { delta: { content?: string }; finish_reason: string | null }[];
}

/** Content of every complete, parseable event (a cut-off last block is ignored). */
function streamed(body: string): {
  text: string;
  events: unknown[];
  finishReasons: (string | null)[];
} {
  const blocks = body.split('\n\n').slice(0, -1);
  const events = sseData(`${blocks.join('\n\n')}\n\n`);
  const chunks = events.filter((e): e is Delta => e !== '[DONE]');
  return {
    text: chunks.flatMap((c) => c.choices.map((x) => x.delta.content ?? '')).join(''),
    events,
    finishReasons: chunks
      .flatMap((c) => c.choices.map((x) => x.finish_reason))
      .filter((r) => r !== null),
  };
}

function expectEnvelope(
  res: WireResponse,
  status: number,
  type: string,
  code: string | null,
  param: string | null = null,
): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toBe('application/json');
  expect(JSON.parse(res.body)).toEqual({
    error: { message: expect.any(String), type, param, code },
  });
}

function statusFault(
  status: number,
  type: string,
  code: string | null,
  param: string | null = null,
) {
  return async (kind: FaultKind) => {
    const res = await inject(kind, JSON_BODY);
    expectEnvelope(res, status, type, code, param);
    expect(res.headers['x-should-retry']).toBeUndefined();
    if (status !== 429) expect(res.headers['retry-after']).toBeUndefined();
  };
}

/** What each kind does on the wire. A Record, so a new kind without a test fails to compile. */
const ON_THE_WIRE: Record<FaultKind, (kind: FaultKind) => Promise<void>> = {
  'status-429': async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expectEnvelope(res, 429, 'requests', 'rate_limit_exceeded');
    expect([res.headers['retry-after'], res.headers['retry-after-ms']]).toEqual(['2', '1500']);
  },
  'status-500': statusFault(500, 'server_error', null),
  'status-502': statusFault(502, 'server_error', null),
  'status-503': statusFault(503, 'server_error', null),
  'status-504': statusFault(504, 'server_error', null),
  'status-529': statusFault(529, 'overloaded_error', null),
  'status-400-context-length': statusFault(
    400,
    'invalid_request_error',
    'context_length_exceeded',
    'messages',
  ),
  'status-401': statusFault(401, 'invalid_request_error', 'invalid_api_key'),
  'status-403': statusFault(403, 'invalid_request_error', 'permission_denied'),
  'status-404': statusFault(404, 'invalid_request_error', 'model_not_found'),
  'status-422': statusFault(422, 'invalid_request_error', 'unprocessable_entity'),
  'insufficient-quota': async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expectEnvelope(res, 429, 'insufficient_quota', 'insufficient_quota');
    expect(res.headers['retry-after']).toBeUndefined();
  },
  'should-not-retry': async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expectEnvelope(res, 500, 'server_error', null);
    expect(res.headers['x-should-retry']).toBe('false');
  },
  'reset-before-headers': async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expect(res.status).toBe(0);
    expect(res.error?.code).toBe('ECONNRESET');
    await waitFor(() => sim.requests.at(-1)?.finishedAt !== undefined);
    expect(sim.requests.at(-1)).toMatchObject({ status: 0, fault: kind, aborted: false });
  },
  'reset-mid-body': async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expect(res.status).toBe(200);
    const length = Number(res.headers['content-length']);
    expect(Buffer.byteLength(res.body)).toBe(Math.floor(length / 2));
    expect(res.complete).toBe(false);
    expect(res.error).toBeDefined();
    // On a stream, the cut falls mid-stream the same way.
    const stream = await inject(kind, STREAM_BODY);
    expect(streamed(stream.body).text).toBe(
      EXPECTED.content.slice(0, streamed(stream.body).text.length),
    );
    expect(stream.complete).toBe(false);
  },
  'reset-mid-stream': async (kind) => {
    const res = await inject(kind, STREAM_BODY);
    expect(res.status).toBe(200);
    const { text, events, finishReasons } = streamed(res.body);
    expect(events).toHaveLength(1 + HALF);
    expect(EXPECTED.content.startsWith(text)).toBe(true);
    expect(finishReasons).toEqual([]);
    expect(res.complete).toBe(false);
    expect(res.error).toBeDefined();
    await waitFor(() => sim.requests.at(-1)?.finishedAt !== undefined);
    expect(sim.requests.at(-1)).toMatchObject({
      status: 200,
      fault: kind,
      stream: true,
      aborted: false,
    });
  },
  'truncate-stream': async (kind) => {
    const res = await inject(kind, STREAM_BODY);
    expect(res.complete).toBe(true);
    const { text, events, finishReasons } = streamed(res.body);
    expect(text).toBe(EXPECTED.content);
    expect(finishReasons).toEqual([]);
    expect(events).not.toContain('[DONE]');
    // Without a stream, a clean chunked end after half the JSON.
    const json = await inject(kind, JSON_BODY);
    expect([json.status, json.complete, json.headers['transfer-encoding']]).toEqual([
      200,
      true,
      'chunked',
    ]);
    expect(() => JSON.parse(json.body)).toThrow();
  },
  'stall-stream': async (kind) => {
    const res = await inject(kind, STREAM_BODY, { timeoutMs: 400 });
    expect(res.error?.code).toBe('TEST_TIMEOUT');
    const { text, events } = streamed(res.body);
    expect(events).toHaveLength(1 + HALF);
    expect(EXPECTED.content.startsWith(text)).toBe(true);
    // Keep-alive comments every 40 ms while stalled, and nothing else.
    expect(res.body.split(': ping\n\n').length - 1).toBeGreaterThanOrEqual(5);
    await waitFor(() => sim.requests.at(-1)?.aborted === true);
  },
  'slow-headers': async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expect(res.headersMs).toBeGreaterThanOrEqual(SLOW_MS - 5);
    expect(JSON.parse(res.body).choices[0].message.content).toBe(EXPECTED.content);
  },
  'slow-body': async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expect(res.totalMs - res.firstByteMs).toBeGreaterThanOrEqual(SLOW_MS - 5);
    expect(JSON.parse(res.body).choices[0].message.content).toBe(EXPECTED.content);
    const stream = await inject(kind, STREAM_BODY);
    expect(stream.totalMs - stream.firstByteMs).toBeGreaterThanOrEqual(SLOW_MS - 5);
    expect(streamed(stream.body).text).toBe(EXPECTED.content);
  },
  'html-200': async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expect([res.status, res.headers['content-type']]).toEqual([200, 'text/html']);
    expect(res.body).toContain('<h1>502 Bad Gateway</h1>');
  },
  'empty-200': async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expect([res.status, res.headers['content-length'], res.body]).toEqual([200, '0', '']);
  },
  'error-200': async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).error).toMatchObject({ type: 'server_error' });
    const stream = await inject(kind, STREAM_BODY);
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(sseData(stream.body)).toEqual([
      { error: expect.objectContaining({ type: 'server_error' }) },
    ]);
  },
  'bad-json-event': async (kind) => {
    const res = await inject(kind, STREAM_BODY);
    const blocks = res.body.split('\n\n').filter((b) => b.startsWith('data: '));
    const broken = blocks.filter((b) => {
      try {
        JSON.parse(b.slice(6));
        return false;
      } catch {
        return b !== 'data: [DONE]';
      }
    });
    expect(broken).toHaveLength(1);
    expect(streamed(res.body.replace(`${broken[0]}\n\n`, '')).text).toBe(EXPECTED.content);
    expect(res.body.endsWith('data: [DONE]\n\n')).toBe(true);
    const json = await inject(kind, JSON_BODY);
    expect(() => JSON.parse(json.body)).toThrow();
  },
  'huge-sse-line': async (kind) => {
    const res = await inject(kind, STREAM_BODY);
    const longest = Math.max(...res.body.split('\n').map((line) => line.length));
    expect(longest).toBeGreaterThan(10 * 1024 * 1024);
    expect(streamed(res.body).text).toBe(EXPECTED.content);
    expect(res.body.endsWith('data: [DONE]\n\n')).toBe(true);
    const json = await inject(kind, JSON_BODY);
    expect(json.body.length).toBeGreaterThan(10 * 1024 * 1024);
    expect(JSON.parse(json.body).choices[0].message.content).toBe(EXPECTED.content);
  },
  redirect: async (kind) => {
    const res = await inject(kind, JSON_BODY);
    expect([res.status, res.headers.location]).toEqual([307, '/redirected/v1/chat/completions']);
    const followed = await send(`${sim.url.replace('/v1', '')}`, res.headers.location!, {
      body: JSON_BODY,
    });
    expect(followed.status).toBe(404);
  },
};

describe('every fault kind on the wire (forced with x-volley-sim-fault)', () => {
  beforeAll(async () => {
    sim = await createSimulator({
      faults: { slowMs: SLOW_MS, keepaliveMs: 40, retryAfterMs: 1500 },
    });
  });
  afterAll(() => sim.close());

  it('has a wire test for every kind in FAULT_KINDS', () => {
    expect(Object.keys(ON_THE_WIRE).sort()).toEqual([...FAULT_KINDS].sort());
  });

  it.each(FAULT_KINDS)('%s', async (kind) => {
    await ON_THE_WIRE[kind](kind);
    expect(sim.requests.some((entry) => entry.fault === kind)).toBe(true);
  });

  it('counts every injected fault in stats', () => {
    const { byFault } = sim.stats();
    expect(Object.keys(byFault).sort()).toEqual([...FAULT_KINDS].sort());
    const logged = sim.requests.filter((entry) => entry.fault !== undefined).length;
    expect(Object.values(byFault).reduce((a, b) => a + b, 0)).toBe(logged);
  });

  it('refuses an unknown kind in the header with 400', async () => {
    const res = await send(sim.url, '/chat/completions', {
      body: JSON_BODY,
      headers: { 'x-volley-sim-fault': 'status-418' },
    });
    expectEnvelope(res, 400, 'invalid_request_error', 'unknown_fault_kind');
  });
});
