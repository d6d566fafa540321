/**
 * Fault kinds and how one is chosen for a request. What each kind does on the wire lives in
 * server.ts; the list here is the contract tests and the CLI name faults by.
 */

import type { Random } from './random.js';

/**
 * Every fault the simulator can inject, by the name used in `faults.kinds`, `faultFor`, the
 * `x-volley-sim-fault` request header, the request log and `stats().byFault`.
 */
export const FAULT_KINDS = [
  'status-429',
  'status-500',
  'status-502',
  'status-503',
  'status-504',
  'status-529',
  'status-400-context-length',
  'status-401',
  'status-403',
  'status-404',
  'status-422',
  'insufficient-quota',
  'should-not-retry',
  'reset-before-headers',
  'reset-mid-body',
  'reset-mid-stream',
  'truncate-stream',
  'stall-stream',
  'slow-headers',
  'slow-body',
  'html-200',
  'empty-200',
  'error-200',
  'bad-json-event',
  'huge-sse-line',
  'redirect',
] as const;

/** One of {@link FAULT_KINDS}. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** A fault with its parameters; omitted ones come from the simulator's `faults` options. */
export interface Fault {
  kind: FaultKind;
  /** `status-429`: the hint sent in `retry-after-ms` (and rounded up in `retry-after`). */
  retryAfterMs?: number | undefined;
  /** `slow-headers`, `slow-body`: how long the pause lasts. */
  slowMs?: number | undefined;
  /** `stall-stream`: period of `: ping` keep-alive comments while stalled; 0 sends none. */
  keepaliveMs?: number | undefined;
}

const KNOWN = new Set<string>(FAULT_KINDS);

/** Whether `value` names a fault kind. */
export function isFaultKind(value: unknown): value is FaultKind {
  return typeof value === 'string' && KNOWN.has(value);
}

/** Seeded weighted choice among the configured kinds, precomputed once per options change. */
export class FaultPicker {
  readonly #kinds: FaultKind[] = [];
  readonly #cumulative: number[];
  readonly #rate: number;

  constructor(rate: number, weights: Partial<Record<FaultKind, number>>) {
    this.#rate = rate;
    const sums: number[] = [];
    let total = 0;
    for (const kind of FAULT_KINDS) {
      const weight = weights[kind] ?? 0;
      if (weight <= 0) continue;
      total += weight;
      this.#kinds.push(kind);
      sums.push(total);
    }
    this.#cumulative = sums.map((sum) => sum / total);
  }

  /** Whether any draw can produce a fault; when false the per-request PRNG is never created. */
  get active(): boolean {
    return this.#rate > 0 && this.#kinds.length > 0;
  }

  /** Draws for one request: one number to decide, a second to pick the kind. */
  pick(random: Random): FaultKind | undefined {
    if (random() >= this.#rate) return undefined;
    const draw = random();
    for (let i = 0; i < this.#kinds.length; i++) {
      if (draw < this.#cumulative[i]!) return this.#kinds[i];
    }
    return this.#kinds[this.#kinds.length - 1];
  }
}
