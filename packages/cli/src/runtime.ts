/**
 * The runtime a batch command runs on, from its flags: one place that turns `--base-url`,
 * `--rpm`, `--mode` and the rest into `createVolley` options, for `volley run` and `volley embed`.
 */

import type { EndpointOptions, Volley, VolleyMode } from 'volley';
import { createVolley } from 'volley';
import type { MetricsFlags } from './metrics-server.js';
import { wantsMetrics } from './metrics-server.js';

/** The flags every batch command shares. */
export interface RuntimeFlags extends MetricsFlags {
  baseUrl?: string[] | undefined;
  model?: string | undefined;
  concurrency?: number | undefined;
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
}

/**
 * Creates the runtime; with no `--base-url` (and no `OPENAI_BASE_URL`) it starts the embedded
 * simulator. Logs stay off unless `VOLLEY_LOG_LEVEL` is set: the progress display reports
 * events to people.
 *
 * @example
 * const volley = await createCliVolley({ baseUrl: ['http://localhost:8000/v1'], rpm: 600 });
 */
export function createCliVolley(flags: RuntimeFlags): Promise<Volley> {
  return createVolley({
    ...(flags.baseUrl === undefined
      ? {}
      : { endpoints: flags.baseUrl.map((baseUrl) => endpointFor(baseUrl, flags)) }),
    ...(flags.model === undefined ? {} : { model: flags.model }),
    ...(flags.concurrency === undefined ? {} : { concurrency: flags.concurrency }),
    ...(flags.mode === undefined ? {} : { mode: flags.mode }),
    ...(flags.threads === undefined ? {} : { threads: flags.threads }),
    ...(flags.maxRetries === undefined ? {} : { maxRetries: flags.maxRetries }),
    ...(flags.timeoutMs === undefined ? {} : { timeoutMs: flags.timeoutMs }),
    ...(flags.cluster === undefined ? {} : { cluster: { url: flags.cluster } }),
    ...(process.env.VOLLEY_LOG_LEVEL === undefined ? { logger: false } : {}),
    ...(wantsMetrics(flags) ? { metrics: true } : {}),
  });
}

function endpointFor(baseUrl: string, flags: RuntimeFlags): EndpointOptions {
  const endpoint: EndpointOptions = { baseUrl };
  if (flags.rpm !== undefined) endpoint.rpm = flags.rpm;
  if (flags.tpm !== undefined) endpoint.tpm = flags.tpm;
  if (flags.maxInFlight !== undefined) endpoint.maxInFlight = flags.maxInFlight;
  if (flags.allowInsecureHttp === true) endpoint.allowInsecureHttp = true;
  return endpoint;
}
