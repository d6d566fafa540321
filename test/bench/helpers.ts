/**
 * Shared set-up of the `volley bench` tests: real simulators on port 0 and the built
 * @volley/bench (worker threads load its dist/ shard entry).
 */
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
