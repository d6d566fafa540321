/**
 * `createVolley({ cluster })`: joins the cluster whose Redis shares the limits of these
 * endpoints. Loaded only when a cluster is configured, so a runtime without one never loads the
 * Redis client.
 */
import type { ClusterEvent, ClusterLink } from '@volley/cluster';
import type { Logger, VolleyEvents } from '@volley/core';
import type { EventEmitter } from 'eventemitter3';
import type { ResolvedOptions } from './options.js';

/** Joins the cluster; its events are re-emitted on `events` once the runtime exists. */
export async function joinCluster(
  options: ResolvedOptions,
  forward: (event: ClusterEvent) => void,
): Promise<ClusterLink | undefined> {
  if (options.cluster === undefined) return undefined;
  const { connectCluster, laneGroup } = await import('@volley/cluster');
  const groups = options.laneIdentities.map((identity) => laneGroup(identity, identity.option));
  return connectCluster({ ...options.cluster, groups, onEvent: forward });
}

/** Emits a cluster event as the runtime's own; says it loudly in the log, once per outage. */
export function emitClusterEvent(
  events: EventEmitter<VolleyEvents>,
  log: Logger | undefined,
  options: ResolvedOptions,
  event: ClusterEvent,
): void {
  if (event.type === 'lost') {
    const then =
      options.cluster?.onRedisLoss === 'split'
        ? 'each process admits limit / live members until it is back'
        : 'admission pauses once the leases already held are spent, until it is back';
    log?.warn(
      { redis: event.url, cause: event.cause },
      `cluster Redis lost (${event.cause}): ${then}`,
    );
    events.emit('clusterLost', { url: event.url, cause: event.cause });
  } else {
    log?.warn(
      { redis: event.url, downMs: event.downMs },
      `cluster Redis is back after ${event.downMs} ms`,
    );
    events.emit('clusterRestored', { url: event.url, downMs: event.downMs });
  }
}
