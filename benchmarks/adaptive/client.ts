/**
 * One contender of benchmarks/adaptive/run.ts, in a process of its own: a closed batch of
 * streamed chat calls through Volley at a fixed concurrency or `auto`, against the endpoints
 * given. Prints one JSON line (ClientResult) on stdout.
 *
 * Usage: node --import tsx adaptive/client.ts '<ClientSpec as JSON>'
 */
import { createVolley, type VolleyOptions } from 'volley';

export interface ClientSpec {
  baseUrls: string[];
  concurrency: number | 'auto';
  requests: number;
  maxTokens: number;
  serverHints?: boolean;
}

export interface ClientResult {
  wallMs: number;
  succeeded: number;
  failed: number;
  throughput: number;
  ttftMs: { p50: number; p90: number; p99: number };
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** 503s waited out (backpressure) plus 503s retried as failures. */
  status503: number;
  status429: number;
  retries: number;
  finalLimits: Array<number | null>;
  /** [elapsed ms, limit per endpoint] every 100 ms. */
  trace: Array<[number, ...Array<number | null>]>;
  decisions: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as ClientSpec;
const options: VolleyOptions = {
  endpoints: spec.baseUrls.map((baseUrl) => ({ baseUrl })),
  concurrency: spec.concurrency,
  model: 'volley-sim-1',
  logger: false,
  maxRetries: 50,
  serverHints: spec.serverHints !== false,
};
const volley = await createVolley(options);
const ttfts: number[] = [];
const latencies: number[] = [];
let status503 = 0;
let decisions = 0;
volley.on('complete', (event) => {
  if (event.ttftMs !== undefined) ttfts.push(event.ttftMs);
  latencies.push(event.latencyMs);
});
volley.on('retry', (event) => {
  if (event.error.status === 503) status503++;
});
volley.on('concurrencyLimit', () => decisions++);
const trace: ClientResult['trace'] = [];
const started = performance.now();
const limitsNow = () => volley.stats().byEndpoint.map((e) => e.concurrencyLimit ?? null);
const sampler = setInterval(() => {
  trace.push([Math.round(performance.now() - started), ...limitsNow()]);
}, 100);
let failed = 0;
await Promise.all(
  Array.from({ length: spec.requests }, (_, i) =>
    volley
      .chat(
        { messages: [{ role: 'user', content: `request ${i}` }], max_tokens: spec.maxTokens },
        { stream: true },
      )
      .then(
        () => undefined,
        () => failed++,
      ),
  ),
);
const wallMs = performance.now() - started;
clearInterval(sampler);
const stats = volley.stats();
await volley.close();
// Times from each attempt's send (the runtime's `complete` events): the closed batch queues every
// call at once, so time from submission would measure the batch, not the server.
ttfts.sort((a, b) => a - b);
latencies.sort((a, b) => a - b);
const result: ClientResult = {
  wallMs,
  succeeded: stats.succeeded,
  failed,
  throughput: stats.succeeded / (wallMs / 1000),
  ttftMs: { p50: percentile(ttfts, 50), p90: percentile(ttfts, 90), p99: percentile(ttfts, 99) },
  latencyMs: {
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? Number.NaN,
  },
  status503: status503 + stats.backpressure,
  status429: stats.rateLimited,
  retries: stats.retries,
  finalLimits: limitsNow(),
  trace,
  decisions,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
