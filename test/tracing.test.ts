/**
 * OpenTelemetry tracing with the SDK's in-memory exporter: one CLIENT span per call carrying the
 * GenAI semantic-convention attributes, in both modes; a pattern is one parent span with its
 * calls as children; the API key is in no attribute, event or status.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { Simulator } from '@volley/sim';
import { createSimulator } from '@volley/sim';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createVolley, fanOut } from 'volley';

const CANARY_KEY = 'sk-canary-tracing-0123456789abcdef';
const exporter = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
});

afterAll(() => {
  trace.disable();
  context.disable();
});

afterEach(() => exporter.reset());

/** The spans of calls (the GenAI CLIENT spans), as opposed to pattern spans. */
function callSpans(): ReadableSpan[] {
  return exporter
    .getFinishedSpans()
    .filter((span) => span.attributes['gen_ai.operation.name'] !== undefined);
}

/** Everything a span carries that a tracing backend would show. */
function visibleText(spans: readonly ReadableSpan[]): string {
  return JSON.stringify(
    spans.map((span) => ({
      name: span.name,
      attributes: span.attributes,
      events: span.events,
      status: span.status,
    })),
  );
}

describe.each(['async', 'threads'] as const)('tracing in %s mode', (mode) => {
  let sim: Simulator;

  beforeAll(async () => {
    let retried = false;
    sim = await createSimulator({
      // The first attempt of a prompt that asks for it gets a 500, so it is retried once;
      // prompts that say "always fail" get a 400 that is not retried.
      faultFor: ({ body }) => {
        const text = JSON.stringify(body);
        if (text.includes('always fail')) return 'status-400-context-length';
        if (text.includes('retry me') && !retried) {
          retried = true;
          return 'status-500';
        }
        return undefined;
      },
    });
  });

  afterAll(() => sim.close());

  async function runtime() {
    return createVolley({
      mode,
      endpoints: [{ baseUrl: sim.url, apiKey: CANARY_KEY }],
      model: 'volley-sim-1',
      logger: false,
      backoff: { baseDelayMs: 1, maxDelayMs: 5 },
    });
  }

  it('gives each call exactly one span with the GenAI attributes', async () => {
    const volley = await runtime();
    const calls = 12;
    await Promise.all(
      Array.from({ length: calls }, (_, i) =>
        volley.chat({ messages: [{ role: 'user', content: `fact ${i}` }], max_tokens: 8 }),
      ),
    );
    await volley.embed(['a', 'b', 'c'], { model: 'volley-sim-embed-1' });
    await volley.close();

    const spans = callSpans();
    expect(spans).toHaveLength(calls + 1);
    const chats = spans.filter((span) => span.attributes['gen_ai.operation.name'] === 'chat');
    expect(chats).toHaveLength(calls);
    const port = Number(new URL(sim.url).port);
    for (const span of chats) {
      expect(span.name).toBe('chat volley-sim-1');
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
      expect(span.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.system': 'openai',
        'gen_ai.request.model': 'volley-sim-1',
        'gen_ai.request.max_tokens': 8,
        'gen_ai.response.model': 'volley-sim-1',
        'server.address': '127.0.0.1',
        'server.port': port,
        'volley.mode': mode,
      });
      expect(span.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
      expect(span.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
      expect(span.attributes['gen_ai.response.finish_reasons']).toEqual([expect.any(String)]);
      // The hand-off to the executor (the thread hop in threads mode) and the attempt's end.
      expect(span.events.map((event) => event.name)).toEqual(['volley.dispatch', 'volley.attempt']);
      expect(span.events[0]?.attributes).toEqual({
        'server.address': '127.0.0.1',
        'server.port': port,
        'volley.attempt': 1,
      });
    }
    const [embedding] = spans.filter(
      (span) => span.attributes['gen_ai.operation.name'] === 'embeddings',
    );
    expect(embedding?.name).toBe('embeddings volley-sim-embed-1');
    expect(embedding?.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
  });

  it('records retries as events and failures with error.type, never the key', async () => {
    const volley = await runtime();
    await volley.chat({ messages: [{ role: 'user', content: 'retry me' }] });
    await expect(
      volley.chat({ messages: [{ role: 'user', content: 'always fail' }] }),
    ).rejects.toThrow();
    await volley.close();

    const spans = callSpans();
    expect(spans).toHaveLength(2);
    const [retried, failed] = spans.sort(
      (a, b) => Number(a.attributes['volley.call.id']) - Number(b.attributes['volley.call.id']),
    );
    expect(retried?.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(retried?.events.map((event) => event.name)).toEqual([
      'volley.dispatch',
      'volley.attempt',
      'volley.retry',
      'volley.dispatch',
      'volley.attempt',
    ]);
    expect(retried?.events[2]?.attributes).toMatchObject({
      'error.type': 'VOLLEY_ERR_HTTP',
      'http.response.status_code': 500,
    });
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['error.type']).toEqual(expect.stringMatching(/^VOLLEY_ERR_/));
    expect(failed?.attributes['http.response.status_code']).toBe(400);
    expect(visibleText(exporter.getFinishedSpans())).not.toContain(CANARY_KEY);
  });

  it('shows a fanOut as one parent span with its calls as children', async () => {
    const volley = await runtime();
    const { succeeded } = await fanOut(volley, {
      summary: { messages: [{ role: 'user', content: 'summarise' }] },
      sentiment: { messages: [{ role: 'user', content: 'sentiment' }] },
      entities: { messages: [{ role: 'user', content: 'entities' }] },
    });
    await volley.close();
    expect(succeeded).toBe(3);

    const parents = exporter.getFinishedSpans().filter((span) => span.name === 'volley.fanOut');
    expect(parents).toHaveLength(1);
    const parent = parents[0] as ReadableSpan;
    const children = callSpans();
    expect(children).toHaveLength(3);
    for (const child of children) {
      expect(child.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
      expect(child.spanContext().traceId).toBe(parent.spanContext().traceId);
    }
    expect(visibleText(exporter.getFinishedSpans())).not.toContain(CANARY_KEY);
  });
});
