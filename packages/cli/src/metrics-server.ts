/**
 * `--metrics-port`, `--metrics-host` and `--metrics-dump` of `volley run` and `volley embed`: the
 * runtime's Prometheus metrics (`volley.metrics`) served on `/metrics` while the command runs,
 * and the final scrape written to a file when it ends.
 *
 * A batch job often ends between two scrapes, so the last numbers would never reach Prometheus:
 * the dump is taken after every call has ended, and is the file node_exporter's textfile
 * collector reads (or a test compares with the summary).
 */

import { rename, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Volley } from 'volley';
import { CliError, ExitCode } from './exit-codes.js';

/** The metrics flags, shared by the batch commands. */
export interface MetricsFlags {
  /** Serve `/metrics` on this port (0 picks a free one, printed on stderr). */
  metricsPort?: number | undefined;
  /** Interface to serve on; loopback unless asked, since metrics describe the workload. */
  metricsHost?: string | undefined;
  /** Write the final scrape here (Prometheus text) once every call has ended. */
  metricsDump?: string | undefined;
}

export const DEFAULT_METRICS_HOST = '127.0.0.1';

/** Whether the flags ask for metrics at all (the runtime then keeps them). */
export function wantsMetrics(flags: MetricsFlags): boolean {
  return flags.metricsPort !== undefined || flags.metricsDump !== undefined;
}

export interface MetricsExposure {
  /** Where `/metrics` is served, if it is. */
  url: string | undefined;
  /** After the runtime has ended: writes the dump, stops serving. Never throws. */
  finish(): Promise<void>;
}

/**
 * Starts serving the runtime's metrics as the flags ask. A port that cannot be listened on is a
 * usage error (exit 2), raised before anything is sent.
 */
export async function exposeMetrics(
  volley: Volley,
  flags: MetricsFlags,
  log: (message: string) => void,
): Promise<MetricsExposure | undefined> {
  if (flags.metricsHost !== undefined && flags.metricsPort === undefined) {
    throw new CliError('--metrics-host needs --metrics-port', ExitCode.USAGE, 'VOLLEY_ERR_USAGE');
  }
  const registry = volley.metrics;
  if (registry === undefined || !wantsMetrics(flags)) return undefined;
  let server: Server | undefined;
  let url: string | undefined;
  if (flags.metricsPort !== undefined) {
    const host = flags.metricsHost ?? DEFAULT_METRICS_HOST;
    server = createServer((request, response) => {
      if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
        return;
      }
      registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: unknown) =>
          response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`),
      );
    });
    await listen(server, flags.metricsPort, host);
    const { port } = server.address() as AddressInfo;
    url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`;
    log(`metrics at ${url}`);
  }
  return {
    url,
    async finish() {
      if (flags.metricsDump !== undefined) {
        try {
          // Written whole, then renamed: a collector never reads half a file.
          const temporary = `${flags.metricsDump}.tmp`;
          await writeFile(temporary, await registry.metrics());
          await rename(temporary, flags.metricsDump);
        } catch (error) {
          log(`cannot write the metrics to ${flags.metricsDump}: ${(error as Error).message}`);
        }
      }
      if (server !== undefined) await close(server);
    },
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        new CliError(
          `cannot serve metrics on ${host}:${port}: ${error.code ?? error.message}`,
          ExitCode.USAGE,
          'VOLLEY_ERR_METRICS_PORT',
        ),
      );
    });
    server.listen(port, host, () => resolve());
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // A scraper's keep-alive connection must not hold the process open.
    server.closeAllConnections();
  });
}
