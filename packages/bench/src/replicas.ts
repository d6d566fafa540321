/**
 * The replicas a shard sends to: one {@link Http1Pool} per origin, requests spread by least
 * outstanding calls (ties go round robin), and, when hedging is on, the race between a request
 * and its copy (issue #13 item 4).
 *
 *   send ─► replica with fewest calls in flight ─► attempt 0
 *           silent past the replica's TTFB percentile (Hedger.delayMs) and the budget allows
 *           (Hedger.tryTake) ─► copy to the least busy other replica ─► attempt 1
 *   first head (any status) wins ─► the other connection is destroyed, reports nothing more
 *
 * Least outstanding rather than plain round robin: replicas of different speed each get work
 * as they free up, as a load balancer in front of them would do. With one replica the request
 * goes straight to its pool, as before (no wrapper on the hot path).
 *
 * The decision (samples per replica, percentile, warm-up, budget) is @volley/core's Hedger, the
 * one the supervisor uses; this file owns the timers and the race. The Hedger lives as long as the
 * shard, so a warm-up phase fills its samples and its budget counts every request the shard sent.
 * A sample is an attempt's time from dispatch to head, the same clock the hedge timer runs on.
 */

import { Hedger } from '@volley/core';
import type { Exchange, InFlight, ResponseHead } from './http1.js';
import { Http1Pool, serializeRequest } from './http1.js';
import type { ShardInit } from './protocol.js';

/** What the replicas did over one phase (see {@link ShardPhaseSummary}). */
export interface ReplicaCounts {
  replicaCalls: number[];
  hedged: number;
  hedgeWins: number;
}

/** The replicas of one shard. */
export class Replicas {
  readonly #pools: Http1Pool[];
  /** Per replica, per prompt: the serialised request (the `host` header differs by replica). */
  readonly #requests: Buffer[][];
  readonly #outstanding: number[];
  readonly hedger: Hedger | undefined;
  #cursor = 0;
  #counts: ReplicaCounts;

  constructor(init: ShardInit, headers: Record<string, string>, captureHeaders: string[]) {
    // Unlimited connections: a lane never waits for a socket, and an open loop opens one per
    // request in flight. A fixed cap would queue requests inside the client and hide it
    // (GuideLLM's silent 100-connection limit, research/bench-anchors.md table (d)).
    this.#pools = init.replicas.map(
      (replica) =>
        new Http1Pool({
          origin: replica.origin,
          idleTimeoutMs: init.requestTimeoutMs,
          keepAliveMs: 30_000,
          captureHeaders,
        }),
    );
    // Every request of a prompt is the same bytes: serialised once, written with one call.
    this.#requests = init.replicas.map((replica) =>
      init.bodies.map((body, i) =>
        serializeRequest(
          replica.origin,
          replica.basePath + (init.paths[i] as string),
          headers,
          Buffer.from(body),
        ),
      ),
    );
    this.#outstanding = init.replicas.map(() => 0);
    this.#counts = this.#zero();
    if (init.hedge !== undefined) this.hedger = new Hedger(init.hedge, init.replicas.length);
  }

  /** Sends prompt `prompt`; `exchange` sees one answer, whichever replica gave it. */
  send(prompt: number, exchange: Exchange): void {
    if (this.#pools.length === 1) {
      this.#counts.replicaCalls[0] = (this.#counts.replicaCalls[0] as number) + 1;
      (this.#pools[0] as Http1Pool).dispatch(this.#requests[0]?.[prompt] as Buffer, exchange);
      return;
    }
    new Race(this, prompt, exchange).start();
  }

  /** The counts since the last call (a phase's), and starts new ones. */
  takeCounts(): ReplicaCounts {
    const counts = this.#counts;
    this.#counts = this.#zero();
    return counts;
  }

  async close(): Promise<void> {
    await Promise.all(this.#pools.map((pool) => pool.close()));
  }

  /** The replica with the fewest calls in flight, other than `except`; ties rotate. */
  pick(except: number): number {
    const n = this.#pools.length;
    let best = -1;
    for (let k = 0; k < n; k++) {
      const i = (this.#cursor + k) % n;
      if (i === except) continue;
      if (best === -1 || (this.#outstanding[i] as number) < (this.#outstanding[best] as number))
        best = i;
    }
    this.#cursor = (this.#cursor + 1) % n;
    return best;
  }

  dispatch(replica: number, prompt: number, attempt: Attempt): InFlight {
    this.#outstanding[replica] = (this.#outstanding[replica] as number) + 1;
    this.#counts.replicaCalls[replica] = (this.#counts.replicaCalls[replica] as number) + 1;
    const request = this.#requests[replica]?.[prompt] as Buffer;
    return (this.#pools[replica] as Http1Pool).dispatch(request, attempt);
  }

  released(replica: number): void {
    this.#outstanding[replica] = (this.#outstanding[replica] as number) - 1;
  }

  hedgeSent(): void {
    this.#counts.hedged++;
  }

  hedgeWon(): void {
    this.#counts.hedgeWins++;
  }

  #zero(): ReplicaCounts {
    return { replicaCalls: this.#pools.map(() => 0), hedged: 0, hedgeWins: 0 };
  }
}

/** One call on one replica; its events go to its race. */
class Attempt implements Exchange {
  readonly race: Race;
  readonly replica: number;
  readonly dispatchedAt: number;
  inFlight: InFlight | undefined;
  live = true;

  constructor(race: Race, replica: number, dispatchedAt: number) {
    this.race = race;
    this.replica = replica;
    this.dispatchedAt = dispatchedAt;
  }

  onSent(): void {
    this.race.sent();
  }
  onHead(head: ResponseHead): void {
    this.race.head(this, head);
  }
  onData(chunk: Buffer): void {
    this.race.data(this, chunk);
  }
  onComplete(): void {
    this.race.complete(this);
  }
  onError(code: string): void {
    this.race.error(this, code);
  }
}

/**
 * A request and, when it went silent too long, its copy. The request's exchange sees one answer:
 * the first socket write (the record's dispatch time, which every metric counts from, is the
 * original's), then everything of the attempt whose head came first.
 */
class Race {
  readonly #set: Replicas;
  readonly #prompt: number;
  readonly #target: Exchange;
  readonly #attempts: Attempt[] = [];
  #winner: Attempt | undefined;
  #timer: NodeJS.Timeout | undefined;
  #wrote = false;

  constructor(set: Replicas, prompt: number, target: Exchange) {
    this.#set = set;
    this.#prompt = prompt;
    this.#target = target;
  }

  start(): void {
    const replica = this.#set.pick(-1);
    const hedger = this.#set.hedger;
    this.#attempt(replica);
    if (hedger === undefined) return;
    hedger.started();
    this.#arm(replica);
  }

  /** Sets the hedge timer to the replica's delay; none while the replica is warming up. */
  #arm(replica: number): void {
    const delay = this.#set.hedger?.delayMs(replica);
    if (delay !== undefined) this.#timer = setTimeout(() => this.#hedge(), delay);
  }

  /** The first write of either attempt (the original's, unless its connect hung). */
  sent(): void {
    if (this.#wrote) return;
    this.#wrote = true;
    this.#target.onSent();
  }

  head(attempt: Attempt, head: ResponseHead): void {
    this.#set.hedger?.sample(attempt.replica, performance.now() - attempt.dispatchedAt);
    if (this.#winner !== undefined) return;
    this.#winner = attempt;
    this.#clearTimer();
    for (const other of this.#attempts) {
      if (other === attempt || !other.live) continue;
      this.#end(other);
      other.inFlight?.cancel(other);
    }
    if (attempt !== this.#attempts[0]) this.#set.hedgeWon();
    this.#target.onHead(head);
  }

  data(attempt: Attempt, chunk: Buffer): void {
    if (attempt === this.#winner) this.#target.onData(chunk);
  }

  complete(attempt: Attempt): void {
    this.#end(attempt);
    if (attempt === this.#winner) this.#target.onComplete();
  }

  error(attempt: Attempt, code: string): void {
    if (!attempt.live) return;
    this.#end(attempt);
    // Before any head, a failed attempt leaves the answer to the other one if it is still going:
    // the copy exists for exactly the call whose first attempt went wrong.
    if (this.#winner === undefined && this.#attempts.some((a) => a.live)) return;
    if (this.#winner !== undefined && attempt !== this.#winner) return;
    this.#clearTimer();
    this.#target.onError(code);
  }

  #attempt(replica: number): void {
    const attempt = new Attempt(this, replica, performance.now());
    this.#attempts.push(attempt);
    attempt.inFlight = this.#set.dispatch(replica, this.#prompt, attempt);
  }

  /**
   * The hedge timer: nothing received yet from the only attempt, so a copy if the budget allows.
   * With no budget left, looked at again one delay later, as the supervisor does: a stalled
   * request is still silent then, a merely slow one has answered.
   */
  #hedge(): void {
    this.#timer = undefined;
    const first = this.#attempts[0] as Attempt;
    if (this.#winner !== undefined || !first.live || this.#attempts.length > 1) return;
    const hedger = this.#set.hedger as Hedger;
    if (!hedger.tryTake()) {
      this.#arm(first.replica);
      return;
    }
    this.#set.hedgeSent();
    this.#attempt(this.#set.pick(first.replica));
  }

  #end(attempt: Attempt): void {
    if (!attempt.live) return;
    attempt.live = false;
    this.#set.released(attempt.replica);
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
