/**
 * The connection to Redis and what it knows of its own health.
 *
 * A lost Redis must neither queue commands forever nor fail at random. So the client has no
 * offline queue (a command sent while disconnected fails at once), no retries per request (a
 * command caught by a disconnect fails at once instead of being sent again, which for a lease
 * would take it twice), and a command timeout (a Redis that hangs counts as lost). It keeps
 * reconnecting by itself. Whoever sees a command fail calls `lost(cause)`; from then on the link
 * probes with PING until one answers, and only then says Redis is back: the one place that
 * decides up or down, whatever the failure looked like.
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock, TimerHandle } from '@volley/core';
import { ErrorCode, scrubSecrets, VolleyError } from '@volley/core';
import { Redis } from 'ioredis';
import type { ScriptCommands } from './scripts.js';
import { defineScripts } from './scripts.js';
import type { RedisTarget } from './url.js';

export interface LinkTimings {
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** How often a lost link tries PING. */
  probeMs: number;
}

export type LinkEvent =
  | { type: 'lost'; cause: string; url: string }
  | { type: 'restored'; downMs: number; url: string };

export class Link {
  readonly target: RedisTarget;
  readonly redis: Redis & ScriptCommands;
  readonly member: string;
  readonly #clock: Clock;
  readonly #timings: LinkTimings;
  readonly #listeners: Array<(event: LinkEvent) => void> = [];
  #down = false;
  #downSince = 0;
  #lastError: string | undefined;
  #probe: TimerHandle | undefined;
  #closing = false;
  /** Commands this process sent (scripts count as one each, as Redis counts calls). */
  commands = 0;

  constructor(target: RedisTarget, timings: LinkTimings, clock: Clock) {
    this.target = target;
    this.#timings = timings;
    this.#clock = clock;
    this.member = `${safeHost()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.redis = defineScripts(
      new Redis(target.url, {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        commandTimeout: timings.commandTimeoutMs,
        connectTimeout: timings.connectTimeoutMs,
        connectionName: `volley:${this.member}`,
        // Reconnect for as long as the process lives, at most one attempt a second.
        retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
      }),
    );
    this.redis.on('error', (error: Error) => {
      this.#lastError = scrubSecrets(error.message);
    });
    this.redis.on('close', () => {
      if (!this.#closing) this.lost(`connection closed${this.#causeSuffix()}`);
    });
    // A reconnect is no proof that scripts run again: the probe decides.
    this.redis.on('ready', () => {
      if (this.#down) this.#probeNow();
    });
  }

  /** Connects once; a Redis that cannot be reached at start is an error, not an outage. */
  async connect(): Promise<void> {
    try {
      await this.redis.connect();
      await this.redis.ping();
    } catch (error) {
      this.#closing = true;
      this.redis.disconnect();
      const message = scrubSecrets(error instanceof Error ? error.message : String(error));
      throw new VolleyError(
        ErrorCode.CLUSTER_UNAVAILABLE,
        `cannot reach Redis at ${this.target.display}: ${message}`,
      );
    }
  }

  get down(): boolean {
    return this.#down;
  }

  onEvent(listener: (event: LinkEvent) => void): void {
    this.#listeners.push(listener);
  }

  /** Runs one command, counted; a failure marks the link lost and is rethrown. */
  async run<T>(command: (redis: Redis & ScriptCommands) => Promise<T>): Promise<T> {
    this.commands++;
    try {
      return await command(this.redis);
    } catch (error) {
      const message = scrubSecrets(error instanceof Error ? error.message : String(error));
      this.lost(message);
      throw error;
    }
  }

  /** Redis is out of reach: said once per outage, then probed until it answers. */
  lost(cause: string): void {
    if (this.#down || this.#closing) return;
    this.#down = true;
    this.#downSince = this.#clock.now();
    this.#emit({ type: 'lost', cause, url: this.target.display });
    this.#schedule();
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#probe !== undefined) this.#clock.clearTimeout(this.#probe);
    try {
      if (this.redis.status === 'ready') await this.redis.quit();
    } catch {
      // Closing anyway.
    } finally {
      this.redis.disconnect();
    }
  }

  #schedule(): void {
    if (this.#closing) return;
    if (this.#probe !== undefined) this.#clock.clearTimeout(this.#probe);
    this.#probe = this.#clock.setTimeout(() => this.#probeNow(), this.#timings.probeMs);
    this.#probe.unref?.();
  }

  #probeNow(): void {
    if (this.#probe !== undefined) this.#clock.clearTimeout(this.#probe);
    this.#probe = undefined;
    if (this.#closing || !this.#down) return;
    if (this.redis.status !== 'ready') {
      this.#schedule();
      return;
    }
    this.commands++;
    this.redis.ping().then(
      () => {
        if (!this.#down || this.#closing) return;
        this.#down = false;
        this.#emit({
          type: 'restored',
          downMs: Math.round(this.#clock.now() - this.#downSince),
          url: this.target.display,
        });
      },
      () => this.#schedule(),
    );
  }

  #causeSuffix(): string {
    return this.#lastError === undefined ? '' : `: ${this.#lastError}`;
  }

  #emit(event: LinkEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}

function safeHost(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9.-]/g, '_')
      .slice(0, 64) || 'host'
  );
}
