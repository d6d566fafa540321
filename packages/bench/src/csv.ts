/**
 * CSV outputs: one row per run (a sweep's points, a search's probes) with the headline figures,
 * and, when per-request rows were kept (`--save-detailed`), one row per request. RFC 4180
 * quoting; numbers in ms unless the column says otherwise.
 */

import type { BenchDocument } from './document.js';
import { runsOf } from './document.js';
import type { RunResult } from './result.js';

const RUN_COLUMNS: Array<[string, (r: RunResult) => unknown]> = [
  ['label', (r) => r.label],
  ['load_model', (r) => r.load.model],
  ['request_rate', (r) => r.request_rate],
  ['max_concurrency', (r) => r.max_concurrency],
  ['stop_reason', (r) => r.stop_reason],
  ['duration_s', (r) => r.duration],
  ['completed', (r) => r.completed],
  ['failed', (r) => r.failed],
  ['request_throughput', (r) => r.request_throughput],
  ['request_goodput', (r) => r.request_goodput],
  ['output_throughput', (r) => r.output_throughput],
  ['total_token_throughput', (r) => r.total_token_throughput],
  ['ttft_mean_ms', (r) => r.metrics.ttft_ms.mean],
  ['ttft_p50_ms', (r) => r.metrics.ttft_ms.percentiles.p50],
  ['ttft_p99_ms', (r) => r.metrics.ttft_ms.percentiles.p99],
  ['first_chunk_p50_ms', (r) => r.metrics.first_chunk_ms.percentiles.p50],
  ['tpot_mean_ms', (r) => r.metrics.tpot_ms.mean],
  ['tpot_p50_ms', (r) => r.metrics.tpot_ms.percentiles.p50],
  ['tpot_p99_ms', (r) => r.metrics.tpot_ms.percentiles.p99],
  ['itl_per_chunk_p50_ms', (r) => r.metrics.itl_per_chunk_ms.percentiles.p50],
  ['itl_per_chunk_p99_ms', (r) => r.metrics.itl_per_chunk_ms.percentiles.p99],
  ['e2el_p50_ms', (r) => r.metrics.e2el_ms.percentiles.p50],
  ['e2el_p99_ms', (r) => r.metrics.e2el_ms.percentiles.p99],
  ['ttft_from_intended_p99_ms', (r) => r.metrics.ttft_from_intended_ms.percentiles.p99],
  ['e2el_from_intended_p99_ms', (r) => r.metrics.e2el_from_intended_ms.percentiles.p99],
  ['schedule_lag_p99_ms', (r) => r.metrics.schedule_lag_ms.percentiles.p99],
  ['client_limited', (r) => r.client_health.client_limited],
  ['client_cpu_cores', (r) => r.client_health.process_cpu_cores],
  ['error_rate', (r) => r.errors.error_rate],
];

/** One row per run of the document. */
export function runsCsv(doc: BenchDocument): string {
  const lines = [RUN_COLUMNS.map(([name]) => name).join(',')];
  for (const run of runsOf(doc)) lines.push(RUN_COLUMNS.map(([, get]) => cell(get(run))).join(','));
  return `${lines.join('\n')}\n`;
}

/** One row per kept request of every run, or undefined when none were kept. */
export function requestsCsv(doc: BenchDocument): string | undefined {
  const runs = runsOf(doc).filter((r) => r.requests !== undefined && r.requests.length > 0);
  const first = runs[0]?.requests?.[0];
  if (first === undefined) return undefined;
  const columns = Object.keys(first);
  const lines = [['run', ...columns].join(',')];
  for (const run of runs) {
    for (const row of run.requests ?? []) {
      const values = row as unknown as Record<string, unknown>;
      lines.push([cell(run.label), ...columns.map((c) => cell(values[c]))].join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
