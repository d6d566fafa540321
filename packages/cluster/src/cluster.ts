/**
 * Joining a cluster: one Redis connection for commands, one for the events channel, a
 * heartbeat key, and the shared store the token bucket runs on.
 *
 *   connectCluster(options) --> Link (commands, lost/restored) --> RedisLimitStore (leases)
 *                          \--> subscriber (cool-downs, learned limits from other processes)
 *                          \--> heartbeat: volley:member:<id>, every heartbeatMs, TTL memberTtlMs
 */

import { hostname } from 'node:os';
import type { Clock, LimitStore, LimitStoreSetup, TimerHandle } from '@volley/core';
import { ErrorCode, systemClock, VolleyError } from '@volley/core';
import type { Redis } from 'ioredis';
import type { LaneGroup } from './keys.js';
import { checkPrefix, eventsChannel, groupKeys, memberKey } from './keys.js';
import type { LinkEvent } from './link.js';
import { Link } from './link.js';
import type { RedisLossPolicy, StoreSettings } from './redis-store.js';
import { RedisLimitStore } from './redis-store.js';
import type { BucketNews } from './scripts.js';
import { parseSettle } from './scripts.js';
import { parseRedisUrl } from './url.js';

export interface ClusterOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` (TLS). */
  url: string;
  /** Every key and the events channel start with it. Default `volley`. */
  prefix?: string;
  /**
   * When Redis is lost: `pause` (default) spends the leases already held, then admits nothing
   * until Redis is back; `split` admits this process's share, limit / live members.
   */
  onRedisLoss?: RedisLossPolicy;
  /** A lease as a duration of the refill rate. Default 100 (see shared-lane.ts). */
  leaseMs?: number;
  /** Default 1000. */
  heartbeatMs?: number;
  /** Default 5000. */
  memberTtlMs?: number;
  /** Default 10000. */
  slotTtlMs?: number;
  /** Default 600000. */
  keyTtlMs?: number;
  /** A command not answered within this is a lost Redis. Default 2000. */
  commandTimeoutMs?: number;
  /** Default 5000. */
  connectTimeoutMs?: number;
}

export type ClusterEvent = LinkEvent;

export interface ClusterLink {
  /** This process's name in the cluster: host, pid and a random part. */
  readonly member: string;
  /** The Redis URL without credentials. */
  readonly url: string;
  /** The shared store over the lanes `groups` named (for `createTokenBucket({ store })`). */
  store(setup: LimitStoreSetup): LimitStore;
  /** Commands this process sent to Redis so far. */
  commands(): number;
  /** Leaves the cluster: leases and slots back, heartbeat removed, connections closed. */
  close(): Promise<void>;
}

export interface ConnectOptions extends ClusterOptions {
  /** The bucket of each lane, in lane order. */
  groups: readonly LaneGroup[];
  onEvent?: (event: ClusterEvent) => void;
  clock?: Clock;
}

const DEFAULTS = {
  prefix: 'volley',
  leaseMs: 100,
  heartbeatMs: 1_000,
  memberTtlMs: 5_000,
  slotTtlMs: 10_000,
  keyTtlMs: 600_000,
  commandTimeoutMs: 2_000,
  connectTimeoutMs: 5_000,
  probeMs: 250,
} as const;

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name} must be a positive number, got ${String(value)}`,
    );
  }
  return value;
}

/** Checks cluster options; every error names the option (`options.cluster.leaseMs ...`). */
export function resolveClusterSettings(
  options: ClusterOptions,
  name = 'options.cluster',
): StoreSettings & { commandTimeoutMs: number; connectTimeoutMs: number } {
  const onRedisLoss = options.onRedisLoss ?? 'pause';
  if (onRedisLoss !== 'pause' && onRedisLoss !== 'split') {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name}.onRedisLoss must be 'pause' or 'split', got ${String(onRedisLoss)}`,
    );
  }
  const heartbeatMs = positive(`${name}.heartbeatMs`, options.heartbeatMs, DEFAULTS.heartbeatMs);
  const memberTtlMs = positive(`${name}.memberTtlMs`, options.memberTtlMs, DEFAULTS.memberTtlMs);
  if (memberTtlMs < 2 * heartbeatMs) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name}.memberTtlMs must be at least twice heartbeatMs (${heartbeatMs}), got ${memberTtlMs}`,
    );
  }
  const slotTtlMs = positive(`${name}.slotTtlMs`, options.slotTtlMs, DEFAULTS.slotTtlMs);
  if (slotTtlMs < 2 * heartbeatMs) {
    throw new VolleyError(
      ErrorCode.INVALID_OPTIONS,
      `${name}.slotTtlMs must be at least twice heartbeatMs (${heartbeatMs}), got ${slotTtlMs}`,
    );
  }
  return {
    prefix: checkPrefix(`${name}.prefix`, options.prefix ?? DEFAULTS.prefix),
    onRedisLoss,
    leaseMs: positive(`${name}.leaseMs`, options.leaseMs, DEFAULTS.leaseMs),
    heartbeatMs,
    memberTtlMs,
    slotTtlMs,
    keyTtlMs: positive(`${name}.keyTtlMs`, options.keyTtlMs, DEFAULTS.keyTtlMs),
    commandTimeoutMs: positive(
      `${name}.commandTimeoutMs`,
      options.commandTimeoutMs,
      DEFAULTS.commandTimeoutMs,
    ),
    connectTimeoutMs: positive(
      `${name}.connectTimeoutMs`,
      options.connectTimeoutMs,
      DEFAULTS.connectTimeoutMs,
    ),
  };
}

/**
 * Connects to the cluster's Redis, reads what the buckets of `groups` already know (learned
 * limits, cool-downs, members) and starts the heartbeat. Rejects with
 * `VOLLEY_ERR_CLUSTER_UNAVAILABLE` when Redis cannot be reached now; once connected, a lost
 * Redis is an outage the store rides out (see redis-store.ts).
 */
export async function connectCluster(options: ConnectOptions): Promise<ClusterLink> {
  const settings = resolveClusterSettings(options);
  const target = parseRedisUrl('options.cluster.url', options.url);
  const clock = options.clock ?? systemClock;
  const link = new Link(
    target,
    {
      connectTimeoutMs: settings.connectTimeoutMs,
      commandTimeoutMs: settings.commandTimeoutMs,
      probeMs: DEFAULTS.probeMs,
    },
    clock,
  );
  if (options.onEvent !== undefined) link.onEvent(options.onEvent);
  await link.connect();
  let subscriber: Redis | undefined;
  try {
    subscriber = link.redis.duplicate({ connectionName: `volley:${link.member}:events` });
    subscriber.on('error', () => {
      // The command link reports outages; this one resubscribes by itself when Redis is back.
    });
    await subscriber.connect();
    await subscriber.subscribe(eventsChannel(settings.prefix));
    link.commands++;
    const initial = await readGroups(link, settings, options.groups);
    return new Cluster(link, subscriber, settings, options.groups, initial, clock);
  } catch (error) {
    subscriber?.disconnect();
    await link.close();
    if (error instanceof VolleyError) throw error;
    throw new VolleyError(
      ErrorCode.CLUSTER_UNAVAILABLE,
      `cannot join the cluster at ${target.display}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** What each bucket already knows, and this process counted among its members. */
async function readGroups(
  link: Link,
  settings: StoreSettings,
  groups: readonly LaneGroup[],
): Promise<Map<string, BucketNews>> {
  const initial = new Map<string, BucketNews>();
  for (const group of groups) {
    if (initial.has(group.id)) continue;
    const keys = groupKeys(settings.prefix, group.id);
    const reply = await link.run((redis) =>
      redis.volleyJoin(
        keys.bucket,
        keys.members,
        link.member,
        settings.memberTtlMs,
        settings.keyTtlMs,
      ),
    );
    initial.set(group.id, parseSettle(reply));
  }
  return initial;
}

class Cluster implements ClusterLink {
  readonly member: string;
  readonly url: string;
  readonly #link: Link;
  readonly #subscriber: Redis;
  readonly #settings: StoreSettings;
  readonly #groups: readonly LaneGroup[];
  readonly #initial: ReadonlyMap<string, BucketNews>;
  readonly #clock: Clock;
  readonly #startedAt = new Date().toISOString();
  readonly #heartbeat: TimerHandle;
  #store: RedisLimitStore | undefined;
  #closed: Promise<void> | undefined;

  constructor(
    link: Link,
    subscriber: Redis,
    settings: StoreSettings,
    groups: readonly LaneGroup[],
    initial: ReadonlyMap<string, BucketNews>,
    clock: Clock,
  ) {
    this.#link = link;
    this.#subscriber = subscriber;
    this.#settings = settings;
    this.#groups = groups;
    this.#initial = initial;
    this.#clock = clock;
    this.member = link.member;
    this.url = link.target.display;
    this.#beat();
    this.#heartbeat = clock.setInterval(() => this.#beat(), settings.heartbeatMs);
    this.#heartbeat.unref?.();
  }

  store(setup: LimitStoreSetup): LimitStore {
    if (this.#store !== undefined) throw new Error('a cluster link serves one token bucket');
    if (setup.lanes.length !== this.#groups.length) {
      throw new Error(`${setup.lanes.length} lanes but ${this.#groups.length} limit groups`);
    }
    const store = new RedisLimitStore(
      this.#link,
      this.#settings,
      setup,
      this.#groups,
      this.#initial,
      () => this.#leave(),
    );
    this.#subscriber.on('message', (_channel: string, message: string) => store.hearEvent(message));
    this.#store = store;
    return store;
  }

  commands(): number {
    return this.#link.commands;
  }

  close(): Promise<void> {
    return this.#store?.close() ?? this.#leave();
  }

  /** The heartbeat: who this process is and how loaded, for `volley cluster status`. */
  #beat(): void {
    if (this.#link.down) return;
    const load = this.#store?.load() ?? { inFlight: 0, leasedRequests: 0, slots: 0 };
    const record = JSON.stringify({
      member: this.member,
      host: hostname(),
      pid: process.pid,
      startedAt: this.#startedAt,
      load,
      groups: this.#store?.groups() ?? [...new Set(this.#groups.map((group) => group.id))],
    });
    this.#link
      .run((redis) =>
        redis.set(
          memberKey(this.#settings.prefix, this.member),
          record,
          'PX',
          this.#settings.memberTtlMs,
        ),
      )
      .catch(() => undefined);
    this.#store?.renew(this.#clock.now());
  }

  #leave(): Promise<void> {
    this.#closed ??= (async () => {
      this.#clock.clearInterval(this.#heartbeat);
      if (!this.#link.down) {
        await this.#link
          .run((redis) => redis.del(memberKey(this.#settings.prefix, this.member)))
          .catch(() => undefined);
      }
      this.#subscriber.disconnect();
      await this.#link.close();
    })();
    return this.#closed;
  }
}
