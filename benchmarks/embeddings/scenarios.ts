/**
 * The embeddings matrix: vector size x inputs per request x response encoding, and the contenders
 * run in each cell. Every contender in a cell sends exactly the same requests (same inputs, same
 * count), `concurrency` requests in flight, closed loop.
 */

/** Run by default, in this order (rotated every rep). */
export const CONTENDERS = ['undici-raw', 'openai-sdk', 'volley-async', 'volley-threads'] as const;

/**
 * Opt-in with `--contenders`: `mode: 'auto'`, to check that it picks the faster mode per cell;
 * `volley-threads` with one worker thread, to weigh the default thread count.
 */
export const OPTIONAL_CONTENDERS = ['volley-auto', 'volley-threads-1'] as const;

export const KNOWN_CONTENDERS: readonly string[] = [...CONTENDERS, ...OPTIONAL_CONTENDERS];

export const DIMENSIONS = [384, 1536, 3072] as const;
export const INPUTS_PER_REQUEST = [16, 64, 256] as const;
export const ENCODINGS = ['float', 'base64'] as const;

export type Encoding = (typeof ENCODINGS)[number];

/** Requests in flight, fixed across the matrix. */
export const DEFAULT_CONCURRENCY = 16;

export interface EmbedScenario {
  /** e.g. `d1536-n64-base64`: dimensions, inputs per request, response encoding. */
  id: string;
  dimensions: number;
  inputsPerRequest: number;
  encoding: Encoding;
  concurrency: number;
  /** Measured requests per run (each carries `inputsPerRequest` inputs). */
  requests: number;
  /** Unmeasured requests first, in the same process: JIT, sockets, worker threads, server cache. */
  warmupRequests: number;
  /** `requests × inputsPerRequest`. */
  vectors: number;
  /** Decoded float32 bytes of one response: inputs × dimensions × 4. */
  decodedBytesPerResponse: number;
}

/**
 * Measured vectors per run, by vector size and encoding: sized so the slowest contender of a cell
 * (openai-sdk, or anyone parsing float JSON) takes a few seconds on a shared 2-core box and the
 * fastest still gets most of a second. A float vector is ~11 characters of JSON per dimension, a
 * base64 one ~5.3: float cells get fewer vectors.
 */
const VECTORS: Record<Encoding, Record<number, number>> = {
  base64: { 384: 48_000, 1536: 16_000, 3072: 12_000 },
  float: { 384: 24_000, 1536: 6_000, 3072: 3_000 },
};

/**
 * A closed loop needs more requests than it holds in flight, or the run is one wave and its
 * ramp-down dominates: at least this many times the concurrency, whatever the vector budget says
 * (this is what sizes the 256-input cells: 48 requests = 12,288 vectors at C = 16).
 */
const MIN_REQUESTS_PER_SLOT = 3;

export interface ScenarioSizing {
  quick: boolean;
  concurrency?: number | undefined;
  /** Multiplies every cell's vector budget (e.g. 0.5 to halve the matrix's duration). */
  scale?: number | undefined;
  /** Overrides: measured / warm-up requests per run. */
  requests?: number | undefined;
  warmupRequests?: number | undefined;
}

/** Distinct input texts; the server caches one encoded vector per text. See workload.ts. */
export const INPUT_POOL_SIZE = 512;

export function buildScenarios(sizing: ScenarioSizing): EmbedScenario[] {
  const concurrency = sizing.concurrency ?? DEFAULT_CONCURRENCY;
  const scale = sizing.quick ? 0.1 : (sizing.scale ?? 1);
  const scenarios: EmbedScenario[] = [];
  for (const dimensions of DIMENSIONS) {
    for (const inputsPerRequest of INPUTS_PER_REQUEST) {
      for (const encoding of ENCODINGS) {
        const budget = Math.round((VECTORS[encoding][dimensions] ?? 4_000) * scale);
        const minRequests = (sizing.quick ? 1 : MIN_REQUESTS_PER_SLOT) * concurrency;
        const requests =
          sizing.requests ?? Math.max(Math.ceil(budget / inputsPerRequest), minRequests);
        // Enough to cover the input pool (so the server's cache is full before the window) and
        // one request per slot, but at most a quarter of the measured work.
        const warmupRequests =
          sizing.warmupRequests ??
          Math.max(
            Math.ceil(INPUT_POOL_SIZE / inputsPerRequest),
            Math.min(concurrency, Math.ceil(requests / 4)),
          );
        scenarios.push({
          id: scenarioId(dimensions, inputsPerRequest, encoding),
          dimensions,
          inputsPerRequest,
          encoding,
          concurrency,
          requests,
          warmupRequests,
          vectors: requests * inputsPerRequest,
          decodedBytesPerResponse: inputsPerRequest * dimensions * 4,
        });
      }
    }
  }
  return scenarios;
}

export function scenarioId(dimensions: number, inputsPerRequest: number, encoding: string): string {
  return `d${dimensions}-n${inputsPerRequest}-${encoding}`;
}

/**
 * A filter token keeps a scenario when it is its id (`d1536-n64-base64`) or one of its parts
 * (`d1536`, `n64`, `base64`). Tokens of different kinds must all match; tokens of one kind are
 * alternatives: `d384,d1536,base64` = (384 or 1536 dims) and base64.
 */
export function matchesScenario(scenario: EmbedScenario, tokens: readonly string[]): boolean {
  if (tokens.length === 0) return true;
  if (tokens.includes(scenario.id)) return true;
  const parts = tokens.filter((token) => token !== scenario.id && !token.includes('-'));
  if (parts.length === 0) return false;
  const kinds: Array<[RegExp, string]> = [
    [/^d\d+$/, `d${scenario.dimensions}`],
    [/^n\d+$/, `n${scenario.inputsPerRequest}`],
    [/^(float|base64)$/, scenario.encoding],
  ];
  return kinds.every(([kind, own]) => {
    const wanted = parts.filter((token) => kind.test(token));
    return wanted.length === 0 || wanted.includes(own);
  });
}
