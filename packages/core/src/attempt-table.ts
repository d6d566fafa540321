/**
 * Attempts on the wire by id, for the supervisor: an attempt's id names its slot in a plain array,
 * so adding, finding and removing one is an index, and a removed attempt is no longer referenced
 * by anything.
 *
 * Why not a `Map<number, Job>`: with keys that only grow and an entry removed per answer, V8
 * rebuilds the map's table every few hundred calls and each old table keeps a link to its
 * successor along with the entries it held. Once one of those tables is in the old generation,
 * the whole chain, and every finished call it still names, outlives the young-generation
 * collections and is promoted. Measured against nginx at C=256 (benchmarks/README.md, round 5):
 * about 0.8 KB per call promoted through the map, which this table does not hold on to.
 */

/** Slots per table: the most attempts one supervisor can hold on the wire at once. */
const SLOT_BITS = 20;
const SLOTS = 2 ** SLOT_BITS;

export class AttemptTable<T> {
  readonly #items: Array<T | undefined> = [];
  /** The id each slot holds now: a late answer for an older id of the slot is not found. */
  readonly #ids: number[] = [];
  /** How often each slot was handed out: the upper part of its ids. */
  readonly #uses: number[] = [];
  readonly #free: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Stores `item` in a free slot under a new id, unique for the table's lifetime, and returns it. */
  add(item: T): number {
    let slot = this.#free.pop();
    if (slot === undefined) {
      slot = this.#items.length;
      if (slot >= SLOTS) throw new Error(`more than ${SLOTS} attempts on the wire`);
      this.#items.push(undefined);
      this.#ids.push(-1);
      this.#uses.push(0);
    }
    const uses = (this.#uses[slot] as number) + 1;
    this.#uses[slot] = uses;
    const id = uses * SLOTS + slot;
    this.#items[slot] = item;
    this.#ids[slot] = id;
    this.#size++;
    return id;
  }

  get(id: number): T | undefined {
    const slot = id % SLOTS;
    return this.#ids[slot] === id ? this.#items[slot] : undefined;
  }

  /** Puts `item` under an id the table holds (a hedged call and its copy trade attempts). */
  replace(id: number, item: T): void {
    const slot = id % SLOTS;
    if (this.#ids[slot] !== id) throw new Error(`attempt ${id} is not on the wire`);
    this.#items[slot] = item;
  }

  delete(id: number): boolean {
    const slot = id % SLOTS;
    if (this.#ids[slot] !== id) return false;
    this.#items[slot] = undefined;
    this.#ids[slot] = -1;
    this.#free.push(slot);
    this.#size--;
    return true;
  }

  /** Every [id, item], oldest slot first; removing entries while iterating is allowed. */
  *entries(): IterableIterator<[number, T]> {
    for (let slot = 0; slot < this.#items.length; slot++) {
      const id = this.#ids[slot] as number;
      if (id !== -1) yield [id, this.#items[slot] as T];
    }
  }

  *values(): IterableIterator<T> {
    for (const [, item] of this.entries()) yield item;
  }

  clear(): void {
    for (let slot = 0; slot < this.#items.length; slot++) {
      if (this.#ids[slot] === -1) continue;
      this.#items[slot] = undefined;
      this.#ids[slot] = -1;
      this.#free.push(slot);
    }
    this.#size = 0;
  }
}
