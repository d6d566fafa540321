/**
 * Bounds the memory that answers being read can take in one executor. Most answers are small and
 * never wait. An answer that grows past `LARGE_ANSWER_BYTES` must hold one of a few *large* slots
 * to go on reading; the others pause where they are (their bytes wait in the kernel and on the
 * server: TCP flow control) until a slot frees. A slot holder needs nothing more to finish, so
 * readers never wait on each other in a circle. Memory for answers is then at most
 * `slots × maxResponseBytes` plus `LARGE_ANSWER_BYTES` for every other attempt in flight, however
 * high the concurrency (64 answers of 40 MB once took 4.3 GB).
 *
 * undici does not time a paused body out: the idle timeout counts only while the body is read.
 */

/** An answer larger than this is large: it reads on only while it holds a slot. */
export const LARGE_ANSWER_BYTES = 4 * 1024 * 1024;

/** What may give up waiting: an attempt (undici's EventEmitter-style signal). */
export interface Abortable {
  readonly aborted: boolean;
  once(event: 'abort', listener: () => void): unknown;
  off(event: 'abort', listener: () => void): unknown;
}

export class LargeAnswerGate {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(slots: number) {
    this.#free = Math.max(1, Math.floor(slots));
  }

  /**
   * Resolves with the slot's release once a slot is free (at once when one is); rejects if
   * `attempt` is aborted first, giving its place up.
   */
  acquire(attempt: Abortable): Promise<() => void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        attempt.off('abort', giveUp);
        resolve(this.#releaser());
      };
      const giveUp = (): void => {
        const at = this.#waiting.indexOf(grant);
        if (at !== -1) this.#waiting.splice(at, 1);
        reject(new Error('aborted while waiting to read a large answer'));
      };
      if (attempt.aborted) {
        reject(new Error('aborted while waiting to read a large answer'));
        return;
      }
      attempt.once('abort', giveUp);
      this.#waiting.push(grant);
    });
  }

  /** A release that counts once, however often it is called. */
  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#free++;
    };
  }
}
