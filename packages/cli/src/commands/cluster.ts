/**
 * `volley cluster status --cluster redis://...`: who shares the limits (members, from their
 * heartbeat keys: host, pid, started, load) and the shared buckets (level now, limits, learned
 * limits, cool-downs, slots). Read-only; prints a table, or JSON with `--json`.
 */
import type { Command } from '@commander-js/extra-typings';
import { Option } from '@commander-js/extra-typings';
import type {
  BatchStatus,
  BucketStatus,
  ClusterStatus,
  MemberStatus,
  WorkerStatus,
} from '@volley/cluster';

export interface ClusterStatusOptions {
  cluster: string;
  prefix?: string;
  json: boolean;
}

export async function clusterStatusCommand(options: ClusterStatusOptions): Promise<number> {
  // Loaded here, not at start-up: every other command would pay for the Redis client.
  const { readClusterStatus } = await import('@volley/cluster');
  const status = await readClusterStatus({
    url: options.cluster,
    ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
  });
  process.stdout.write(options.json ? `${JSON.stringify(status)}\n` : formatClusterStatus(status));
  return 0;
}

function limit(configured: number | undefined, learned: number | undefined): string {
  if (configured !== undefined) return String(configured);
  return learned === undefined ? '-' : `${learned} (learned)`;
}

function amount(value: number | undefined): string {
  return value === undefined ? '-' : value.toFixed(1);
}

function memberLine(member: MemberStatus): string {
  const { inFlight, leasedRequests, slots } = member.load;
  return `  ${member.member}  host ${member.host}  pid ${member.pid}  started ${member.startedAt}  in flight ${inFlight}  leased ${leasedRequests}  slots ${slots}\n`;
}

function bucketLine(bucket: BucketStatus): string {
  const slots =
    bucket.maxInFlight === undefined ? '' : `  slots ${bucket.slotsInUse}/${bucket.maxInFlight}`;
  const cooling = bucket.cooldownMs > 0 ? `  cooling down ${Math.ceil(bucket.cooldownMs)} ms` : '';
  return (
    `  ${bucket.label}  [${bucket.id}]\n` +
    `    rpm ${limit(bucket.rpm, bucket.learnedRpm)}  tpm ${limit(bucket.tpm, bucket.learnedTpm)}` +
    `  level ${amount(bucket.requests)} requests, ${amount(bucket.tokens)} tokens` +
    `${slots}  members ${bucket.members}${cooling}\n`
  );
}

function batchLine(batch: BatchStatus): string {
  const held = Object.entries(batch.running)
    .map(([worker, n]) => `${worker} ${n}`)
    .join(', ');
  return (
    `  ${batch.batch}  coordinator ${batch.coordinator}  started ${batch.startedAt}\n` +
    `    chunks in Redis ${batch.chunks} (of ${batch.chunkLines} lines)  running: ${held === '' ? 'none' : held}  results waiting ${batch.resultsWaiting}\n`
  );
}

function workerLine(worker: WorkerStatus): string {
  const { inFlight, queued, chunks } = worker.load;
  return `  ${worker.member}  host ${worker.host}  pid ${worker.pid}  concurrency ${worker.concurrency}  in flight ${inFlight}  queued ${queued}  chunks ${chunks}  done ${worker.done.lines} lines\n`;
}

/** The human form: members, buckets, running batches, workers. */
export function formatClusterStatus(status: ClusterStatus): string {
  let out = `cluster ${status.url} (prefix ${status.prefix})\n`;
  out += `members: ${status.members.length}\n`;
  for (const member of status.members) out += memberLine(member);
  out += `shared buckets: ${status.buckets.length}\n`;
  for (const bucket of status.buckets) out += bucketLine(bucket);
  out += `running batches: ${status.batches.length}\n`;
  for (const batch of status.batches) out += batchLine(batch);
  out += `workers: ${status.workers.length}\n`;
  for (const worker of status.workers) out += workerLine(worker);
  return out;
}

/** Adds `volley cluster status` to `program` (inheriting its exit handling). */
export function registerClusterCommand(program: Command): void {
  const cluster = program
    .command('cluster')
    .description('Shared rate limits across processes and hosts (Redis).');
  cluster
    .command('status')
    .description('List the members and the shared buckets: levels, limits, cool-downs.')
    .addOption(
      new Option('--cluster <redis-url>', 'the Redis the members share, redis://host:6379')
        .env('VOLLEY_CLUSTER_URL')
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--cluster-prefix <prefix>',
        'the key prefix the members were given (default volley)',
      ).env('VOLLEY_CLUSTER_PREFIX'),
    )
    .option('--json', 'print the status as JSON', false)
    .action(async (flags) => {
      process.exitCode = await clusterStatusCommand({
        cluster: flags.cluster,
        json: flags.json,
        ...(flags.clusterPrefix === undefined ? {} : { prefix: flags.clusterPrefix }),
      });
    });
}
