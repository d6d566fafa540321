import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerHint } from '../src/adaptive-limit.js';
import { systemClock } from '../src/clock.js';
import { parseMetricsHint, parseSlotsHint, pollServerHints } from '../src/server-hints.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A real HTTP server on port 0 answering `routes` (path -> [status, type, body]); 404 otherwise. */
async function serve(routes: Record<string, () => [number, string, string]>) {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const route = routes[req.url ?? ''];
    if (route === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    const [status, type, body] = route();
    res.writeHead(status, { 'content-type': type }).end(body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}/v1`, hits };
}

/** Polls `baseUrl` until a hint arrives (or `timeoutMs`); returns the hints and the poller's source. */
async function firstHint(baseUrl: string, timeoutMs = 3000) {
  const hints: ServerHint[] = [];
  const poller = pollServerHints({
    baseUrls: [baseUrl],
    clock: systemClock,
    intervalMs: 50,
    onHint: (_, hint) => hints.push(hint),
  });
  const deadline = Date.now() + timeoutMs;
  while (hints.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  poller.close();
  return { hint: hints[0], source: poller.sources()[0] };
}

const VLLM_METRICS = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 12.0
vllm:num_requests_running{engine="1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0
vllm:num_requests_waiting_by_reason{reason="capacity"} 99.0
vllm:gpu_cache_usage_perc{model_name="m"} 0.5
`;

describe('server hints', () => {
  it('parses vLLM and llama.cpp gauges, summing label sets', () => {
    expect(parseMetricsHint(VLLM_METRICS)).toEqual({ running: 15, waiting: 7 });
    expect(
      parseMetricsHint('llamacpp:requests_processing 2\nllamacpp:requests_deferred 5\n'),
    ).toEqual({ running: 2, waiting: 5 });
    expect(parseMetricsHint('# nothing\nprocess_cpu_seconds_total 3\n')).toBeUndefined();
    expect(parseMetricsHint('vllm:num_requests_waiting NaN\n')).toBeUndefined();
  });

  it('parses llama.cpp /slots and /props', () => {
    expect(
      parseSlotsHint([
        { id: 0, is_processing: true },
        { id: 1, is_processing: false },
      ]),
    ).toEqual({ slots: 2, running: 1 });
    expect(parseSlotsHint({ total_slots: 4, model_path: 'x' })).toEqual({ slots: 4 });
    expect(parseSlotsHint({ total_slots: 'four' })).toBeUndefined();
    expect(parseSlotsHint([])).toBeUndefined();
  });

  it('reads vLLM /metrics from the endpoint origin', async () => {
    const server = await serve({ '/metrics': () => [200, 'text/plain', VLLM_METRICS] });
    expect(await firstHint(server.baseUrl)).toEqual({
      hint: { running: 15, waiting: 7 },
      source: '/metrics',
    });
  });

  it('falls back to llama.cpp /slots, then /props', async () => {
    const slots = await serve({
      '/slots': () => [
        200,
        'application/json',
        JSON.stringify([
          { id: 0, is_processing: true },
          { id: 1, is_processing: true },
          { id: 2, is_processing: false },
        ]),
      ],
    });
    expect(await firstHint(slots.baseUrl)).toEqual({
      hint: { slots: 3, running: 2 },
      source: '/slots',
    });
    const props = await serve({
      '/props': () => [200, 'application/json', JSON.stringify({ total_slots: 8 })],
    });
    expect(await firstHint(props.baseUrl)).toEqual({ hint: { slots: 8 }, source: '/props' });
  });

  it('gives up on a server with no hints after a few polls, never throwing', async () => {
    const server = await serve({
      '/metrics': () => [200, 'text/plain', 'garbage {{{'],
      '/slots': () => [500, 'text/plain', 'err'],
      '/props': () => [200, 'application/json', 'not json'],
    });
    const hints: ServerHint[] = [];
    const poller = pollServerHints({
      baseUrls: [server.baseUrl],
      clock: systemClock,
      intervalMs: 30,
      discoveryAttempts: 2,
      onHint: (_, hint) => hints.push(hint),
    });
    await new Promise((r) => setTimeout(r, 400));
    poller.close();
    expect(hints).toEqual([]);
    // Two rounds of the three routes, then nothing more.
    expect(server.hits).toHaveLength(6);
  });

  it('is not fatal when nothing listens at the origin', async () => {
    const { hint, source } = await firstHint('http://127.0.0.1:9/v1', 300);
    expect(hint).toBeUndefined();
    expect(source).toBeUndefined();
  });
});
