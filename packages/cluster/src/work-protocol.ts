/**
 * What travels between a batch's coordinator and its workers, through Redis. Plain JSON: a
 * worker needs no access to the coordinator's files, only these.
 *
 *   coordinator --XADD work {d: WorkLine[]}-->  worker  (one chunk of lines)
 *   worker --XADD results {w, c, x, n, d: LineReport[]}--> coordinator (results, in batches)
 */
import type { SerializedError } from '@volley/core';
import { ErrorCode, scrubSecrets, systemClock, VolleyError } from '@volley/core';
import type { Redis } from 'ioredis';
import { Link } from './link.js';
import { parseRedisUrl } from './url.js';
import type { WorkScriptCommands } from './work-scripts.js';
import { defineWorkScripts } from './work-scripts.js';

/** One input line, ready to send: its number in the input, the API path and the request body. */
export interface WorkLine {
  i: number;
  u: string;
  b: unknown;
}

/** What a worker made of a line: a success (whatever the caller's runner returns) or an error. */
export type LineOutcome = { ok: unknown } | { error: SerializedError };

/** A line's outcome as it travels back; `rs` marks a line another worker had sent before. */
export type LineReport = LineOutcome & { i: number; rs?: 1 };

/** A report as the coordinator hands it on: with the worker that produced it. */
export type WorkerReport = LineReport & { worker: string };

/** Default lease of a chunk: past it without renewal, another worker takes the chunk over. */
export const DEFAULT_LEASE_MS = 30_000;
/** Default lifetime of a batch's keys once its coordinator stops refreshing them. */
export const DEFAULT_BATCH_TTL_MS = 6 * 3_600_000;

/** The error of a line still waiting when the coordinator stopped: the line stays pending. */
export function stoppedError(message: string): VolleyError {
  return new VolleyError(ErrorCode.STOPPED, message);
}

/** A connection for the work queue: a {@link Link} (outage tracking, counted commands) plus scripts. */
export type WorkLink = Link;

/** One counted command on the work queue's connection (a failure marks the link lost). */
export function runWork<T>(
  link: WorkLink,
  command: (redis: Redis & WorkScriptCommands) => Promise<T>,
): Promise<T> {
  link.commands++;
  return command(link.redis as unknown as Redis & WorkScriptCommands).catch((error: unknown) => {
    // A reply error (NOGROUP: the batch just ended) is an answer: Redis itself is fine.
    if ((error as { name?: unknown } | null)?.name !== 'ReplyError') link.lost(redisMessage(error));
    throw error;
  });
}

export async function openWorkLink(url: string, name: string): Promise<WorkLink> {
  const target = parseRedisUrl(name, url);
  const timings = { connectTimeoutMs: 5_000, commandTimeoutMs: 5_000, probeMs: 250 };
  const link = new Link(target, timings, systemClock);
  defineWorkScripts(link.redis);
  await link.connect();
  return link;
}

/** One line of text for an error from Redis, without any secret. */
export function redisMessage(error: unknown): string {
  return scrubSecrets(error instanceof Error ? error.message : String(error));
}

/** Sleeps, unref'd: a timer must never keep a finished process alive. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
