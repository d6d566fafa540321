/**
 * What the runtime logs by itself: one line per decision an operator wants to know about (info
 * and above), the per-call details at debug. Every line about an endpoint names it by origin
 * and path, with the model, never by its index and never with its key.
 */
import type { LearnedLimits, LimitReason, Logger, VolleyEvents } from '@volley/core';
import type { EventEmitter } from 'eventemitter3';

/** Who a log line is about: an endpoint by origin and path, and the model. */
export interface LogSubject {
  endpoint: string;
  model?: string;
}

/**
 * `scheme://host:port/path` of a base URL, the port spelled out. Credentials, query and fragment
 * are dropped: a key can hide in any of them.
 */
export function endpointName(baseUrl: string): string {
  if (!URL.canParse(baseUrl)) return '(invalid URL)';
  const url = new URL(baseUrl);
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  return `${url.protocol}//${url.hostname}:${port}${url.pathname.replace(/\/+$/, '')}`;
}

/** How the runtime's endpoints and lanes are named in its log. */
export interface LogNames {
  /** By endpoint index. */
  endpoint(index: number): LogSubject;
  /** A call's attempt: its endpoint and the model its request names (else the default). */
  call(index: number, model: string | undefined): LogSubject;
  /** By token-bucket lane (an endpoint's own lane, or one of its models'). */
  lane(index: number): LogSubject;
}

export function logNames(
  baseUrls: readonly string[],
  lanes: ReadonlyArray<{ baseUrl: string; model: string | undefined }>,
  defaultModel: string | undefined,
): LogNames {
  const subject = (baseUrl: string | undefined, model: string | undefined): LogSubject => {
    const named: LogSubject = {
      endpoint: baseUrl === undefined ? '(none)' : endpointName(baseUrl),
    };
    if (model !== undefined) named.model = model;
    return named;
  };
  return {
    endpoint: (index) => subject(baseUrls[index], defaultModel),
    call: (index, model) => subject(baseUrls[index], model ?? defaultModel),
    lane: (index) => subject(lanes[index]?.baseUrl, lanes[index]?.model ?? defaultModel),
  };
}

/** Logs the runtime's events at the levels the README documents. */
export function logEvents(events: EventEmitter<VolleyEvents>, log: Logger, names: LogNames): void {
  events.on('endpointStopped', ({ endpoint, error }) => {
    log.warn(
      { ...names.endpoint(endpoint), code: error.code, status: error.status },
      `endpoint stopped: ${error.message}`,
    );
  });
  events.on('endpointDown', ({ endpoint, error }) => {
    log.warn({ ...names.endpoint(endpoint), code: error.code }, `endpoint down: ${error.message}`);
  });
  events.on('endpointUnhealthy', ({ endpoint, openMs, failures }) => {
    log.info(
      { ...names.endpoint(endpoint), failures, openMs },
      `circuit opened after ${failures} failures: out of rotation for ${openMs} ms`,
    );
  });
  events.on('endpointHealthy', ({ endpoint }) => {
    log.info(names.endpoint(endpoint), 'endpoint back in rotation');
  });
  events.on('workerCrash', ({ error, restarts }) => {
    log.warn({ restarts, err: error }, 'worker thread crashed; its requests were re-dispatched');
  });
  events.on('error', (error) => log.error({ err: error }, error.message));
  if (!log.isLevelEnabled('debug')) return;
  events.on('retry', ({ callId, attempt, endpoint, model, delayMs, error }) => {
    log.debug(
      {
        ...names.call(endpoint, model),
        callId,
        attempt,
        delayMs,
        code: error.code,
        status: error.status,
      },
      'retrying',
    );
  });
  events.on('rateLimited', ({ callId, attempt, endpoint, model, retryAfterMs }) => {
    log.debug(
      { ...names.call(endpoint, model), callId, attempt, retryAfterMs },
      'rate limited (429)',
    );
  });
  events.on('concurrencyLimit', ({ endpoint, from, to, reason, ...figures }) => {
    log.debug(
      { ...names.endpoint(endpoint), from, to, reason, ...figures },
      `concurrency limit ${from} -> ${to}: ${LIMIT_REASONS[reason]}`,
    );
  });
  events.on('hedge', ({ callId, attempt, endpoint, model, to, afterMs }) => {
    log.debug(
      { ...names.call(endpoint, model), callId, attempt, to: names.endpoint(to).endpoint, afterMs },
      `hedged: no first byte after ${Math.round(afterMs)} ms; a copy went to another endpoint`,
    );
  });
  events.on('fail', ({ callId, attempt, endpoint, model, error }) => {
    log.debug(
      { ...names.call(endpoint, model), callId, attempt, code: error.code, status: error.status },
      `call failed: ${error.message}`,
    );
  });
}

/** Why an adaptive limit moved, in words (`concurrency: 'auto'`). */
const LIMIT_REASONS: Record<LimitReason, string> = {
  'slow-start': 'latency held; doubling until it rises',
  'latency-flat': 'latency held with the slots in use; growing',
  'latency-rose': 'latency rose past the tolerance; shrinking',
  'server-queue': 'the server reports requests waiting for a slot',
  'rate-limited': 'a 429 answer',
  'load-shed': 'a 503 answer (server queue full)',
  timeout: 'an attempt timed out',
};

/** The line for limits a lane adopted from a server's headers. */
export function logLimitLearned(log: Logger, subject: LogSubject, limits: LearnedLimits): void {
  const parts: string[] = [];
  if (limits.rpm !== undefined) parts.push(`${limits.rpm} requests/min`);
  if (limits.tpm !== undefined) parts.push(`${limits.tpm} tokens/min`);
  log.info({ ...subject, ...limits }, `limit learned from headers: ${parts.join(', ')}`);
}
