/**
 * `volley bench compare a.json b.json`: the headline metrics of two result files side by side,
 * the difference, and whether it is significant. Significance needs repetitions: with at least
 * two on each side (`--repetitions`), Welch's unequal-variance t-test runs on the per-repetition
 * values (two-sided, α = 0.05); with fewer the difference is shown and marked as untested, because
 * one run against one run cannot separate a change from noise.
 */

import { ErrorCode, VolleyError } from '@volley/core';
import type { BenchDocument } from './document.js';
import type { RunResult } from './result.js';
import { HEADLINE_FIELDS, headline } from './result.js';
import { welchTest } from './stats.js';

/** Lower is better for latencies, higher for throughput. */
const HIGHER_IS_BETTER = new Set(['request_throughput', 'output_throughput', 'request_goodput']);

/** One compared metric. */
export interface ComparedMetric {
  metric: string;
  a: number | null;
  b: number | null;
  /** b − a. */
  difference: number | null;
  /** (b − a) / a. */
  relative: number | null;
  /** `better`, `worse` or `same` for b against a, judged by the metric's direction. */
  direction: 'better' | 'worse' | 'same' | null;
  test: 'welch-t' | null;
  p_value: number | null;
  significant: boolean | null;
  repetitions: { a: number; b: number };
}

/** The comparison of two result documents. */
export interface Comparison {
  a: string;
  b: string;
  alpha: number;
  metrics: ComparedMetric[];
  note: string;
}

/** The single run a document stands for (a sweep or search cannot be compared point by point). */
function runOf(doc: BenchDocument, name: string): RunResult {
  if (doc.kind !== 'run') {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name} holds a ${doc.kind}; compare works on single runs (with --repetitions for significance)`,
    );
  }
  return doc as unknown as RunResult;
}

/**
 * Compares two result documents.
 *
 * @example
 * const cmp = compareResults(JSON.parse(a), JSON.parse(b), { a: 'a.json', b: 'b.json' });
 * cmp.metrics.find((m) => m.metric === 'p99_ttft_ms')?.significant;
 */
export function compareResults(
  docA: BenchDocument,
  docB: BenchDocument,
  names: { a: string; b: string },
  alpha = 0.05,
): Comparison {
  const a = runOf(docA, names.a);
  const b = runOf(docB, names.b);
  const repsA = a.repetitions ?? [];
  const repsB = b.repetitions ?? [];
  const metrics = HEADLINE_FIELDS.map((field): ComparedMetric => {
    const va = headline(a, field);
    const vb = headline(b, field);
    const difference = va === null || vb === null ? null : vb - va;
    const relative = difference === null || va === null || va === 0 ? null : difference / va;
    const samplesA = repsA.map((r) => r[field]).filter((v): v is number => typeof v === 'number');
    const samplesB = repsB.map((r) => r[field]).filter((v): v is number => typeof v === 'number');
    const test = welchTest(samplesA, samplesB);
    let direction: ComparedMetric['direction'] = null;
    if (difference !== null) {
      if (difference === 0) direction = 'same';
      else direction = difference > 0 === HIGHER_IS_BETTER.has(field) ? 'better' : 'worse';
    }
    return {
      metric: field,
      a: va,
      b: vb,
      difference,
      relative,
      direction,
      test: test === undefined ? null : 'welch-t',
      p_value: test === undefined || Number.isNaN(test.p) ? null : test.p,
      significant: test === undefined || Number.isNaN(test.p) ? null : test.p < alpha,
      repetitions: { a: samplesA.length, b: samplesB.length },
    };
  });
  const tested = metrics.some((m) => m.test !== null);
  return {
    a: names.a,
    b: names.b,
    alpha,
    metrics,
    note: tested
      ? `Welch's t-test on per-repetition values, two-sided, alpha ${alpha}`
      : "no significance test: run both with --repetitions 2 or more (Welch's t-test on per-repetition values)",
  };
}

/** The comparison as an aligned text table. */
export function formatComparison(cmp: Comparison): string {
  const header = ['metric', 'a', 'b', 'diff', 'diff %', 'p', 'verdict'];
  const rows = cmp.metrics.map((m) => [
    m.metric,
    fmt(m.a),
    fmt(m.b),
    m.difference === null ? '—' : `${m.difference > 0 ? '+' : ''}${fmt(m.difference)}`,
    m.relative === null ? '—' : `${m.relative > 0 ? '+' : ''}${(m.relative * 100).toFixed(1)}%`,
    m.p_value === null ? '—' : m.p_value < 0.001 ? '<0.001' : m.p_value.toFixed(3),
    m.direction === null
      ? '—'
      : m.significant === null
        ? `${m.direction} (untested)`
        : m.significant
          ? `${m.direction} (significant)`
          : 'no significant change',
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] as string).length)),
  );
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ');
  return [`a: ${cmp.a}`, `b: ${cmp.b}`, line(header), ...rows.map(line), cmp.note, ''].join('\n');
}

function fmt(n: number | null): string {
  if (n === null) return '—';
  const abs = Math.abs(n);
  return abs >= 100 ? n.toFixed(1) : abs >= 1 ? n.toFixed(2) : n.toFixed(4);
}
