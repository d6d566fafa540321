/**
 * The matrix: server latency x client concurrency, and the contenders run in each cell. Request
 * counts are fixed per run (not per duration) so every contender does exactly the same work.
 */
import type { WorkloadName } from './workload.js';

export const CONTENDERS = [
  'autocannon',
  'undici-raw',
  'fetch-limiter',
  'openai-sdk',
  'volley-async',
  'volley-threads',
  'volley-async-metrics',
  'volley-threads-metrics',
  'volley-threads-1',
  'volley-threads-2',
  'wrk',
] as const;

export type ContenderName = (typeof CONTENDERS)[number];

/**
 * Some contenders answer one question each and run only when named: the `-metrics` ones (what
 * metrics cost), `volley-threads-1` and `volley-threads-2` (what a second worker thread costs and
 * buys, whatever the default count) and wrk (a native binary the matrix may have to install).
 */
const ON_REQUEST = new Set<string>(['volley-threads-1', 'volley-threads-2', 'wrk']);
export const DEFAULT_CONTENDERS = CONTENDERS.filter(
  (name) => !name.endsWith('-metrics') && !ON_REQUEST.has(name),
);

/** The contenders that assemble a long stream (workload.ts); the others send the short chat only. */
export const LONG_STREAM_CONTENDERS: readonly ContenderName[] = [
  'undici-raw',
  'openai-sdk',
  'volley-async',
  'volley-threads',
];

export interface Scenario {
  /** e.g. `0ms-c256`: server latency, then concurrency. */
  id: string;
  latencyMs: number;
  concurrency: number;
  /** Measured requests per run. */
  count: number;
  /** Unmeasured requests first, in the same process: JIT, sockets, pools. */
  warmup: number;
}

const LATENCIES = [0, 20] as const;
const CONCURRENCIES = [64, 256, 1024] as const;

/**
 * Quick runs: 2,000 requests (300 long streams), a smoke test. Full runs: 15k requests at 0 ms. At 20 ms the Little's-law ceiling is C / 20 ms (3.2k req/s at
 * C=64), so counts shrink there to keep the fast clients at a few seconds. The slow clients
 * (fetch, SDK: ~1-2.5k req/s, CPU-bound whatever the latency) set the matrix's duration: these
 * counts keep 3 reps near 15 minutes on a quiet 2-core box.
 */
function defaultCount(
  latencyMs: number,
  concurrency: number,
  workload: WorkloadName,
  quick: boolean,
): number {
  // A long stream is ~240 KB and 1,000 events to parse: about a hundredth of the short chat's rate.
  if (workload === 'long-stream') return quick ? 300 : 2_000;
  if (quick) return 2_000;
  if (latencyMs === 0) return 15_000;
  if (concurrency <= 64) return 8_000;
  return concurrency <= 256 ? 12_000 : 15_000;
}

/** Unmeasured requests first, enough to warm the JIT and open every connection. */
function defaultWarmup(concurrency: number, workload: WorkloadName, quick: boolean): number {
  if (workload === 'long-stream') return Math.max(concurrency, quick ? 100 : 300);
  return quick ? Math.max(concurrency, 500) : Math.max(3 * concurrency, 2_000);
}

export interface ScenarioSizing {
  workload?: WorkloadName;
  quick: boolean;
  count?: number | undefined;
  warmup?: number | undefined;
}

export function buildScenarios(sizing: ScenarioSizing): Scenario[] {
  const scenarios: Scenario[] = [];
  const workload = sizing.workload ?? 'short-chat';
  for (const latencyMs of LATENCIES) {
    for (const concurrency of CONCURRENCIES) {
      const count = sizing.count ?? defaultCount(latencyMs, concurrency, workload, sizing.quick);
      const warmup = sizing.warmup ?? defaultWarmup(concurrency, workload, sizing.quick);
      // autocannon splits `amount` over its connections and refuses fewer requests than connections.
      scenarios.push({
        id: `${latencyMs}ms-c${concurrency}`,
        latencyMs,
        concurrency,
        count: Math.max(count, concurrency),
        warmup,
      });
    }
  }
  return scenarios;
}

/**
 * A filter token keeps a scenario when it is its id (`0ms-c256`), its latency part (`20ms`) or its
 * concurrency part (`c1024`).
 */
export function matchesScenario(scenario: Scenario, tokens: readonly string[]): boolean {
  if (tokens.length === 0) return true;
  const [latency, concurrency] = scenario.id.split('-');
  return tokens.some(
    (token) => token === scenario.id || token === latency || token === concurrency,
  );
}
