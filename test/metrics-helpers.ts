/** Reading Prometheus text in tests: parsed with an independent parser, summed by label. */

import type { FaultKind } from '@volley/sim';
import type { ParsedFamily } from 'parse-prometheus-text-format';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

export type Scrape = Map<string, ParsedFamily>;

/** Parses exposition text; throws if it is not valid Prometheus text. */
export function parseScrape(text: string): Scrape {
  return new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]));
}

/** The sum of a counter or gauge (or a histogram's count) over the samples whose labels include `where`. */
export function sumOf(scrape: Scrape, name: string, where: Record<string, string> = {}): number {
  const family = scrape.get(name);
  if (family === undefined) throw new Error(`no metric ${name} in the scrape`);
  let sum = 0;
  for (const sample of family.metrics) {
    const labels = sample.labels ?? {};
    if (Object.entries(where).every(([key, value]) => labels[key] === value)) {
      // Histograms: the parser keeps their buckets but drops labels and `_count` when labels
      // exist, so the count is read off the +Inf bucket.
      sum += Number(sample.value ?? sample.count ?? sample.buckets?.['+Inf']);
    }
  }
  return sum;
}

/** Sums a counter by the values of one label. */
export function byLabel(scrape: Scrape, name: string, label: string): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const sample of scrape.get(name)?.metrics ?? []) {
    const key = sample.labels?.[label] ?? '';
    sums[key] = (sums[key] ?? 0) + Number(sample.value);
  }
  return sums;
}

/** Every label value in the scrape. */
export function allLabelValues(scrape: Scrape): string[] {
  const values: string[] = [];
  for (const family of scrape.values()) {
    for (const sample of family.metrics) values.push(...Object.values(sample.labels ?? {}));
  }
  return values;
}

/**
 * A simulator fault rule by content, so the same calls fail in both modes: a request mentioning
 * "poison" fails for good (400), one mentioning "flaky" fails once (500) and then succeeds.
 */
export function poisonAndFlaky(): (request: { body: unknown }) => FaultKind | undefined {
  const flakySeen = new Set<string>();
  return ({ body }) => {
    const text = JSON.stringify(body);
    if (text.includes('poison')) return 'status-400-context-length';
    if (text.includes('flaky') && !flakySeen.has(text)) {
      flakySeen.add(text);
      return 'status-500';
    }
    return undefined;
  };
}
