/**
 * runToolCalls: handlers run concurrently within a bound, each under a timeout; every tool call
 * gets exactly one tool message, in the model's order, whatever happened to it; and the messages
 * continue a conversation the simulator accepts, in both modes.
 */
import { describe, expect, it } from 'vitest';
import type { ChatMessage, ToolCall } from 'volley';
import { ErrorCode, PatternErrorCode, runToolCalls } from 'volley';
import { codeOf, MODES, rig } from './helpers.js';

const call = (id: string, name: string, args: unknown): ToolCall => ({
  id,
  type: 'function',
  function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) },
});

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    });
  });

describe('runToolCalls', () => {
  it('runs handlers concurrently within the bound and answers in the model order', async () => {
    let running = 0;
    let peak = 0;
    const calls = [50, 10, 30, 20, 40, 5].map((ms, i) => call(`call_${i}`, 'wait', { ms }));
    const started = Date.now();
    const { messages, outcomes } = await runToolCalls(
      calls,
      {
        wait: async ({ ms }: { ms: number }) => {
          running++;
          peak = Math.max(peak, running);
          await sleep(ms);
          running--;
          return { waited: ms };
        },
      },
      { concurrency: 3 },
    );
    expect(peak).toBe(3);
    expect(Date.now() - started).toBeLessThan(155); // sequential would be 155 ms
    expect(messages).toEqual(
      [50, 10, 30, 20, 40, 5].map((ms, i) => ({
        role: 'tool',
        tool_call_id: `call_${i}`,
        content: JSON.stringify({ waited: ms }),
      })),
    );
    expect(outcomes.every((o) => o.ok)).toBe(true);
  });

  it('turns every kind of failure into a tool message, never a rejection', async () => {
    let timedOutSignal: AbortSignal | undefined;
    const { messages, outcomes } = await runToolCalls(
      [
        call('a', 'weather', { city: 'Oslo' }),
        call('b', 'missing_tool', {}),
        call('c', 'weather', '{"city": '),
        call('d', 'weather', '[1, 2]'),
        call('e', 'explode', {}),
        call('f', 'stall', {}),
        call('g', 'constructor', {}),
        call('h', 'weather', ''),
      ],
      {
        weather: ({ city }: { city?: string }) => `18°C in ${city ?? 'nowhere'}`,
        explode: () => {
          throw new Error('database is down');
        },
        stall: (_args: unknown, { signal }: { signal: AbortSignal }) => {
          timedOutSignal = signal;
          return new Promise(() => {}); // ignores its signal: left behind at the timeout
        },
      },
      { timeoutMs: 100 },
    );
    expect(messages.map((m) => m.tool_call_id)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    expect(messages[0]?.content).toBe('18°C in Oslo');
    expect(messages[7]?.content).toBe('18°C in nowhere');
    const errorTypes = outcomes.map((o) => (o.ok ? 'ok' : o.errorType));
    expect(errorTypes).toEqual([
      'ok',
      'unknown_tool',
      'invalid_arguments',
      'invalid_arguments',
      'handler_error',
      'timeout',
      'unknown_tool',
      'ok',
    ]);
    const codes = outcomes.map((o) => (o.ok ? undefined : codeOf(o.error)));
    expect(codes).toEqual([
      undefined,
      PatternErrorCode.UNKNOWN_TOOL,
      PatternErrorCode.TOOL_ARGUMENTS,
      PatternErrorCode.TOOL_ARGUMENTS,
      undefined,
      ErrorCode.TIMEOUT,
      PatternErrorCode.UNKNOWN_TOOL,
      undefined,
    ]);
    expect(JSON.parse(messages[4]?.content as string)).toEqual({
      error: { type: 'handler_error', message: 'database is down' },
    });
    expect(timedOutSignal?.aborted).toBe(true);
  });

  it('reads the tool calls of a completion or an assistant message', async () => {
    const toolCalls = [call('x', 'echo', { v: 1 })];
    const handlers = { echo: ({ v }: { v: number }) => v };
    const completion = {
      id: 'c',
      object: 'chat.completion' as const,
      created: 0,
      model: 'm',
      choices: [
        {
          index: 0,
          message: { role: 'assistant' as const, content: null, tool_calls: toolCalls },
          finish_reason: 'tool_calls' as const,
        },
      ],
    };
    expect((await runToolCalls(completion, handlers)).messages[0]?.content).toBe('1');
    expect((await runToolCalls({ tool_calls: toolCalls }, handlers)).messages[0]?.content).toBe(
      '1',
    );
    expect((await runToolCalls({ content: 'no tools' } as never, handlers)).messages).toEqual([]);
  });

  it('a caller abort aborts the running handlers and reports them', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const { outcomes } = await runToolCalls(
      [call('a', 'slow', {}), call('b', 'slow', {})],
      { slow: (_args: unknown, { signal }: { signal: AbortSignal }) => sleep(5000, signal) },
      { signal: controller.signal },
    );
    expect(outcomes.map((o) => (o.ok ? 'ok' : o.errorType))).toEqual(['aborted', 'aborted']);
  });
});

describe.each(MODES)('runToolCalls in a conversation (%s mode)', (mode) => {
  it('its messages continue the conversation', async () => {
    await using r = await rig(mode, {
      script: ({ body }) => {
        const last = (body as { messages: ChatMessage[] }).messages.at(-1);
        return last?.role === 'tool' ? `The weather: ${String(last.content)}` : undefined;
      },
    });
    const toolCalls = [call('call_1', 'get_weather', { city: 'Oslo' })];
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: null, tool_calls: toolCalls },
    ];
    const { messages: toolMessages } = await runToolCalls(toolCalls, {
      get_weather: ({ city }: { city: string }) => `18°C and sunny in ${city}`,
    });
    messages.push(...toolMessages);
    const reply = await r.volley.chat({ messages });
    expect(reply.choices[0]?.message.content).toBe('The weather: 18°C and sunny in Oslo');
    const sent = r.log()[0]?.body as { messages: ChatMessage[] } | undefined;
    expect(sent?.messages.at(-1)).toEqual({
      role: 'tool',
      tool_call_id: 'call_1',
      content: '18°C and sunny in Oslo',
    });
  });
});
