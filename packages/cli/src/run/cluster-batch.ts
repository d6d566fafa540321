/**
 * `volley run … --cluster redis://…`: the sending pass hands its lines to the cluster's workers
 * (and to a worker inside this process, unless `--no-local-work`) instead of its own runtime.
 * Everything else of a run stays as it is: the preflight pass, the journal (this process is the
 * only writer), the reorder buffer, `--resume`, the summary.
 *
 *   BatchRun ─► caller.call(line) ─► BatchCoordinator.submit ─► Redis ─► workers (+ local one)
 *      ▲                                                                     │
 *      └── record written ◄── answerOf(report) ◄── first result per line ◄──┘
 */
import type { BatchReport, WorkerShare } from '@volley/cluster';
import { BatchCoordinator, WorkServer } from '@volley/cluster';
import type { Volley } from 'volley';
import { CliError, ExitCode } from '../exit-codes.js';
import type { ProgressReporter, RunSummary } from '../progress.js';
import type { RuntimeFlags } from '../runtime.js';
import { inFlightCeiling } from '../runtime.js';
import type { LineCaller } from './batch-run.js';
import { answerOf, lineRunner } from './cluster-line.js';

/** The flags of `volley run` this file reads. */
export interface ClusterRunFlags {
  cluster?: string | undefined;
  /** `--no-local-work`: this process only coordinates. */
  localWork?: boolean | undefined;
  chunkLines?: number | undefined;
  leaseMs?: number | undefined;
  samples?: number | undefined;
}

/** What the summary (and `--json`) says of a batch spread over a cluster. */
export interface ClusterSplit {
  batch: string;
  chunks: number;
  /** Lines each worker answered; this process's own worker is marked `(coordinator)`. */
  byWorker: Record<string, WorkerShare>;
  duplicatesDropped: number;
  resentLines: number;
  recovered: number;
  redisCommandsPerLine: number;
}

export interface ClusterBatchRun {
  caller: LineCaller;
  /** The sending pass's concurrency: lines out at once over the whole cluster, halved. */
  concurrency: number;
  /** Closes the local worker and the coordinator; `complete` tidies every key away. */
  finish(complete: boolean, summary: RunSummary | undefined): Promise<void>;
}

/** Chunks out at once: enough for dozens of workers to hold two each. */
const WINDOW_CHUNKS = 64;

/**
 * Opens the batch in Redis (or adopts it on `--resume`: same run id) and starts the local worker.
 * `volley` is this process's runtime; its `destroy` (a stop, a second Ctrl-C) also ends every
 * line still waiting on the cluster, which then stays pending for `--resume`.
 */
export async function startClusterBatch(
  flags: RuntimeFlags & ClusterRunFlags & { cluster: string },
  volley: Volley,
  runId: string,
  progress: ProgressReporter,
): Promise<ClusterBatchRun> {
  if (flags.samples !== undefined) {
    // A worker sends one request per line; sampling, voting and judging stay on one host.
    throw new CliError(
      '--samples cannot be spread over a cluster yet: run it without --cluster',
      ExitCode.USAGE,
      'VOLLEY_ERR_USAGE',
    );
  }
  const chunkLines = flags.chunkLines ?? 100;
  const coordinator = await BatchCoordinator.open({
    url: flags.cluster,
    batch: runId,
    chunkLines,
    ...(flags.clusterPrefix === undefined ? {} : { prefix: flags.clusterPrefix }),
    ...(flags.leaseMs === undefined ? {} : { leaseMs: flags.leaseMs }),
    log: (m) => progress.log(m),
  });
  let local: WorkServer | undefined;
  if (flags.localWork !== false) {
    try {
      local = await WorkServer.start({
        url: flags.cluster,
        ...(flags.clusterPrefix === undefined ? {} : { prefix: flags.clusterPrefix }),
        concurrency: inFlightCeiling(flags, 64),
        runLine: lineRunner(volley),
        describe: () => ({ role: 'coordinator', mode: flags.mode ?? 'auto' }),
        log: (m) => progress.log(m),
      });
    } catch (error) {
      await coordinator.close(false);
      throw error;
    }
  }
  const destroy = volley.destroy.bind(volley);
  volley.destroy = (error?: Error) => {
    coordinator.abortPending('stopped before a worker answered');
    return destroy(error);
  };
  progress.log(
    `batch ${runId} on the cluster: chunks of ${chunkLines} lines${local === undefined ? ' (this process only coordinates)' : ''}`,
  );
  return {
    caller: {
      call: async (lineNo, request) =>
        answerOf(await coordinator.submit({ i: lineNo, u: request.url, b: request.body })),
      written: (lineNo) => coordinator.written(lineNo),
      // The local worker drains (so the pass's drain sees its runtime go idle); the workers'
      // lines wait until the pass gives up on them (`destroy`, above).
      stopping: () => {
        local?.close().catch(() => undefined);
      },
    },
    concurrency: Math.ceil((WINDOW_CHUNKS * chunkLines) / 2),
    async finish(complete, summary) {
      await local?.close();
      const report = coordinator.report();
      await coordinator.close(complete);
      if (summary === undefined) return;
      const localCommands = local?.commands() ?? 0;
      summary.cluster = splitOf(report, local?.member, localCommands);
      // The workers' own ambiguous retries and the lines sent again after a lease lapsed.
      summary.extraBilledCalls += report.workerExtraBilledCalls + report.resentLines;
      for (const line of describeSplit(summary.cluster)) progress.log(line);
    },
  };
}

function splitOf(
  report: BatchReport,
  localMember: string | undefined,
  localCommands: number,
): ClusterSplit {
  const byWorker: Record<string, WorkerShare> = {};
  let lines = 0;
  for (const [worker, share] of Object.entries(report.byWorker)) {
    byWorker[worker === localMember ? `${worker} (coordinator)` : worker] = share;
    lines += share.lines;
  }
  return {
    batch: report.batch,
    chunks: report.chunks,
    byWorker,
    duplicatesDropped: report.duplicatesDropped,
    resentLines: report.resentLines,
    recovered: report.recovered,
    redisCommandsPerLine:
      lines === 0 ? 0 : Math.round(((report.commands + localCommands) / lines) * 1000) / 1000,
  };
}

function describeSplit(split: ClusterSplit): string[] {
  const out = Object.entries(split.byWorker).map(
    ([worker, share]) =>
      `  ${worker}: ${share.lines} lines (${share.succeeded} succeeded, ${share.failed} failed)`,
  );
  out.unshift(
    `cluster batch ${split.batch}: ${split.chunks} chunks; ${split.duplicatesDropped} duplicate results dropped; ${split.resentLines} lines sent again (maybe billed twice); ${split.recovered} results recovered from Redis`,
  );
  return out;
}
