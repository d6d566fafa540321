/**
 * @volley/cluster: every process of an application shares the rate limits of the endpoints it
 * calls, through Redis. `createVolley({ cluster: { url } })` uses it; nothing else needs to.
 */
export type {
  ClusterEvent,
  ClusterLink,
  ClusterOptions,
  ConnectOptions,
} from './cluster.js';
export { connectCluster, resolveClusterSettings } from './cluster.js';
export type { GroupIdentity, LaneGroup } from './keys.js';
export { checkGroupName, keyFingerprint, laneGroup } from './keys.js';
export type { RedisLossPolicy } from './redis-store.js';
export type { BucketStatus, ClusterStatus, MemberStatus } from './status.js';
export { readClusterStatus } from './status.js';
export type { RedisTarget } from './url.js';
export { parseRedisUrl } from './url.js';
export type {
  BatchCoordinatorOptions,
  BatchReport,
  WorkerShare,
} from './work-coordinator.js';
export { BatchCoordinator } from './work-coordinator.js';
export type { LineOutcome, LineReport, WorkerReport, WorkLine } from './work-protocol.js';
export { DEFAULT_LEASE_MS } from './work-protocol.js';
export type { WorkServerOptions, WorkServerStats } from './work-server.js';
export { WorkServer } from './work-server.js';
export type { BatchStatus, WorkerStatus } from './work-status.js';
