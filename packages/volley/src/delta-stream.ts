/**
 * A streamed call as an async iterable of deltas: `for await (const delta of volley.stream(req))`.
 *
 * The deltas come from the call's `onDelta` callback, which the runtime calls as the worker reads
 * the SSE stream; it cannot be paused from here, so deltas wait in a queue until the consumer
 * pulls them. That queue never blocks the worker or drops a delta, and it is bounded by the answer
 * itself (at most `maxResponseBytes`); a consumer that stops early (`break`, `return`) aborts the
 * call, which cancels the HTTP request and returns its rate-limit reservation.
 */

/** One content delta of a streamed choice (as `onDelta` reports it). */
export interface StreamDelta {
  choice: number;
  content: string;
}

/** Deltas as they arrive, then the assembled answer. */
export interface DeltaStream<T> extends AsyncIterable<StreamDelta> {
  /**
   * The assembled answer (what the same call returns without streaming); rejects with the call's
   * error. Read it after the loop; an early `break` makes it reject with the abort.
   */
  readonly completion: Promise<T>;
}

type Run<T> = (onDelta: (delta: StreamDelta) => void, signal: AbortSignal) => Promise<T>;

/**
 * Starts `run` at once and exposes its deltas as a single-use async iterable. Errors of the call
 * are thrown from the iterator after the deltas that came before them.
 */
export function createDeltaStream<T>(run: Run<T>, callerSignal?: AbortSignal): DeltaStream<T> {
  const controller = new AbortController();
  const signal =
    callerSignal === undefined
      ? controller.signal
      : AbortSignal.any([callerSignal, controller.signal]);
  const queue: StreamDelta[] = [];
  let head = 0;
  let settled: { ok: true } | { ok: false; error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };

  let completion: Promise<T>;
  try {
    completion = run((delta) => {
      queue.push(delta);
      notify();
    }, signal);
  } catch (error) {
    completion = Promise.reject(error);
  }
  completion.then(
    () => {
      settled = { ok: true };
      notify();
    },
    (error: unknown) => {
      settled = { ok: false, error };
      notify();
    },
  );

  let iterating = false;
  const iterator: AsyncIterator<StreamDelta> = {
    async next(): Promise<IteratorResult<StreamDelta>> {
      for (;;) {
        if (head < queue.length) {
          const delta = queue[head] as StreamDelta;
          // Drop consumed deltas in chunks, so the queue holds only what was not read yet.
          if (++head >= 1024) queue.splice(0, head), (head = 0);
          return { done: false, value: delta };
        }
        if (settled !== undefined) {
          if (!settled.ok) throw settled.error;
          return { done: true, value: undefined };
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
    async return(): Promise<IteratorResult<StreamDelta>> {
      // The consumer stopped early: nobody will read the rest, so stop paying for it.
      if (settled === undefined)
        controller.abort(new DOMException('stream closed by the consumer', 'AbortError'));
      queue.length = 0;
      head = 0;
      return { done: true, value: undefined };
    },
  };
  return {
    completion,
    [Symbol.asyncIterator]() {
      if (iterating) throw new TypeError('volley.stream: a stream can be iterated only once');
      iterating = true;
      return iterator;
    },
  };
}
