/**
 * One lane of the shared store, as this process sees it: the lease in hand, what it owes the
 * shared bucket, and what it last heard of it. Plain state and arithmetic; redis-store.ts does
 * the talking.
 *
 * A lease is a slice of the shared bucket taken at once: requests, tokens and (for lanes with
 * `maxInFlight`) slots. Requests and tokens of a lease are spent locally, synchronously; slots
 * are held while requests use them. The lease is sized as a duration of the refill rate:
 * `leaseMs`, shrunk so that the live members together never hold more than one burst
 * (`burstMs / members`), and never less than one request.
 */
import type { LaneLimits, MemoryLane } from '@volley/core';
import type { GroupKeys, LaneGroup } from './keys.js';
import type { BucketNews } from './scripts.js';

export class SharedLane {
  readonly index: number;
  readonly group: LaneGroup;
  readonly keys: GroupKeys;
  /** Who holds this lane's slots in the shared bucket: the member and the lane. */
  readonly holder: string;
  readonly configured: LaneLimits;
  learnedRpm: number | undefined;
  learnedTpm: number | undefined;

  // The lease in hand.
  requests = 0;
  tokens = 0;
  /** Local clock time from which the lease may be spent (a lease granted in debt). */
  readyAt = 0;
  slots = 0;
  inFlight = 0;
  cooldownUntil = 0;

  // Owed to the shared bucket, sent with the next script call.
  returnRequests = 0;
  tokenDelta = 0;
  floorRequests: number | undefined;
  floorTokens: number | undefined;
  /** Slots held changed, or the slot lease needs renewing. */
  slotsDirty = false;
  pendingSince = Infinity;
  /** A cool-down not yet told to the others (Redis was down). */
  unsentCooldownUntil = 0;
  sentCooldownUntil = 0;
  unsentLearn = false;

  /** A script call of this lane is on the wire: one at a time. */
  busy = false;
  retryAt = 0;
  lastUseAt = 0;
  lastDemandAt = 0;
  lastContactAt = -Infinity;
  members = 1;
  contended = false;
  /** `onRedisLoss: 'split'`: this process's share of the limits while Redis is lost. */
  fallback: MemoryLane | undefined;

  constructor(
    index: number,
    group: LaneGroup,
    keys: GroupKeys,
    member: string,
    limits: LaneLimits,
  ) {
    this.index = index;
    this.group = group;
    this.keys = keys;
    this.holder = `${member}.${index}`;
    this.configured = limits;
  }

  get rpm(): number | undefined {
    return this.configured.rpm ?? this.learnedRpm;
  }

  get tpm(): number | undefined {
    return this.configured.tpm ?? this.learnedTpm;
  }

  get maxInFlight(): number | undefined {
    return this.configured.maxInFlight;
  }

  /** No limit known at all: requests go without asking anyone. */
  get unlimited(): boolean {
    return this.rpm === undefined && this.tpm === undefined && this.maxInFlight === undefined;
  }

  get pending(): boolean {
    return (
      this.returnRequests !== 0 ||
      this.tokenDelta !== 0 ||
      this.floorRequests !== undefined ||
      this.floorTokens !== undefined ||
      this.slotsDirty
    );
  }

  /** Owes something a flush must carry now: not only what a server said remains. */
  get owesMoreThanFloors(): boolean {
    return this.returnRequests !== 0 || this.tokenDelta !== 0 || this.slotsDirty;
  }

  leaseWindowMs(leaseMs: number, burstMs: number): number {
    return Math.min(leaseMs, burstMs / Math.max(1, this.members));
  }

  leaseRequests(windowMs: number): number {
    const rpm = this.rpm;
    return rpm === undefined ? 0 : Math.max(1, Math.floor((rpm / 60_000) * windowMs));
  }

  leaseTokens(windowMs: number): number {
    const tpm = this.tpm;
    return tpm === undefined ? 0 : (tpm / 60_000) * windowMs;
  }

  /** Slots this process may hold while others wait for some. */
  fairSlots(): number {
    const max = this.maxInFlight;
    return max === undefined ? 0 : Math.max(1, Math.ceil(max / Math.max(1, this.members)));
  }

  markPending(now: number): void {
    if (this.pendingSince === Infinity) this.pendingSince = now;
  }

  /** What a script call sends: the debts, taken off the lane until the call succeeds. */
  takeOwed(): Owed {
    const owed: Owed = {
      returnRequests: this.returnRequests,
      tokenDelta: this.tokenDelta,
      floorRequests: this.floorRequests ?? -1,
      floorTokens: this.floorTokens ?? -1,
      slotsDirty: this.slotsDirty,
    };
    this.returnRequests = 0;
    this.tokenDelta = 0;
    this.floorRequests = undefined;
    this.floorTokens = undefined;
    this.slotsDirty = false;
    this.pendingSince = Infinity;
    return owed;
  }

  /** A call failed: what it carried is owed again. */
  restoreOwed(owed: Owed, now: number): void {
    this.returnRequests += owed.returnRequests;
    this.tokenDelta += owed.tokenDelta;
    if (owed.floorRequests >= 0)
      this.floorRequests = Math.min(this.floorRequests ?? Infinity, owed.floorRequests);
    if (owed.floorTokens >= 0)
      this.floorTokens = Math.min(this.floorTokens ?? Infinity, owed.floorTokens);
    if (owed.slotsDirty) this.slotsDirty = true;
    if (this.pending) this.markPending(now);
  }

  /** What every reply says of the shared bucket. */
  hear(news: BucketNews, now: number): void {
    this.lastContactAt = now;
    this.members = Math.max(1, news.members);
    this.contended = news.contended;
    if (news.cooldownMs > 0)
      this.cooldownUntil = Math.max(this.cooldownUntil, now + news.cooldownMs);
    if (this.configured.rpm === undefined && news.learnedRpm !== undefined)
      this.learnedRpm = news.learnedRpm;
    if (this.configured.tpm === undefined && news.learnedTpm !== undefined)
      this.learnedTpm = news.learnedTpm;
  }
}

export interface Owed {
  returnRequests: number;
  tokenDelta: number;
  floorRequests: number;
  floorTokens: number;
  slotsDirty: boolean;
}
