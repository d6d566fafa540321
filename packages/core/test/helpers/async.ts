/**
 * Helpers for letting real event-loop turns pass (the supervisor batches dispatches with
 * `setImmediate`) and for observing promises without leaving rejections unhandled.
 */

// Captured at import, so a test that stubs `setImmediate` can still let real turns pass.
const realSetImmediate = globalThis.setImmediate;

/** Lets `turns` event-loop turns pass (every microtask and immediate queued meanwhile runs). */
export async function tick(turns = 10): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => realSetImmediate(resolve));
}

/** Lets `count` microtask turns pass without letting the event loop reach its next phase. */
export async function microtasks(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await Promise.resolve();
}

export interface Tracked<T> {
  readonly promise: Promise<T>;
  readonly state: 'pending' | 'fulfilled' | 'rejected';
  readonly value: T | undefined;
  readonly error: unknown;
}

/** Observes a promise's outcome synchronously later; the rejection counts as handled. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked: {
    promise: Promise<T>;
    state: Tracked<T>['state'];
    value: T | undefined;
    error: unknown;
  } = {
    promise,
    state: 'pending',
    value: undefined,
    error: undefined,
  };
  promise.then(
    (value) => {
      tracked.state = 'fulfilled';
      tracked.value = value;
    },
    (error: unknown) => {
      tracked.state = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}

/** The `code` property of a thrown value, if it has one. */
export function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null
    ? (error as { code?: unknown }).code
    : undefined;
}

/** The `code` of a thrown value's `cause`. */
export function causeCodeOf(error: unknown): unknown {
  return error instanceof Error ? codeOf(error.cause) : undefined;
}
