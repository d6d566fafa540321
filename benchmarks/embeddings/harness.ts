/**
 * What every embeddings contender shares, on top of the throughput harness (closed-loop lanes,
 * the measured window and its WINDOW_START / WINDOW_END announcements, the result line): the
 * scenario arguments, per-vector metrics, and the spot check after the window.
 *
 * argv: `<baseUrl> <concurrency> <requests> <warmupRequests> <dimensions> <inputsPerRequest> <encoding>`
 */
import type { RecordableHistogram } from 'node:perf_hooks';
import type { ContenderArgs, ContenderResult, Tally } from '../throughput/harness.js';
import {
  exitWhenFlushed,
  measure,
  parseContenderArgs,
  report,
  round,
  runLanes,
} from '../throughput/harness.js';
import type { Encoding } from './scenarios.js';
import { ENCODINGS } from './scenarios.js';
import type { Sample } from './workload.js';
import { inputsFor, spotCheck } from './workload.js';

export interface EmbedArgs extends ContenderArgs {
  dimensions: number;
  inputsPerRequest: number;
  encoding: Encoding;
}

export interface EmbedContenderResult extends ContenderResult {
  dimensions: number;
  inputsPerRequest: number;
  encoding: Encoding;
  /** Vectors received and checked in the window: completed requests × inputs per request. */
  vectors: number;
  vectorsPerSec: number;
  /** Client CPU (all threads of the process) per 1,000 vectors. */
  cpuMsPer1kVectors: number;
  /** `ok`, or why the end-of-run spot check failed (the contender then exits non-zero). */
  spotCheck: string;
}

export function parseEmbedArgs(argv: readonly string[] = process.argv.slice(2)): EmbedArgs {
  const base = parseContenderArgs(argv.slice(0, 4));
  const [dimensions, inputsPerRequest, encoding] = argv.slice(4);
  const d = Number(dimensions);
  const n = Number(inputsPerRequest);
  if (!Number.isInteger(d) || d <= 0 || !Number.isInteger(n) || n <= 0)
    throw new Error(
      'usage: <contender>.ts <baseUrl> <concurrency> <requests> <warmupRequests> <dimensions> <inputsPerRequest> <float|base64>',
    );
  if (!(ENCODINGS as readonly string[]).includes(encoding ?? ''))
    throw new Error(`encoding must be float or base64, got ${String(encoding)}`);
  return { ...base, dimensions: d, inputsPerRequest: n, encoding: encoding as Encoding };
}

/**
 * One request: embed `inputs` (the scenario's batch), check every vector's shape, and return the
 * vectors so the last response can be spot-checked after the window.
 */
export type EmbedOnce = (inputs: string[]) => Promise<Sample>;

/**
 * A contender's whole run: C lanes over a shared request counter (request k carries the inputs
 * `inputsFor(k)`), a warm-up, the measured window, the spot check, the result line, exit.
 * `fanOut` replaces the lanes for contenders that use their own limiter (the SDK with p-limit).
 */
export async function runEmbedContender(
  name: string,
  args: EmbedArgs,
  once: EmbedOnce,
  options: {
    fanOut?: (
      count: number,
      call: () => Promise<void>,
      latency?: RecordableHistogram,
    ) => Promise<Tally>;
    extra?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
    close?: () => Promise<void>;
  } = {},
): Promise<void> {
  let issued = 0;
  let sample: Sample | undefined;
  // Issue order decides the inputs, so every contender sends the same requests.
  const call = async (): Promise<void> => {
    sample = await once(inputsFor(issued++, args.inputsPerRequest));
  };
  const fanOut =
    options.fanOut ??
    ((count: number, fn: () => Promise<void>, latency?: RecordableHistogram) =>
      runLanes(args.concurrency, count, fn, latency));

  await fanOut(args.warmup, call);
  issued = 0;
  sample = undefined;
  const result = await measure(
    name,
    args,
    (latency) => fanOut(args.count, call, latency),
    options.extra,
  );
  const checked = spotCheck(sample, args.dimensions);
  const vectors = result.completed * args.inputsPerRequest;
  const cpuMs = result.cpuUserMs + result.cpuSystemMs;
  const embedResult: EmbedContenderResult = {
    ...result,
    dimensions: args.dimensions,
    inputsPerRequest: args.inputsPerRequest,
    encoding: args.encoding,
    vectors,
    vectorsPerSec: round((vectors / result.wallMs) * 1000, 1),
    cpuMsPer1kVectors: vectors > 0 ? round((cpuMs / vectors) * 1000, 2) : 0,
    spotCheck: checked ?? 'ok',
  };
  report(embedResult);
  await options.close?.();
  exitWhenFlushed(checked === undefined ? 0 : 3);
}
