/**
 * `volley worker --cluster redis://…`: joins a cluster and serves the chunks of every batch a
 * `volley run … --cluster` hands out, with its own endpoints, `--mode`, `--threads` and
 * `--concurrency`, inside the cluster's shared limits. It needs no file: lines come with the
 * work and results go back through Redis.
 *
 *   start ─► serve until SIGINT/SIGTERM ─► take no more chunks; finish the lines in flight within
 *   --grace-ms (a second signal: abort them) ─► report them ─► release unfinished chunks at once
 *   (another worker takes them without waiting for the lease) ─► exit 130/143
 *
 * Exit codes: 2 when the cluster or the flags are wrong at start (nothing served), 3 when every
 * endpoint stopped (auth, quota) or went down (its chunks are released), 130/143 after a signal.
 */

import { WorkServer } from '@volley/cluster';
import type { Volley, VolleyMode } from 'volley';
import { ExitCode } from '../exit-codes.js';
import type { MetricsExposure } from '../metrics-server.js';
import { exposeMetrics } from '../metrics-server.js';
import type { ProgressReporter } from '../progress.js';
import { createProgressReporter } from '../progress.js';
import { lineRunner } from '../run/cluster-line.js';
import { allEndpointsOut, watchEndpoints } from '../run/pass-common.js';
import type { SignalGate } from '../run/signals.js';
import { createSignalGate } from '../run/signals.js';
import type { RuntimeFlags } from '../runtime.js';
import { createCliVolley, inFlightCeiling } from '../runtime.js';

export interface WorkerCommandOptions extends RuntimeFlags {
  cluster: string;
  mode?: VolleyMode | undefined;
  /** How long the first signal waits for the lines in flight. */
  graceMs: number;
  quiet?: boolean | undefined;
  json?: boolean | undefined;
}

/** Serves until a signal (or every endpoint out); returns the exit code. */
export async function workerCommand(options: WorkerCommandOptions): Promise<number> {
  const signals = createSignalGate();
  const progress = createProgressReporter({ mode: 'none', keepSummary: true });
  const log = (message: string): void => {
    if (options.quiet !== true) progress.log(message);
  };
  let volley: Volley | undefined;
  let metrics: MetricsExposure | undefined;
  let server: WorkServer | undefined;
  try {
    volley = await createCliVolley(options);
    metrics = await exposeMetrics(volley, options, log);
    const runtime = volley;
    server = await WorkServer.start({
      url: options.cluster,
      ...(options.clusterPrefix === undefined ? {} : { prefix: options.clusterPrefix }),
      concurrency: inFlightCeiling(options, 64),
      runLine: lineRunner(runtime),
      extraBilledCalls: () => runtime.stats().extraBilledCalls,
      describe: () => ({
        mode: options.mode ?? 'auto',
        threads: options.threads ?? null,
        endpoints: runtime.endpoints.length,
      }),
      log,
    });
    if (volley.simulator !== undefined) {
      log(`no endpoint configured: using the embedded simulator at ${volley.simulator.url}`);
    }
    log(`worker ${server.member} serving the cluster (concurrency ${options.concurrency ?? 64})`);
    const exitCode = await serveUntilStopped(server, runtime, options, signals, progress, log);
    const stats = server.stats();
    const summary = {
      member: server.member,
      exitCode,
      chunks: stats.chunks,
      lines: stats.linesDone,
      takeovers: stats.takeovers,
      resent: stats.resent,
      leasesLost: stats.leasesLost,
      extraBilledCalls: runtime.stats().extraBilledCalls,
      redisCommands: server.commands(),
    };
    log(
      `worker ${summary.member}: ${summary.lines} lines in ${summary.chunks} chunks (${summary.takeovers} taken over, ${summary.leasesLost} leases lost), ${summary.redisCommands} Redis commands`,
    );
    if (options.json === true) process.stdout.write(`${JSON.stringify(summary)}\n`);
    return exitCode;
  } finally {
    await server?.close();
    await volley?.destroy().catch(() => undefined);
    await metrics?.finish();
    signals.dispose();
  }
}

async function serveUntilStopped(
  server: WorkServer,
  volley: Volley,
  options: WorkerCommandOptions,
  signals: SignalGate,
  progress: ProgressReporter,
  log: (message: string) => void,
): Promise<number> {
  let endpointsOut = false;
  await new Promise<void>((resolve) => {
    signals.setHandler((signal, count) => {
      if (count > 1) {
        log(`${signal} again: aborting the lines in flight (their chunks go back to the cluster)`);
        volley.destroy().catch(() => undefined);
        return;
      }
      log(
        `${signal}: taking no more work; finishing ${volley.stats().inFlight} lines in flight within ${Math.round(options.graceMs / 1000)} s`,
      );
      const grace = setTimeout(() => {
        volley.destroy().catch(() => undefined);
      }, options.graceMs);
      grace.unref();
      resolve();
    });
    watchEndpoints({ volley, progress }, () => {
      if (!allEndpointsOut(volley)) return;
      endpointsOut = true;
      log('every endpoint is out: releasing this worker’s chunks to the others');
      resolve();
    });
  });
  // Every endpoint out: the calls still waiting would wait out their retries (minutes) for an
  // endpoint that may never return; abort them so their chunks go to other workers now. Calls
  // aborted so cannot be proven unsent: the taker counts them as maybe billed twice.
  if (endpointsOut) await volley.destroy().catch(() => undefined);
  await server.close();
  if (endpointsOut) return ExitCode.STOPPED;
  return signals.exitCode ?? ExitCode.INTERRUPTED;
}
