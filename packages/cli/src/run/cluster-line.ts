/**
 * One line of a batch spread over a cluster, on either side of Redis: a worker sends it with its
 * own runtime (`lineRunner`), the coordinator turns the report back into what the sending pass
 * expects of a local call (`answerOf`, or the error rethrown).
 */
import type { LineOutcome, WorkerReport, WorkLine } from '@volley/cluster';
import type { SerializedError } from '@volley/core';
import { deserializeError, serializeError } from '@volley/core';
import type { CallResult, Volley } from 'volley';
import { ErrorCode, isVolleyError } from 'volley';
import { leavesLinePending } from '../batch/failure.js';
import type { LineAnswer } from './batch-run.js';

/** A success as it travels: status, request id, the body's text, latency, usage, model. */
interface OkPayload {
  s: number;
  r: string;
  t: string;
  l: number;
  u?: CallResult['usage'];
  m: string;
}

/**
 * Sends a line with `volley` and says what came of it. `unsent` (surely never sent) or undefined
 * (maybe sent) when this process cannot do it (no endpoint left, aborted by a stop): the line is
 * another worker's, not a failure.
 */
export function lineRunner(
  volley: Volley,
): (line: WorkLine) => Promise<LineOutcome | 'unsent' | undefined> {
  return async (line) => {
    const body = line.b as Record<string, unknown>;
    try {
      const result = await volley.request({ path: line.u, body, raw: true });
      const ok: OkPayload = {
        s: result.status,
        r: result.requestId,
        t: result.bodyText ?? JSON.stringify(result.body ?? null),
        l: result.latencyMs,
        m: typeof body.model === 'string' ? body.model : '',
      };
      if (result.usage !== undefined) ok.u = result.usage;
      return { ok };
    } catch (error) {
      // A worker aborts only when it stops, so an abort leaves the line to another worker too.
      if (leavesLinePending(error, true) && isVolleyError(error)) {
        return error.sent === false || error.code === ErrorCode.NO_ENDPOINT ? 'unsent' : undefined;
      }
      return { error: withoutStacks(serializeError(error)) };
    }
  };
}

/** Stacks name the worker's paths and cost bytes on every failed line; the record never shows them. */
function withoutStacks(error: SerializedError): SerializedError {
  const { stack: _stack, cause, ...rest } = error;
  return cause === undefined ? rest : { ...rest, cause: withoutStacks(cause) };
}

/** The coordinator's view of a worker's report: a local call's answer, or its error thrown. */
export function answerOf(report: WorkerReport): LineAnswer {
  if ('error' in report) throw deserializeError(report.error);
  const ok = report.ok as OkPayload;
  return {
    response: { status: ok.s, requestId: ok.r, body: undefined, bodyText: ok.t },
    latencyMs: ok.l,
    spend: [{ model: ok.m, usage: ok.u }],
  };
}
