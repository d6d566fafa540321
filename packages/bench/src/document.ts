/**
 * The result file's top level. A single run puts its {@link RunResult} fields at the top (as
 * `vllm bench serve` does, so its readers work); a sweep or an SLO search lists its points under
 * `runs`. Every document carries the schema name and version, what was measured, and where.
 */

import { arch, cpus, platform } from 'node:os';
import { ErrorCode, VolleyError } from '@volley/core';
import type { RunResult } from './result.js';
import { RESULT_SCHEMA, RESULT_SCHEMA_VERSION } from './result.js';
import type { SloSearchOutcome, SweepOutcome } from './sweep.js';

/** What every document records about the run's setup. */
export interface DocumentMeta {
  date: string;
  label: string;
  /** vLLM's names: `openai` (completions) or `openai-chat`. */
  backend: 'openai' | 'openai-chat';
  endpoint_type: 'openai' | 'openai-chat';
  /** The first `--base-url`. */
  base_url: string;
  /** Every `--base-url`, when there are replicas (two or more). */
  base_urls?: string[];
  /** True when no `--base-url` was given and the embedded simulator answered. */
  embedded_simulator: boolean;
  model_id: string;
  tokenizer_id: string;
  dataset: Record<string, unknown>;
  streaming: boolean;
  seed: number;
  threads: number;
  num_warmups: number;
  goodput_slos_ms: Record<string, number>;
  machine: { node: string; platform: string; arch: string; cpus: number; cpu_model: string };
}

interface Base {
  schema: typeof RESULT_SCHEMA;
  schema_version: typeof RESULT_SCHEMA_VERSION;
}

export type RunDocument = Base & { kind: 'run' } & DocumentMeta & RunResult;
export type SweepDocument = Base & { kind: 'sweep' } & DocumentMeta & {
    runs: RunResult[];
    sweep: Omit<SweepOutcome, 'runs'>;
  };
export type SloSearchDocument = Base & { kind: 'slo_search' } & DocumentMeta & {
    runs: RunResult[];
    slo_search: Omit<SloSearchOutcome, 'probes'> & {
      probes: Array<{ value: number; passed: boolean; good_fraction: number | null }>;
    };
  };

/** A result file. */
export type BenchDocument = RunDocument | SweepDocument | SloSearchDocument;

/** Machine facts for `meta.machine`. */
export function machineInfo(): DocumentMeta['machine'] {
  const list = cpus();
  return {
    node: process.version,
    platform: platform(),
    arch: arch(),
    cpus: list.length,
    cpu_model: list[0]?.model ?? 'unknown',
  };
}

const base = (): Base => ({ schema: RESULT_SCHEMA, schema_version: RESULT_SCHEMA_VERSION });

/** A single-run document. */
export function runDocument(meta: DocumentMeta, result: RunResult): RunDocument {
  return { ...base(), kind: 'run', ...meta, ...result };
}

/** A sweep document. */
export function sweepDocument(meta: DocumentMeta, outcome: SweepOutcome): SweepDocument {
  const { runs, ...sweep } = outcome;
  return { ...base(), kind: 'sweep', ...meta, runs, sweep };
}

/** An SLO-search document. */
export function sloSearchDocument(
  meta: DocumentMeta,
  outcome: SloSearchOutcome,
): SloSearchDocument {
  const { probes, ...search } = outcome;
  return {
    ...base(),
    kind: 'slo_search',
    ...meta,
    runs: probes.map((p) => p.result),
    slo_search: {
      ...search,
      probes: probes.map(({ value, passed, good_fraction }) => ({ value, passed, good_fraction })),
    },
  };
}

/**
 * Checks a parsed file is a result this version reads; names what is wrong.
 */
export function readDocument(value: unknown, name: string): BenchDocument {
  const doc = value as Partial<Base & { kind: unknown }> | null;
  if (typeof doc !== 'object' || doc === null || doc.schema !== RESULT_SCHEMA) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name} is not a volley bench result (no "schema": "${RESULT_SCHEMA}")`,
    );
  }
  if (doc.schema_version !== RESULT_SCHEMA_VERSION) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,

      `${name} has schema_version ${String(doc.schema_version)}; this volley reads ${RESULT_SCHEMA_VERSION}`,
    );
  }
  if (doc.kind !== 'run' && doc.kind !== 'sweep' && doc.kind !== 'slo_search') {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name} has an unknown "kind": ${JSON.stringify(doc.kind)}`,
    );
  }
  return value as BenchDocument;
}

/** The runs of any document. */
export function runsOf(doc: BenchDocument): RunResult[] {
  return doc.kind === 'run' ? [doc] : doc.runs;
}
