/**
 * @volley/bench: load-test an OpenAI-compatible LLM endpoint. Open and closed loops from a
 * precomputed schedule paced against absolute time, across worker threads; TTFT, TPOT, ITL, E2E
 * from the actual and the intended send time; goodput; sweeps and SLO search; client-health
 * verdicts; JSON (vLLM's field names where they mean the same), CSV and an offline HTML report.
 */

export type { DistributionName, RequestRow, Slos } from './aggregate.js';
export { DISTRIBUTIONS } from './aggregate.js';
export type {
  Benchmark,
  BenchmarkOptions,
  BenchProgress,
  Load,
  StopConditions,
} from './benchmark.js';
export { createBenchmark, describeLoad } from './benchmark.js';
export type { ComparedMetric, Comparison } from './compare.js';
export { compareResults, formatComparison } from './compare.js';
export { requestsCsv, runsCsv } from './csv.js';
export type {
  BenchPrompt,
  BodyOptions,
  EndpointKind,
  FileRequest,
  LengthDistribution,
  SyntheticOptions,
} from './dataset.js';
export { drawLength, filePrompts, syntheticPrompts, tokenCounter } from './dataset.js';
export type {
  BenchDocument,
  DocumentMeta,
  RunDocument,
  SloSearchDocument,
  SweepDocument,
} from './document.js';
export {
  machineInfo,
  readDocument,
  runDocument,
  runsOf,
  sloSearchDocument,
  sweepDocument,
} from './document.js';
export type { ClientHealth } from './health.js';
export { HEALTH_LIMITS } from './health.js';
export { CHART_COLORS, chartIds, renderHtmlReport } from './html.js';
export type { LoadDescription, RunResult, StopReason, TimeSeries, VllmMetric } from './result.js';
export { HEADLINE_FIELDS, headline, RESULT_SCHEMA, RESULT_SCHEMA_VERSION } from './result.js';
export type { ArrivalDistribution, ArrivalScheduleOptions, RampUp } from './schedule.js';
export { createArrivalSchedule } from './schedule.js';
export { fitSlope, kneeIndex, tQuantile, twoSidedP, welchTest } from './stats.js';
export type {
  AutoSweepOptions,
  SloSearchOptions,
  SloSearchOutcome,
  SweepAxis,
  SweepOptions,
  SweepOutcome,
} from './sweep.js';
export { autoSweep, findKnee, searchSlo, sweep } from './sweep.js';
