/**
 * One shape for "each item settled on its own", shared by `volley.map`, `fanOut` and
 * `withDeadline`: a success carries its `value`, a failure its `error`, never a rejected whole.
 * `index` is the item's position in the input (for keyed input: in `Object.entries` order), and
 * `latencyMs` how long the item took from its start to its end.
 */
import { elapsedSince, now, toError } from './patterns/shared.js';

export type Settled<T> =
  | { ok: true; index: number; value: T; latencyMs: number }
  | { ok: false; index: number; error: Error; latencyMs: number };

/** Runs `task` (a throw counts as a rejection) and settles it, timed. */
export async function settle<T>(index: number, task: () => Promise<T> | T): Promise<Settled<T>> {
  const started = now();
  try {
    const value = await task();
    return { ok: true, index, value, latencyMs: elapsedSince(started) };
  } catch (error) {
    return { ok: false, index, error: toError(error), latencyMs: elapsedSince(started) };
  }
}
