/**
 * Shared set-up of the `volley bench` tests: real simulators on port 0 and the built
 * @volley/bench (worker threads load its dist/ shard entry).
 */
import type { ServerResponse } from 'node:http';
import type { BenchmarkOptions, BenchPrompt } from '@volley/bench';
import { syntheticPrompts } from '@volley/bench';

/** Short synthetic chat prompts for the simulator. */
export function prompts(count: number, outputLen = 16, stream = true): Promise<BenchPrompt[]> {
  return syntheticPrompts({
    count,
    endpoint: 'chat',
    inputLen: 32,
    outputLen,
    inputDistribution: 'fixed',
    outputDistribution: 'fixed',
    rangeRatio: 0,
    stddevRatio: 0,
    seed: 0,
    model: 'volley-sim-1',
    stream,
    ignoreEos: false,
  });
}

/** Benchmark options with the defaults the tests share. */
export function options(
  baseUrl: string,
  list: BenchPrompt[],
  extra: Partial<BenchmarkOptions> = {},
): BenchmarkOptions {
  return { baseUrl, prompts: list, threads: 1, seed: 0, stop: { requests: list.length }, ...extra };
}

/** The usage object of an OpenAI answer. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

function sseEvent(body: Record<string, unknown>): string {
  return `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', ...body })}\n\n`;
}

/**
 * Writes a streamed chat answer as OpenAI-compatible servers do: a role-only chunk, one chunk per
 * word, a finish chunk, the usage chunk (when given), then `[DONE]`.
 */
export function writeChatStream(
  res: ServerResponse,
  words: readonly string[],
  usage: Usage | undefined,
): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(sseEvent({ choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] }));
  for (const word of words)
    res.write(sseEvent({ choices: [{ index: 0, delta: { content: word } }] }));
  res.write(sseEvent({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
  if (usage !== undefined) res.write(sseEvent({ choices: [], usage }));
  res.end('data: [DONE]\n\n');
}
