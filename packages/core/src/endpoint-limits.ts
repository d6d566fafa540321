/**
 * Per-endpoint concurrency limits: an {@link AdaptiveLimit} for each endpoint set to `'auto'`, no
 * limit (Infinity) for the others. The supervisor asks `limit(i)` where it chooses an endpoint
 * for an attempt (EndpointHealth.choose skips an endpoint holding that many) and reports every
 * attempt's outcome to `record`; this class turns outcomes into the controller's signals.
 *
 *   runtime concurrency (all endpoints) ─┐
 *   endpoint i: adaptive limit ──────────┼─ an attempt is admitted only under all three
 *   token bucket: rpm, tpm, maxInFlight ─┘  (maxInFlight is also the adaptive limit's max)
 *
 * Each endpoint has its own limit: replicas of different sizes each find their own knee.
 */
import type { AdaptiveLimitPolicy, LimitDecision, ServerHint } from './adaptive-limit.js';
import { AdaptiveLimit } from './adaptive-limit.js';
import type { Clock } from './clock.js';
import { ErrorCode } from './errors.js';
import type { WorkOutcome } from './protocol/work.js';

/** What the supervisor needs from per-endpoint limits. */
export interface ConcurrencyLimits {
  /** Attempts endpoint `endpoint` may hold now (admitted and not yet settled). */
  limit(endpoint: number): number;
  /**
   * An attempt on `endpoint` ended with `outcome`; `inFlight` attempts were on the wire there,
   * itself included; `stream` says its latency sample is time to first token.
   */
  record(endpoint: number, outcome: WorkOutcome, inFlight: number, stream: boolean): void;
}

/** Options of {@link createEndpointLimits}. */
export interface EndpointLimitsOptions {
  /** One entry per endpoint: its policy when adaptive, else `undefined` (no limit of its own). */
  policies: ReadonlyArray<AdaptiveLimitPolicy | undefined>;
  clock: Clock;
  /** Called on every move of a limit, with why (the decision log). */
  onDecision?: (endpoint: number, decision: LimitDecision) => void;
}

/** Per-endpoint limits plus what `stats()` and the hint poller need. */
export interface EndpointLimits extends ConcurrencyLimits {
  /** The current limit of each adaptive endpoint; `undefined` for the others. */
  limits(): Array<number | undefined>;
  /** Whether endpoint `endpoint` is adaptive. */
  isAdaptive(endpoint: number): boolean;
  /** A server hint for `endpoint` (see server-hints.ts). */
  observe(endpoint: number, hint: ServerHint): void;
  /** The last fresh hint of `endpoint`. */
  hint(endpoint: number): ServerHint | undefined;
}

/**
 * @example
 * const limits = createEndpointLimits({ policies: [defaultAdaptiveLimitPolicy, undefined], clock: systemClock });
 * createSupervisor({ ...options, limits });
 */
export function createEndpointLimits(options: EndpointLimitsOptions): EndpointLimits {
  const controllers = options.policies.map((policy) =>
    policy === undefined ? undefined : new AdaptiveLimit(policy, options.clock),
  );
  const report = (endpoint: number, decision: LimitDecision | undefined): void => {
    if (decision !== undefined) options.onDecision?.(endpoint, decision);
  };
  return {
    limit: (endpoint) => controllers[endpoint]?.limit ?? Number.POSITIVE_INFINITY,
    record(endpoint, outcome, inFlight, stream) {
      const controller = controllers[endpoint];
      if (controller === undefined) return;
      if (outcome.ok) {
        // Streams: time to first token (its growth is the server's queue; the rest of an answer
        // scales with its length). Otherwise time to headers, the first thing a JSON answer says.
        const latency = stream
          ? (outcome.timing.ttftMs ?? outcome.timing.headersMs)
          : outcome.timing.headersMs;
        report(endpoint, controller.sample(latency, inFlight));
        return;
      }
      const drop = dropOf(outcome.error.status, outcome.error.code);
      if (drop !== undefined) report(endpoint, controller.drop(drop));
    },
    limits: () => controllers.map((controller) => controller?.limit),
    isAdaptive: (endpoint) => controllers[endpoint] !== undefined,
    observe(endpoint, hint) {
      report(endpoint, controllers[endpoint]?.observe(hint));
    },
    hint: (endpoint) => controllers[endpoint]?.hint,
  };
}

/** The failures that say "too much load": a 429, a 503 (queue full), a timeout. */
function dropOf(
  status: number | undefined,
  code: string | undefined,
): 'rate-limited' | 'load-shed' | 'timeout' | undefined {
  if (status === 429) return 'rate-limited';
  if (status === 503) return 'load-shed';
  if (code === ErrorCode.TIMEOUT) return 'timeout';
  return undefined;
}
