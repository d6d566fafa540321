/**
 * The shared limit store: the token bucket's capacity in Redis, for every process of an
 * application at once (the `LimitStore` of @volley/core).
 *
 * Each lane spends a lease it holds, synchronously, so the bucket's fast path never waits on
 * Redis; when the lease runs out, the lane's head waiter triggers one `acquire` and the lane is
 * woken when it answers. What the lane owes the shared bucket (refunds and charges from
 * `usage`, unused lease, what a server said remains, the slots it holds) travels with the next
 * call, or is sent on its own within `flushMs`. A 429's cool-down and limits learned from headers
 * go to Redis at once and reach the other processes through the events channel.
 *
 * When Redis is lost (link.ts decides) a lane spends only the lease it already holds, then waits
 * (`pause`), or admits this process's share of the limits, limit / live members as last seen
 * (`split`). Requests in flight finish either way; what they owe is sent when Redis is back,
 * and the slots they hold are registered again then.
 */
import type {
  Clock,
  LaneLevels,
  LimitStore,
  LimitStoreSetup,
  RateLimitSnapshot,
  TimerHandle,
} from '@volley/core';
import { MemoryLane } from '@volley/core';
import type { LaneGroup } from './keys.js';
import { eventsChannel, groupKeys } from './keys.js';
import type { Link } from './link.js';
import type { AcquireReply, BucketNews } from './scripts.js';
import { parseAcquire, parseSettle } from './scripts.js';
import { SharedLane } from './shared-lane.js';

export type RedisLossPolicy = 'pause' | 'split';

export interface StoreSettings {
  prefix: string;
  onRedisLoss: RedisLossPolicy;
  /** A lease as a duration of the refill rate (shrunk so members together hold one burst). */
  leaseMs: number;
  heartbeatMs: number;
  /** A member not heard of for this long is gone (its heartbeat key expires too). */
  memberTtlMs: number;
  /** A slot lease not renewed for this long is free again: a dead process's slots come back. */
  slotTtlMs: number;
  /** Every key expires this long after its last use. */
  keyTtlMs: number;
}

/** Longest queue of leases granted in debt that a new one may join. */
const HORIZON_MS = 5_000;
/** A lease nobody spent for this long goes back. */
const LEASE_IDLE_MS = 1_000;
/** Longest what a lane owes waits for a call to ride on. */
const FLUSH_MS = 100;
/** How often leases, debts and spare slots are looked at. */
const TICK_MS = 50;
/** How often a lane waiting for slots asks again. */
const SLOT_POLL_MS = 50;
/** Spare slots are kept this long after the last request that wanted one. */
const SLOT_LINGER_MS = 200;

export interface MemberLoad {
  inFlight: number;
  leasedRequests: number;
  slots: number;
}

export class RedisLimitStore implements LimitStore {
  readonly #link: Link;
  readonly #settings: StoreSettings;
  readonly #clock: Clock;
  readonly #burstMs: number;
  readonly #lanes: SharedLane[];
  readonly #byGroup = new Map<string, SharedLane[]>();
  readonly #channel: string;
  readonly #tick: TimerHandle;
  readonly #onClose: () => Promise<void>;
  #wake: (lane: number) => void = () => undefined;
  #closed: Promise<void> | undefined;

  constructor(
    link: Link,
    settings: StoreSettings,
    setup: LimitStoreSetup,
    groups: readonly LaneGroup[],
    initial: ReadonlyMap<string, BucketNews>,
    onClose: () => Promise<void>,
  ) {
    this.#link = link;
    this.#settings = settings;
    this.#clock = setup.clock;
    this.#burstMs = setup.burstMs;
    this.#channel = eventsChannel(settings.prefix);
    this.#onClose = onClose;
    const now = this.#clock.now();
    this.#lanes = setup.lanes.map((limits, index) => {
      const group = groups[index];
      if (group === undefined) throw new Error(`no limit group for lane ${index}`);
      const lane = new SharedLane(
        index,
        group,
        groupKeys(settings.prefix, group.id),
        link.member,
        limits,
      );
      const news = initial.get(group.id);
      if (news !== undefined) lane.hear(news, now);
      const sharing = this.#byGroup.get(group.id);
      if (sharing === undefined) this.#byGroup.set(group.id, [lane]);
      else sharing.push(lane);
      return lane;
    });
    link.onEvent((event) => {
      if (event.type === 'lost') this.#onLost();
      else this.#onRestored();
    });
    this.#tick = this.#clock.setInterval(() => this.#maintain(), TICK_MS);
    this.#tick.unref?.();
  }

  attach(wake: (lane: number) => void): void {
    this.#wake = wake;
  }

  /** A message of the events channel: a cool-down or learned limits, from any process. */
  hearEvent(message: string): void {
    const [group, kind, a, b] = message.split('|');
    const lanes = group === undefined ? undefined : this.#byGroup.get(group);
    if (lanes === undefined) return;
    const now = this.#clock.now();
    for (const lane of lanes) {
      if (kind === 'c') {
        const ms = Number(a);
        if (ms > 0) lane.cooldownUntil = Math.max(lane.cooldownUntil, now + ms);
        lane.fallback?.cooldown(ms, now);
      } else if (kind === 'l') {
        const rpm = Number(a);
        const tpm = Number(b);
        if (lane.configured.rpm === undefined && rpm >= 0) lane.learnedRpm = rpm;
        if (lane.configured.tpm === undefined && tpm >= 0) lane.learnedTpm = tpm;
        this.#wake(lane.index);
      }
    }
  }

  reserve(index: number, tokens: number, now: number, queued: number): number {
    const lane = this.#lane(index);
    if (queued > 0) lane.lastDemandAt = now;
    if (lane.cooldownUntil > now) return lane.cooldownUntil - now;
    if (lane.unlimited) {
      lane.inFlight++;
      return 0;
    }
    if (this.#link.down && this.#settings.onRedisLoss === 'split') {
      return this.#reserveShare(lane, tokens, now, queued);
    }
    const hasSlot = lane.maxInFlight === undefined || lane.inFlight < lane.slots;
    const hasRequest = lane.rpm === undefined || lane.requests >= 1;
    const hasTokens = lane.tpm === undefined || lane.tokens >= tokens;
    if (hasSlot && hasRequest && hasTokens) {
      if (lane.readyAt > now) return lane.readyAt - now;
      if (lane.rpm !== undefined) lane.requests -= 1;
      if (lane.tpm !== undefined) lane.tokens -= tokens;
      lane.inFlight++;
      lane.lastUseAt = now;
      return 0;
    }
    // Redis lost and pausing: what is held is spent, nothing more is asked for.
    if (this.#link.down) return Infinity;
    // The fast path asks nobody: the caller queues, and the head of the queue asks.
    if (queued === 0) return Infinity;
    if (lane.retryAt > now) return lane.retryAt - now;
    if (!lane.busy) this.#acquire(lane, tokens, queued);
    return Infinity;
  }

  settle(index: number, reserved: number, actual: number, now: number): void {
    const lane = this.#lane(index);
    lane.inFlight = Math.max(0, lane.inFlight - 1);
    if (lane.fallback !== undefined) {
      lane.fallback.settle(reserved, actual, now);
      return;
    }
    if (lane.tpm !== undefined && reserved !== actual) {
      // Kept in hand up to two leases (one fetched, one of refunds: refunds are a fraction of
      // what is spent, so they are spent here rather than sent back); the rest, or a charge
      // beyond what is in hand, is owed.
      lane.tokens += reserved - actual;
      const keep = 2 * lane.leaseTokens(this.#window(lane));
      if (lane.tokens > keep) {
        lane.tokenDelta += lane.tokens - keep;
        lane.tokens = keep;
      } else if (lane.tokens < 0) {
        lane.tokenDelta += lane.tokens;
        lane.tokens = 0;
      }
      if (lane.tokenDelta !== 0) lane.markPending(now);
    }
    if (lane.maxInFlight !== undefined && lane.contended && lane.slots > lane.fairSlots()) {
      // Others wait for slots and this process holds more than its share: give one back.
      lane.slots = Math.max(lane.inFlight, lane.slots - 1);
      lane.slotsDirty = true;
      lane.markPending(now);
    }
  }

  cooldown(index: number, durationMs: number, now: number): void {
    const lane = this.#lane(index);
    const until = now + durationMs;
    lane.cooldownUntil = Math.max(lane.cooldownUntil, until);
    lane.fallback?.cooldown(durationMs, now);
    // A storm of 429s tells the others once, not once per 429.
    if (until <= lane.sentCooldownUntil + 50) return;
    if (this.#link.down) {
      lane.unsentCooldownUntil = Math.max(lane.unsentCooldownUntil, until);
      return;
    }
    lane.sentCooldownUntil = until;
    this.#sendCooldown(lane, durationMs);
  }

  observe(index: number, snapshot: RateLimitSnapshot, now: number): void {
    const lane = this.#lane(index);
    lane.fallback?.observe(snapshot, now);
    let learned = false;
    if (
      lane.configured.rpm === undefined &&
      snapshot.limitRequests !== undefined &&
      snapshot.limitRequests !== lane.learnedRpm
    ) {
      lane.learnedRpm = snapshot.limitRequests;
      learned = true;
    }
    if (
      lane.configured.tpm === undefined &&
      snapshot.limitTokens !== undefined &&
      snapshot.limitTokens !== lane.learnedTpm
    ) {
      lane.learnedTpm = snapshot.limitTokens;
      learned = true;
    }
    if (learned) {
      if (this.#link.down) lane.unsentLearn = true;
      else this.#sendLearn(lane);
    }
    const { remainingRequests, remainingTokens } = snapshot;
    // `remaining` only ever lowers a level, and a level never exceeds one burst: only a
    // remaining below the burst can change anything, and only those are sent.
    if (remainingRequests !== undefined && lane.rpm !== undefined) {
      lane.requests = Math.min(lane.requests, remainingRequests);
      if (remainingRequests < Math.max(1, (lane.rpm / 60_000) * this.#burstMs)) {
        lane.floorRequests = Math.min(lane.floorRequests ?? Infinity, remainingRequests);
        lane.markPending(now);
      }
    }
    if (remainingTokens !== undefined && lane.tpm !== undefined) {
      lane.tokens = Math.min(lane.tokens, remainingTokens);
      if (remainingTokens < Math.max(1, (lane.tpm / 60_000) * this.#burstMs)) {
        lane.floorTokens = Math.min(lane.floorTokens ?? Infinity, remainingTokens);
        lane.markPending(now);
      }
    }
    // With no known rate, `remaining: 0` and `reset` are all there is: cool down (as the
    // in-memory lane does), for every process.
    if (
      remainingRequests === 0 &&
      snapshot.resetRequestsMs !== undefined &&
      lane.rpm === undefined
    ) {
      this.cooldown(index, snapshot.resetRequestsMs, now);
    }
    if (remainingTokens === 0 && snapshot.resetTokensMs !== undefined && lane.tpm === undefined) {
      this.cooldown(index, snapshot.resetTokensMs, now);
    }
  }

  levels(index: number, now: number): LaneLevels {
    const lane = this.#lane(index);
    if (lane.fallback !== undefined)
      return { ...lane.fallback.levels(now), inFlight: lane.inFlight };
    return {
      availableRequests: lane.rpm === undefined ? Infinity : lane.requests,
      availableTokens: lane.tpm === undefined ? Infinity : lane.tokens,
      inFlight: lane.inFlight,
      cooldownRemainingMs: Math.max(0, lane.cooldownUntil - now),
    };
  }

  /** What the heartbeat says of this process. */
  load(): MemberLoad {
    let inFlight = 0;
    let leasedRequests = 0;
    let slots = 0;
    for (const lane of this.#lanes) {
      inFlight += lane.inFlight;
      leasedRequests += Math.max(0, Math.floor(lane.requests));
      slots += lane.slots;
    }
    return { inFlight, leasedRequests, slots };
  }

  groups(): string[] {
    return [...this.#byGroup.keys()];
  }

  /** Renews slot leases of lanes that have not talked to Redis within a heartbeat. */
  renew(now: number): void {
    for (const lane of this.#lanes) {
      if (lane.slots > 0 && now - lane.lastContactAt >= this.#settings.heartbeatMs) {
        lane.slotsDirty = true;
        lane.markPending(now);
        void this.#flush(lane, now, false);
      }
    }
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#clock.clearInterval(this.#tick);
      if (!this.#link.down) {
        const now = this.#clock.now();
        // Everything back: unused lease, what is owed, the slots; and out of the groups.
        await Promise.allSettled(
          this.#lanes.map((lane) => {
            lane.returnRequests += Math.max(0, Math.floor(lane.requests));
            if (lane.tpm !== undefined) lane.tokenDelta += lane.tokens;
            lane.requests = 0;
            lane.tokens = 0;
            lane.slots = 0;
            lane.slotsDirty = true;
            return this.#flush(lane, now, true);
          }),
        );
      }
      await this.#onClose();
    })();
    return this.#closed;
  }

  // --- talking to Redis ---------------------------------------------------------------------

  #acquire(lane: SharedLane, tokens: number, queued: number): void {
    const window = this.#window(lane);
    const held = Math.max(0, Math.floor(lane.requests));
    const needRequests = lane.rpm !== undefined && lane.requests < 1 ? 1 : 0;
    const leaseRequests = lane.leaseRequests(window);
    const wantRequests =
      lane.rpm === undefined ? 0 : Math.max(needRequests, Math.min(queued, leaseRequests) - held);
    const needTokens = lane.tpm === undefined ? 0 : Math.max(0, tokens - lane.tokens);
    // Tokens for the requests waiting here (as many as a request lease covers), as costly as
    // the head, within one token lease.
    const requestsServed =
      lane.rpm === undefined ? Math.max(1, queued) : Math.max(1, Math.min(queued, leaseRequests));
    const wantTokens =
      lane.tpm === undefined
        ? 0
        : Math.max(
            needTokens,
            Math.min(lane.leaseTokens(window), tokens * requestsServed) - lane.tokens,
          );
    const needSlots = lane.maxInFlight !== undefined && lane.inFlight >= lane.slots ? 1 : 0;
    const wantSlots =
      needSlots === 0 ? 0 : Math.max(1, Math.min(queued, lane.fairSlots() - lane.slots));
    if (needRequests === 0 && needTokens === 0 && needSlots === 0) return;
    lane.busy = true;
    const owed = lane.takeOwed();
    const args = [
      lane.keys.bucket,
      lane.keys.slots,
      lane.keys.members,
      this.#link.member,
      lane.holder,
      lane.configured.rpm ?? -1,
      lane.configured.tpm ?? -1,
      lane.maxInFlight ?? -1,
      this.#burstMs,
      needRequests,
      wantRequests,
      needTokens,
      wantTokens,
      needSlots,
      wantSlots,
      lane.slots,
      owed.returnRequests,
      owed.tokenDelta,
      owed.floorRequests,
      owed.floorTokens,
      HORIZON_MS,
      this.#settings.memberTtlMs,
      this.#settings.slotTtlMs,
      this.#settings.keyTtlMs,
      lane.group.label,
    ];
    this.#link
      .run((redis) => redis.volleyAcquire(...args))
      .then(
        (raw) => this.#granted(lane, parseAcquire(raw)),
        () => {
          lane.busy = false;
          lane.restoreOwed(owed, this.#clock.now());
          // Split lanes admit their share now; pausing lanes wait for Redis.
          this.#wake(lane.index);
        },
      );
  }

  #granted(lane: SharedLane, reply: AcquireReply): void {
    const now = this.#clock.now();
    lane.busy = false;
    lane.hear(reply, now);
    if (reply.granted) {
      lane.requests += reply.requests;
      lane.tokens += reply.tokens;
      lane.slots += reply.slots;
      lane.readyAt = Math.max(lane.readyAt, now + reply.waitMs);
    } else if (reply.waitMs < 0) {
      lane.retryAt = now + SLOT_POLL_MS;
    } else if (reply.cooldownMs <= 0) {
      lane.retryAt = now + reply.waitMs;
    }
    this.#wake(lane.index);
    if (lane.retryAt > now) {
      const timer = this.#clock.setTimeout(() => this.#wake(lane.index), lane.retryAt - now);
      timer.unref?.();
    }
  }

  /** Sends what `lane` owes (and, `leaving`, takes it out of its group). */
  async #flush(lane: SharedLane, now: number, leaving: boolean): Promise<void> {
    if (lane.busy || (!lane.pending && !leaving)) return;
    lane.busy = true;
    const owed = lane.takeOwed();
    const args = [
      lane.keys.bucket,
      lane.keys.slots,
      lane.keys.members,
      this.#link.member,
      lane.holder,
      lane.configured.rpm ?? -1,
      lane.configured.tpm ?? -1,
      lane.maxInFlight ?? -1,
      this.#burstMs,
      owed.returnRequests,
      owed.tokenDelta,
      lane.slots,
      owed.floorRequests,
      owed.floorTokens,
      leaving ? 1 : 0,
      this.#settings.memberTtlMs,
      this.#settings.slotTtlMs,
      this.#settings.keyTtlMs,
      lane.group.label,
    ];
    try {
      const reply = parseSettle(await this.#link.run((redis) => redis.volleySettle(...args)));
      lane.hear(reply, this.#clock.now());
    } catch {
      lane.restoreOwed(owed, now);
    } finally {
      lane.busy = false;
    }
    this.#wake(lane.index);
  }

  #sendCooldown(lane: SharedLane, durationMs: number): void {
    this.#link
      .run((redis) =>
        redis.volleyCooldown(
          lane.keys.bucket,
          Math.ceil(durationMs),
          this.#channel,
          lane.group.id,
          this.#settings.keyTtlMs,
        ),
      )
      .catch(() => {
        lane.unsentCooldownUntil = Math.max(
          lane.unsentCooldownUntil,
          this.#clock.now() + durationMs,
        );
      });
  }

  #sendLearn(lane: SharedLane): void {
    this.#link
      .run((redis) =>
        redis.volleyLearn(
          lane.keys.bucket,
          lane.learnedRpm ?? -1,
          lane.learnedTpm ?? -1,
          this.#channel,
          lane.group.id,
          this.#settings.keyTtlMs,
        ),
      )
      .catch(() => {
        lane.unsentLearn = true;
      });
  }

  /** Every `TICK_MS`: idle leases and spare slots go back, debts are sent. */
  #maintain(): void {
    if (this.#link.down) return;
    const now = this.#clock.now();
    for (const lane of this.#lanes) {
      if (lane.fallback !== undefined || lane.unlimited) continue;
      const idleSince = Math.max(lane.lastUseAt, lane.lastDemandAt);
      if (
        (lane.requests >= 1 || lane.tokens > 0) &&
        lane.readyAt <= now &&
        now - idleSince > LEASE_IDLE_MS
      ) {
        const requests = Math.max(0, Math.floor(lane.requests));
        lane.returnRequests += requests;
        lane.requests -= requests;
        if (lane.tpm !== undefined) lane.tokenDelta += lane.tokens;
        lane.tokens = 0;
        lane.markPending(now);
      }
      if (lane.slots > lane.inFlight && now - lane.lastDemandAt > SLOT_LINGER_MS) {
        lane.slots = lane.inFlight;
        lane.slotsDirty = true;
        lane.markPending(now);
      }
      // A floor alone waits for the next acquire: sent on its own it would cost a command per
      // response while a server's bucket runs low, which is all the time at the limit.
      if (lane.owesMoreThanFloors && now - lane.pendingSince >= FLUSH_MS) {
        void this.#flush(lane, now, false);
      }
    }
  }

  // --- Redis lost and back ------------------------------------------------------------------

  #onLost(): void {
    if (this.#settings.onRedisLoss !== 'split') return;
    for (const lane of this.#lanes) this.#wake(lane.index);
  }

  #onRestored(): void {
    const now = this.#clock.now();
    for (const lane of this.#lanes) {
      if (lane.fallback !== undefined) {
        // Requests admitted from the share hold slots Redis never leased: register them.
        lane.fallback = undefined;
        lane.slots = Math.max(lane.slots, lane.inFlight);
      }
      if (lane.slots > 0) lane.slotsDirty = true;
      if (lane.unsentCooldownUntil > now) {
        lane.sentCooldownUntil = lane.unsentCooldownUntil;
        this.#sendCooldown(lane, lane.unsentCooldownUntil - now);
      }
      lane.unsentCooldownUntil = 0;
      if (lane.unsentLearn) {
        lane.unsentLearn = false;
        this.#sendLearn(lane);
      }
      lane.retryAt = 0;
      if (lane.pending) lane.markPending(now);
      // Flushing also wakes the lane; a lane with nothing owed is woken here.
      if (lane.pending) void this.#flush(lane, now, false);
      else this.#wake(lane.index);
    }
  }

  /** `split`: this process's share while Redis is lost, from the members last seen. */
  #reserveShare(lane: SharedLane, tokens: number, now: number, queued: number): number {
    if (lane.fallback === undefined) {
      const members = Math.max(1, lane.members);
      const share: { rpm?: number; tpm?: number; maxInFlight?: number } = {};
      if (lane.rpm !== undefined) share.rpm = lane.rpm / members;
      if (lane.tpm !== undefined) share.tpm = lane.tpm / members;
      // Whole slots only: a share below one slot admits nothing until Redis is back.
      if (lane.maxInFlight !== undefined)
        share.maxInFlight = Math.floor(lane.maxInFlight / members);
      lane.fallback = new MemoryLane(share, this.#burstMs, now);
      lane.fallback.inFlight = lane.inFlight;
      lane.fallback.cooldownUntil = lane.cooldownUntil;
    }
    const delay = lane.fallback.reserve(tokens, now, queued);
    if (delay === 0) lane.inFlight++;
    return delay;
  }

  #window(lane: SharedLane): number {
    return lane.leaseWindowMs(this.#settings.leaseMs, this.#burstMs);
  }

  #lane(index: number): SharedLane {
    return this.#lanes[index] as SharedLane;
  }
}
