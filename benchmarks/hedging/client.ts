/**
 * One contender of benchmarks/hedging/run.ts, in a process of its own: `concurrency` callers,
 * each sending streamed chat calls one after another through Volley, hedging on or off. Each
 * call's latency is timed around the call (the runtime's concurrency is above the callers', so a
 * call never queues: this is the latency a caller sees, both attempts included). Prints one JSON
 * line (HedgeClientResult) on stdout.
 *
 * Usage: node --import tsx hedging/client.ts '<HedgeClientSpec as JSON>'
 */
import { createVolley } from 'volley';

export interface HedgeClientSpec {
  baseUrls: string[];
  hedge: boolean;
  requests: number;
  concurrency: number;
  maxTokens: number;
}

export interface HedgeClientResult {
  wallMs: number;
  succeeded: number;
  failed: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number };
  /** Time to the first content delta, from the call's start. */
  ttftMs: { p50: number; p99: number };
  hedgedCalls: number;
  extraBilledCalls: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as HedgeClientSpec;
const volley = await createVolley({
  endpoints: spec.baseUrls.map((baseUrl) => ({ baseUrl })),
  concurrency: spec.concurrency * 2,
  model: 'volley-sim-1',
  logger: false,
  hedge: spec.hedge,
});
const latencies: number[] = [];
const ttfts: number[] = [];
let failed = 0;
let next = 0;
const started = performance.now();
async function caller(): Promise<void> {
  while (next < spec.requests) {
    const i = next++;
    const t0 = performance.now();
    let first: number | undefined;
    try {
      await volley.chat(
        { messages: [{ role: 'user', content: `request ${i}` }], max_tokens: spec.maxTokens },
        { onDelta: () => (first ??= performance.now() - t0) },
      );
      latencies.push(performance.now() - t0);
      if (first !== undefined) ttfts.push(first);
    } catch {
      failed++;
    }
  }
}
await Promise.all(Array.from({ length: spec.concurrency }, caller));
const wallMs = performance.now() - started;
const stats = volley.stats();
await volley.close();
latencies.sort((a, b) => a - b);
ttfts.sort((a, b) => a - b);
const result: HedgeClientResult = {
  wallMs,
  succeeded: stats.succeeded,
  failed,
  latencyMs: {
    p50: percentile(latencies, 0.5),
    p90: percentile(latencies, 0.9),
    p99: percentile(latencies, 0.99),
    p999: percentile(latencies, 0.999),
    max: latencies.at(-1) ?? Number.NaN,
  },
  ttftMs: { p50: percentile(ttfts, 0.5), p99: percentile(ttfts, 0.99) },
  hedgedCalls: stats.hedgedCalls,
  extraBilledCalls: stats.extraBilledCalls,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
