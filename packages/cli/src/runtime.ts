/**
 * The runtime a batch command runs on, from its flags: one place that turns `--base-url`,
 * `--rpm`, `--mode` and the rest into `createVolley` options, for `volley run` and `volley embed`.
 */

import type { Logger } from '@volley/core';
import { createLogger, defaultAdaptiveLimitPolicy } from '@volley/core';
import type { EndpointOptions, Volley, VolleyMode } from 'volley';
import { createVolley, ErrorCode, VolleyError } from 'volley';
import type { MetricsFlags } from './metrics-server.js';
import { wantsMetrics } from './metrics-server.js';

/** The flags every batch command shares. */
export interface RuntimeFlags extends MetricsFlags {
  baseUrl?: string[] | undefined;
  /** `--api-key-env NAME`: the k-th names the variable holding the k-th `--base-url`'s key. */
  apiKeyEnv?: string[] | undefined;
  /** `--header 'Name: value'`: sent with every request to every endpoint. */
  header?: string[] | undefined;
  /** `--auth`: how every endpoint's key is sent (default: by host, see EndpointOptions.auth). */
  auth?: 'bearer' | 'api-key' | undefined;
  model?: string | undefined;
  /** `'auto'`: each endpoint's limit adapts to its server (README, "Concurrency auto"). */
  concurrency?: number | 'auto' | undefined;
  rpm?: number | undefined;
  tpm?: number | undefined;
  /** Slot capacity of each endpoint (local servers). */
  maxInFlight?: number | undefined;
  mode?: VolleyMode | undefined;
  threads?: number | undefined;
  maxRetries?: number | undefined;
  timeoutMs?: number | undefined;
  /** Allow plain http to hosts other than loopback. */
  allowInsecureHttp?: boolean | undefined;
  /** `--cluster <redis-url>`: share the endpoints' limits with every process on this Redis. */
  cluster?: string | undefined;
  /** `--cluster-prefix`: the prefix of the cluster's keys in Redis (default `volley`). */
  clusterPrefix?: string | undefined;
}

/**
 * The most requests a command may have in flight, which sizes its window of lines: the fixed
 * `--concurrency` (else `fallback`), or with `auto` the most the adaptive limits can reach
 * (`--max-in-flight`, else their default maximum) on every endpoint together.
 */
export function inFlightCeiling(flags: RuntimeFlags, fallback: number): number {
  if (flags.concurrency !== 'auto') return flags.concurrency ?? fallback;
  const perEndpoint = flags.maxInFlight ?? defaultAdaptiveLimitPolicy.max;
  return perEndpoint * (flags.baseUrl?.length ?? 1);
}

/**
 * Creates the runtime; with no `--base-url` (and no `OPENAI_BASE_URL`) it starts the embedded
 * simulator. Logs stay off unless `VOLLEY_LOG_LEVEL` is set: the progress display reports
 * events to people.
 *
 * @example
 * const volley = await createCliVolley({ baseUrl: ['http://localhost:8000/v1'], rpm: 600 });
 */
export async function createCliVolley(flags: RuntimeFlags): Promise<Volley> {
  const keyEnvs = flags.apiKeyEnv ?? [];
  if (keyEnvs.length > (flags.baseUrl?.length ?? 0)) {
    throw usage(
      `--api-key-env is given ${keyEnvs.length} times but --base-url ${flags.baseUrl?.length ?? 0}: each names the key of the --base-url in the same position`,
    );
  }
  const headers = flags.header === undefined ? undefined : parseHeaders(flags.header);
  return createVolley({
    ...(flags.baseUrl === undefined
      ? {}
      : {
          endpoints: flags.baseUrl.map((baseUrl, i) =>
            endpointFor(baseUrl, flags, keyEnvs[i], headers),
          ),
        }),
    ...(flags.model === undefined ? {} : { model: flags.model }),
    ...(flags.concurrency === undefined ? {} : { concurrency: flags.concurrency }),
    ...(flags.mode === undefined ? {} : { mode: flags.mode }),
    ...(flags.threads === undefined ? {} : { threads: flags.threads }),
    ...(flags.maxRetries === undefined ? {} : { maxRetries: flags.maxRetries }),
    ...(flags.timeoutMs === undefined ? {} : { timeoutMs: flags.timeoutMs }),
    ...(flags.cluster === undefined
      ? {}
      : {
          cluster: {
            url: flags.cluster,
            ...(flags.clusterPrefix === undefined ? {} : { prefix: flags.clusterPrefix }),
          },
        }),
    ...(operatorLog() === undefined ? { logger: false } : {}),
    ...(wantsMetrics(flags) ? { metrics: true } : {}),
    // Never hedged: in a batch every copy is a call billed twice, for a latency nobody waits on
    // (issue #13 item 4: library and `volley bench` only).
    hedge: false,
  });
}

/**
 * The JSON log for operators (stderr), when `--log-level` or VOLLEY_LOG_LEVEL asks for one: the
 * runtime's own lines, and the CLI's decisions worth knowing (a resume, and what it found).
 */
export function operatorLog(): Logger | undefined {
  if (process.env.VOLLEY_LOG_LEVEL === undefined) return undefined;
  cliLog ??= createLogger();
  return cliLog;
}
let cliLog: Logger | undefined;

function endpointFor(
  baseUrl: string,
  flags: RuntimeFlags,
  apiKeyEnv: string | undefined,
  headers: Record<string, string> | undefined,
): EndpointOptions {
  const endpoint: EndpointOptions = { baseUrl };
  if (apiKeyEnv !== undefined) endpoint.apiKeyEnv = apiKeyEnv;
  if (flags.auth !== undefined) endpoint.auth = flags.auth;
  if (headers !== undefined) endpoint.headers = { ...headers };
  if (flags.rpm !== undefined) endpoint.rpm = flags.rpm;
  if (flags.tpm !== undefined) endpoint.tpm = flags.tpm;
  if (flags.maxInFlight !== undefined) endpoint.maxInFlight = flags.maxInFlight;
  if (flags.allowInsecureHttp === true) endpoint.allowInsecureHttp = true;
  return endpoint;
}

function usage(message: string): VolleyError {
  return new VolleyError(ErrorCode.INVALID_OPTIONS, message);
}

/**
 * `--header 'Name: value'` flags as a header object (a later flag of the same name wins). A
 * malformed flag is named by its position and header name only: its value may be a key.
 */
export function parseHeaders(flags: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  flags.forEach((flag, i) => {
    const colon = flag.indexOf(':');
    const name = colon === -1 ? '' : flag.slice(0, colon).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw usage(
        `--header number ${i + 1} must look like 'Name: value' (a header name, a colon, the value)`,
      );
    }
    const value = flag.slice(colon + 1).trim();
    if (/[\r\n\0]/.test(value)) throw usage(`--header ${name} must not contain line breaks or NUL`);
    headers[name] = value;
  });
  return headers;
}
