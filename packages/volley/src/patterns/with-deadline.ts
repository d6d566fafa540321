/**
 * One deadline over a set of calls: at the deadline, what completed is returned, everything still
 * running is aborted through its signal (for Volley calls: the HTTP request is cancelled and its
 * reservation returned), and the result says which were cancelled. `withDeadline` returns at the
 * deadline even if a task ignores its signal; such a task's late result is dropped.
 */
import { ErrorCode, VolleyError, withSpan } from '@volley/core';
import type { Settled } from '../settled.js';
import { createScope, elapsedSince, invalidOption, now, toError } from './shared.js';

/** One call (or any async work) under the deadline; pass `signal` on to `volley.chat`. */
export type DeadlineTask<T> = (signal: AbortSignal) => Promise<T>;

/**
 * What became of one task, settled like every item of `map` and `fanOut`: `{ ok: true, value }`
 * or `{ ok: false, error }`. A task still running at the deadline (or when the caller aborted)
 * was cancelled: `ok: false` with the reason it was aborted with (`VOLLEY_ERR_TIMEOUT` at the
 * deadline, `VOLLEY_ERR_ABORTED` for the caller's signal) and its key in `cancelled`.
 */
export type DeadlineOutcome<T> = Settled<T>;

/** Options of {@link withDeadline}. */
export interface WithDeadlineOptions {
  /** Time allowed for the whole set, from the call to `withDeadline`. */
  deadlineMs: number;
  /** Stops early, like the deadline: what completed is returned, the rest cancelled. */
  signal?: AbortSignal;
}

/** What {@link withDeadline} returns: outcomes shaped like the input, and which keys ended how. */
export interface WithDeadlineResult<R, K> {
  /** Outcomes shaped like the input: a record with the same keys, or a list in input order. */
  results: R;
  completed: K[];
  failed: K[];
  cancelled: K[];
  /** What cut the set short, if anything: `undefined` when every task settled in time. */
  stoppedBy: 'deadline' | 'signal' | undefined;
  elapsedMs: number;
}

/**
 * Runs tasks under one deadline and returns at the deadline at the latest, with what completed
 * and which tasks were cancelled.
 *
 * @example
 * const { results, cancelled } = await withDeadline(
 *   {
 *     summary: (signal) => volley.chat({ messages: [{ role: 'user', content: 'Summarise...' }] }, { signal }),
 *     entities: (signal) => volley.chat({ messages: [{ role: 'user', content: 'Entities...' }] }, { signal }),
 *   },
 *   { deadlineMs: 8000 },
 * );
 * console.log(results.summary.ok, cancelled); // true [ 'entities' ]
 */
export function withDeadline<T>(
  tasks: ReadonlyArray<DeadlineTask<T>>,
  options: WithDeadlineOptions,
): Promise<WithDeadlineResult<Array<DeadlineOutcome<T>>, number>>;
export function withDeadline<K extends string, T>(
  tasks: Readonly<Record<K, DeadlineTask<T>>>,
  options: WithDeadlineOptions,
): Promise<WithDeadlineResult<Record<K, DeadlineOutcome<T>>, K>>;
export function withDeadline<T>(
  tasks: ReadonlyArray<DeadlineTask<T>> | Readonly<Record<string, DeadlineTask<T>>>,
  options: WithDeadlineOptions,
): Promise<
  WithDeadlineResult<
    Array<DeadlineOutcome<T>> | Record<string, DeadlineOutcome<T>>,
    number | string
  >
> {
  return withSpan(`volley.withDeadline`, { 'volley.pattern': 'withDeadline' }, () =>
    runWithDeadline<T>(tasks, options),
  );
}

function runWithDeadline<T>(
  tasks: ReadonlyArray<DeadlineTask<T>> | Readonly<Record<string, DeadlineTask<T>>>,
  options: WithDeadlineOptions,
): Promise<
  WithDeadlineResult<
    Array<DeadlineOutcome<T>> | Record<string, DeadlineOutcome<T>>,
    number | string
  >
> {
  const { deadlineMs } = options;
  if (typeof deadlineMs !== 'number' || !(deadlineMs >= 0) || !Number.isFinite(deadlineMs)) {
    throw invalidOption(`withDeadline: deadlineMs must be a finite number >= 0, got ${deadlineMs}`);
  }
  const isList = Array.isArray(tasks);
  const entries: Array<[number | string, DeadlineTask<T>]> = isList
    ? (tasks as ReadonlyArray<DeadlineTask<T>>).map((task, i) => [i, task])
    : Object.entries(tasks as Readonly<Record<string, DeadlineTask<T>>>);
  const started = now();
  const scope = createScope(options.signal);
  const outcomes: Array<DeadlineOutcome<T> | undefined> = new Array<DeadlineOutcome<T> | undefined>(
    entries.length,
  ).fill(undefined);
  const cancelledAt = new Set<number>();
  let pending = entries.length;
  let stoppedBy: 'deadline' | 'signal' | undefined;
  let finished = false;

  return new Promise((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      scope.signal.removeEventListener('abort', onSignal);
      const elapsedMs = elapsedSince(started);
      if (pending > 0) {
        const reason =
          stoppedBy === 'deadline'
            ? new VolleyError(ErrorCode.TIMEOUT, `deadline of ${deadlineMs} ms passed`)
            : new VolleyError(ErrorCode.ABORTED, 'withDeadline aborted by the caller', {
                cause: options.signal?.reason,
              });
        scope.abort(reason);
        outcomes.forEach((outcome, i) => {
          if (outcome !== undefined) return;
          cancelledAt.add(i);
          outcomes[i] = { ok: false, index: i, error: reason, latencyMs: elapsedMs };
        });
      }
      scope.dispose();
      const results = outcomes as Array<DeadlineOutcome<T>>;
      const keysWhere = (test: (i: number) => boolean): Array<number | string> =>
        entries.flatMap(([key], i) => (test(i) ? [key] : []));
      resolve({
        results: isList
          ? results
          : Object.fromEntries(entries.map(([key], i) => [key, results[i] as DeadlineOutcome<T>])),
        completed: keysWhere((i) => results[i]?.ok === true),
        failed: keysWhere((i) => results[i]?.ok === false && !cancelledAt.has(i)),
        cancelled: keysWhere((i) => cancelledAt.has(i)),
        stoppedBy,
        elapsedMs,
      });
    };
    const onSignal = (): void => {
      stoppedBy ??= 'signal';
      finish();
    };
    if (scope.signal.aborted) {
      stoppedBy = 'signal';
      finish();
      return;
    }
    scope.signal.addEventListener('abort', onSignal, { once: true });
    timer = setTimeout(() => {
      stoppedBy = 'deadline';
      finish();
    }, deadlineMs);

    entries.forEach(([, task], i) => {
      const taskStarted = now();
      const record = (outcome: DeadlineOutcome<T>): void => {
        // A task that settles after the deadline (it ignored its signal) is dropped.
        if (finished) return;
        outcomes[i] = outcome;
        if (--pending === 0) finish();
      };
      let promise: Promise<T>;
      try {
        promise = Promise.resolve(task(scope.signal));
      } catch (error) {
        promise = Promise.reject(toError(error));
      }
      // Recorded on the task's own promise, no hop more: a task that settled before the
      // deadline (or the caller's abort) fired counts as settled.
      void promise.then(
        (value) => record({ ok: true, index: i, value, latencyMs: elapsedSince(taskStarted) }),
        (error: unknown) =>
          record({
            ok: false,
            index: i,
            error: toError(error),
            latencyMs: elapsedSince(taskStarted),
          }),
      );
    });
    if (entries.length === 0) finish();
  });
}
