/**
 * One `abort` listener per signal, however many calls wait on it. A caller who cancels a whole
 * `map` with one AbortController hands the same signal to thousands of calls; a listener each
 * would trip Node's MaxListenersExceededWarning (a leak warning for what is not a leak) and make
 * every abort walk the signal's listener list.
 *
 * @example
 * const unwatch = watchAbort(signal, () => cancel(job));
 * // ... when the job ends first:
 * unwatch();
 */

const watchers = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `onAbort` once when `signal` aborts; the returned function stops watching. */
export function watchAbort(signal: AbortSignal, onAbort: () => void): () => void {
  let callbacks = watchers.get(signal);
  if (callbacks === undefined) {
    const set = new Set<() => void>();
    callbacks = set;
    watchers.set(signal, set);
    signal.addEventListener(
      'abort',
      () => {
        watchers.delete(signal);
        for (const callback of set) callback();
      },
      { once: true },
    );
  }
  const set = callbacks;
  set.add(onAbort);
  return () => {
    set.delete(onAbort);
  };
}
