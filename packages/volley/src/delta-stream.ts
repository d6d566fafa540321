/**
 * A streamed call as an async iterable of deltas: `for await (const delta of volley.stream(req))`.
 *
 * The deltas come from the call's `onDelta` callback, which the runtime calls as the worker reads
 * the SSE stream; it cannot be paused from here, so deltas wait in a queue until the consumer
 * pulls them. That queue never blocks the worker or drops a delta, and it is bounded by the answer
 * itself (at most `maxResponseBytes`); a consumer that stops early (`break`, `return`) aborts the
 * call, which cancels the HTTP request and returns its rate-limit reservation.
 *
 * Retries: an attempt that fails before the consumer has read any of its deltas is retried as
 * always, and its unread deltas are dropped (the retry's answer starts over). Once a delta has
 * been read it cannot be taken back, so an attempt that breaks after that stops the call with
 * `VOLLEY_ERR_TRUNCATED_STREAM` instead of splicing a second answer onto the first.
 */
import type { StreamDelta as AttemptDelta } from '@volley/core';
import { ErrorCode, VolleyError } from '@volley/core';

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

/** Starts the call; `onDelta` gets the runtime's deltas, whose `id` names their attempt. */
type Run<T> = (onDelta: (delta: AttemptDelta) => void, signal: AbortSignal) => Promise<T>;

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
  /** The attempt the queued deltas come from, and whether the consumer has read one of them. */
  let attempt: number | undefined;
  let delivered = false;
  let broken: VolleyError | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };

  const onDelta = (delta: AttemptDelta): void => {
    if (broken !== undefined) return;
    if (attempt !== undefined && delta.id !== attempt) {
      if (delivered) {
        broken = new VolleyError(
          ErrorCode.TRUNCATED_STREAM,
          'the stream broke after some of its deltas were read; a retry would start the answer over, so the call was stopped',
        );
        controller.abort(broken);
        return;
      }
      queue.length = 0;
      head = 0;
    }
    attempt = delta.id;
    queue.push({ choice: delta.choice, content: delta.content });
    notify();
  };
  // Async, so a synchronous throw of `run` (a request without a model) rejects like the rest.
  const started = (async () => run(onDelta, signal))();
  // A stream stopped for a broken attempt rejects with why, not with the abort that stopped it.
  const completion = started.catch((error: unknown) => {
    throw broken ?? error;
  });
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
          delivered = true;
          // Drop consumed deltas in chunks, so the queue holds only what was not read yet.
          if (++head >= 1024) {
            queue.splice(0, head);
            head = 0;
          }
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
