/**
 * One deadline over a set of calls: at the deadline, what completed is returned, everything still
 * running is aborted through its signal (for Volley calls: the HTTP request is cancelled and its
 * reservation returned), and the result says which were cancelled. `withDeadline` returns at the
 * deadline even if a task ignores its signal; such a task's late result is dropped.
 */
import { ErrorCode, VolleyError, withSpan } from '@volley/core';
import { createScope, elapsedSince, invalidOption, now, toError } from './shared.js';

/** One call (or any async work) under the deadline; pass `signal` on to `volley.chat`. */
export type DeadlineTask<T> = (signal: AbortSignal) => Promise<T>;

/** What became of one task: its value, its error, or cancelled at the deadline. */
export type DeadlineOutcome<T> =
  | { status: 'completed'; value: T; latencyMs: number }
  | { status: 'failed'; error: Error; latencyMs: number }
  /** Still running at the deadline (or when the caller aborted): aborted, no result. */
  | { status: 'cancelled' };

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
 * console.log(results.summary.status, cancelled); // 'completed' [ 'entities' ]
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
      if (pending > 0) {
        const reason =
          stoppedBy === 'deadline'
            ? new VolleyError(ErrorCode.TIMEOUT, `deadline of ${deadlineMs} ms passed`)
            : new VolleyError(ErrorCode.ABORTED, 'withDeadline aborted by the caller', {
                cause: options.signal?.reason,
              });
        scope.abort(reason);
      }
      scope.dispose();
      const results = outcomes.map((outcome) => outcome ?? { status: 'cancelled' as const });
      const keysWith = (status: DeadlineOutcome<T>['status']): Array<number | string> =>
        entries.flatMap(([key], i) => (results[i]?.status === status ? [key] : []));
      resolve({
        results: isList
          ? results
          : Object.fromEntries(entries.map(([key], i) => [key, results[i] as DeadlineOutcome<T>])),
        completed: keysWith('completed'),
        failed: keysWith('failed'),
        cancelled: keysWith('cancelled'),
        stoppedBy,
        elapsedMs: elapsedSince(started),
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
      void promise.then(
        (value) => record({ status: 'completed', value, latencyMs: elapsedSince(taskStarted) }),
        (error: unknown) =>
          record({ status: 'failed', error: toError(error), latencyMs: elapsedSince(taskStarted) }),
      );
    });
    if (entries.length === 0) finish();
  });
}
