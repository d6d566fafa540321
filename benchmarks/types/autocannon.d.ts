/**
 * autocannon 9 ships no types and there is no @types package in the workspace; this declares the
 * slice of the programmatic API the benchmark uses.
 */
declare module 'autocannon' {
  export interface AutocannonOptions {
    url: string;
    connections?: number;
    amount?: number;
    duration?: number;
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    pipelining?: number;
    /** Sample interval in ms; `amount` runs only notice they are done on a sample tick. */
    sampleInt?: number;
    timeout?: number;
  }

  export interface Percentiles {
    average: number;
    mean: number;
    stddev: number;
    min: number;
    max: number;
    p50: number;
    p90: number;
    p99: number;
    p99_9: number;
  }

  export interface AutocannonResult {
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
    resets: number;
    mismatches: number;
    '2xx': number;
    latency: Percentiles & { totalCount: number };
    requests: Percentiles & { total: number; sent: number };
  }

  function autocannon(options: AutocannonOptions): Promise<AutocannonResult>;
  export default autocannon;
}
