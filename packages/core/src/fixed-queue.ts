/**
 * A FIFO on a growable ring buffer: O(1) push/shift with no `Array#shift` copying, the structure
 * Node core, undici and piscina use for their queues. Capacity bounds live in the callers
 * (mailboxes, the supervisor's queue), which decide what "full" means.
 */
export class FixedQueue<T> {
  #buffer: Array<T | undefined>;
  #head = 0;
  #size = 0;

  constructor(initialCapacity = 16) {
    this.#buffer = new Array<T | undefined>(Math.max(2, initialCapacity));
  }

  get length(): number {
    return this.#size;
  }

  push(item: T): void {
    if (this.#size === this.#buffer.length) this.#grow();
    this.#buffer[(this.#head + this.#size) % this.#buffer.length] = item;
    this.#size++;
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#buffer[this.#head];
    this.#buffer[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#buffer.length;
    this.#size--;
    return item;
  }

  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#buffer[this.#head];
  }

  /** Removes every item matching `predicate`, keeping order. O(n); for rare paths (cancel). */
  removeWhere(predicate: (item: T) => boolean): T[] {
    const removed: T[] = [];
    for (let remaining = this.#size; remaining > 0; remaining--) {
      const item = this.shift() as T;
      if (predicate(item)) removed.push(item);
      else this.push(item);
    }
    return removed;
  }

  /** Iterates oldest first without removing anything. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#size; i++)
      yield this.#buffer[(this.#head + i) % this.#buffer.length] as T;
  }

  drain(): T[] {
    const out: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item);
    return out;
  }

  #grow(): void {
    const next = new Array<T | undefined>(this.#buffer.length * 2);
    for (let i = 0; i < this.#size; i++)
      next[i] = this.#buffer[(this.#head + i) % this.#buffer.length];
    this.#buffer = next;
    this.#head = 0;
  }
}
