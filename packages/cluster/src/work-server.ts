/**
 * A worker of the cluster (`volley worker`, and the coordinator's own share of the work): takes
 * chunks of lines from every running batch, sends them with the caller's runtime, and reports
 * each line's outcome back through Redis.
 *
 *   registry (live batches) ─► XAUTOCLAIM (a chunk whose lease lapsed) or XREADGROUP (a new one)
 *        ─► queue of lines ─► start script (owner? mark `s`) ─► runLine ─► report (every 25 ms, or
 *           once 3/4 of `concurrency` results wait; one script per batch)
 *        ─► finish (owner: XACK + XDEL) | release (stopping, endpoint out) | dropped (lost it)
 *
 * It holds chunks only while it has fewer than `concurrency` lines queued or in flight, so a
 * chunk waits in Redis (where any worker may take it) rather than behind this worker's queue.
 * Leases are renewed every quarter lease while the chunk is held.
 */
import { hostname } from 'node:os';
import type { BatchKeys } from './work-keys.js';
import { batchKeys, batchRegistryKey, WORK_GROUP, workerKey } from './work-keys.js';
import type { LineOutcome, LineReport, WorkLine, WorkLink } from './work-protocol.js';
import {
  DEFAULT_BATCH_TTL_MS,
  DEFAULT_LEASE_MS,
  openWorkLink,
  pause,
  redisMessage,
  runWork,
} from './work-protocol.js';

export interface WorkServerOptions {
  url: string;
  /** Default `volley`. */
  prefix?: string;
  /** Lines queued or in flight at most (chunks are taken while fewer are). */
  concurrency: number;
  /**
   * Sends one line. `unsent` or undefined: it could not be done here (no endpoint left,
   * aborted): the chunk is released for another worker and the line stays unanswered; `unsent`
   * says the request surely never left (so it cannot have been billed), undefined that it may have.
   */
  runLine(line: WorkLine): Promise<LineOutcome | 'unsent' | undefined>;
  /** Calls this worker's runtime counts as maybe billed twice (retried after an ambiguous failure). */
  extraBilledCalls?: () => number;
  /** Shown by `volley cluster status` (mode, threads...). */
  describe?: () => Record<string, unknown>;
  /** Lines said once each: a Redis outage, a chunk taken over, a lease lost. */
  log?: (message: string) => void;
  /** Between looks for work when there is none. Default 100 ms. */
  pollMs?: number;
  /**
   * Results wait at most this long before they are reported. Default 25 ms. Once 3/4 of
   * `concurrency` results wait, they are reported at once.
   */
  reportMs?: number;
}

export interface WorkServerStats {
  chunks: number;
  takeovers: number;
  linesDone: number;
  resent: number;
  leasesLost: number;
  inFlight: number;
  /** Lines sent whose result is not yet in Redis: each holds a slot of `concurrency`. */
  holding: number;
  queued: number;
}

interface Batch {
  id: string;
  keys: BatchKeys;
  leaseMs: number;
  ttlMs: number;
}

interface Chunk {
  batch: Batch;
  id: string;
  lineNos: number[];
  queue: WorkLine[];
  inFlight: number;
  /** Lines neither reported nor found answered. */
  remaining: number;
  unreported: Map<number, string>;
  resent: Set<number>;
  /** Lines this worker marked sent but surely never sent: unmarked on release. */
  unsent: number[];
  /** Lines this worker could not do: they keep their slot until the chunk is released. */
  notDone: number;
  /** Another worker owns it now: start nothing more, report what comes back, never acknowledge. */
  lost: boolean;
  /** Released once what is in flight is reported: stopping, or a line this worker could not do. */
  giveUp: boolean;
  renewedAt: number;
}

const HEARTBEAT_MS = 1_000;
const WORKER_TTL_MS = 5_000;
const BATCHES_MS = 1_000;
/**
 * After it gives a chunk back because it could not send a line (its endpoints out), a worker
 * takes no chunk for a while: 1 s, doubling with each chunk given back up to 16 s, over once a
 * line succeeds. Without it a worker would claim at once the chunk it just released (a released
 * chunk is free to all) and spin on it, ahead of the workers that could send it.
 */
const REST_FIRST_MS = 1_000;
const REST_MAX_MS = 16_000;

export class WorkServer {
  readonly member: string;
  readonly #link: WorkLink;
  readonly #options: WorkServerOptions;
  readonly #prefix: string;
  readonly #startedAt = new Date().toISOString();
  /**
   * The chunks this worker holds, by object: one stream entry may be here twice, a chunk whose
   * lease this worker lost (its lines in flight still to report) and the same chunk claimed again
   * once its lease lapsed anew; each settles (and frees its slots) on its own.
   */
  readonly #chunks = new Set<Chunk>();
  #batches: Batch[] = [];
  #batchesAt = 0;
  #next = 0;
  #stopping = false;
  /** No chunk is taken before this time (Date.now()); see REST_FIRST_MS. */
  #restUntil = 0;
  #restMs = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Calls on the wire. */
  #inFlight = 0;
  /**
   * Lines sent whose result is not yet in Redis (on the wire, or answered and not yet reported).
   * They hold a slot of `concurrency` until reported, so a worker that dies leaves at most
   * `concurrency` lines that may have been billed: the re-sent count's bound.
   */
  #held = 0;
  #reportedExtra = 0;
  #wake: (() => void) | undefined;
  #pumping = false;
  #pumpAgain = false;
  /** The report under way: one at a time, or two would report the same lines (and free their slots) twice. */
  #reporting: Promise<void> | undefined;
  #loop: Promise<void> | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #stats = { chunks: 0, takeovers: 0, linesDone: 0, resent: 0, leasesLost: 0 };

  private constructor(link: WorkLink, options: WorkServerOptions) {
    this.#link = link;
    this.#options = options;
    this.#prefix = options.prefix ?? 'volley';
    this.member = link.member;
  }

  /** Connects and starts serving. Rejects with `VOLLEY_ERR_CLUSTER_UNAVAILABLE` if Redis is out of reach. */
  static async start(options: WorkServerOptions): Promise<WorkServer> {
    const link = await openWorkLink(options.url, '--cluster');
    const server = new WorkServer(link, options);
    link.onEvent((event) => {
      if (event.type === 'lost')
        server.#log(`cluster Redis lost (${event.cause}); holding results`);
      else server.#log(`cluster Redis back after ${event.downMs} ms`);
    });
    server.#begin();
    return server;
  }

  stats(): WorkServerStats {
    return {
      ...this.#stats,
      inFlight: this.#inFlight,
      holding: this.#held,
      queued: this.#queued(),
    };
  }

  /** Redis commands this worker sent. */
  commands(): number {
    return this.#link.commands;
  }

  /**
   * Stops taking chunks and starting lines, waits for the lines in flight (the caller aborts them
   * to hurry this), reports them, finishes what is done and releases the rest at once.
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    // After the loop: a chunk it was taking as the stop came is given back too.
    await this.#loop;
    for (const chunk of this.#chunks) {
      chunk.queue = [];
      chunk.giveUp = true;
    }
    // A start under way sends its lines; then the caller bounds the wait: it aborts the lines in
    // flight (runtime destroyed) when it will wait no more.
    while (this.#pumping || this.#inFlight > 0) await pause(25);
    // Redis may be out of reach: 5 s of tries, then the leases lapse by themselves.
    for (let tries = 0; this.#chunks.size > 0 && tries < 200; tries++) {
      await this.#report();
      if (this.#chunks.size > 0) await pause(25);
    }
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    await runWork(this.#link, (r) => r.del(workerKey(this.#prefix, this.member))).catch(
      () => undefined,
    );
    await this.#link.close();
  }

  #begin(): void {
    const every = (ms: number, fn: () => Promise<void>): void => {
      let busy = false;
      const timer = setInterval(() => {
        if (busy || this.#closed) return;
        busy = true;
        fn()
          .catch(() => undefined)
          .finally(() => {
            busy = false;
          });
      }, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.#options.reportMs ?? 25, () => this.#report());
    every(HEARTBEAT_MS, () => this.#heartbeat());
    // A quarter of the shortest lease: two renewals may fail (a slow Redis) before it lapses.
    every(500, () => this.#renew());
    this.#heartbeat().catch(() => undefined);
    this.#loop = this.#serve();
  }

  #log(message: string): void {
    this.#options.log?.(message);
  }

  /** Lines taken and not yet started. */
  #queued(): number {
    let queued = 0;
    for (const chunk of this.#chunks) queued += chunk.queue.length;
    return queued;
  }

  #outstanding(): number {
    return this.#queued() + this.#held;
  }

  async #serve(): Promise<void> {
    while (!this.#stopping) {
      let took = false;
      if (this.#outstanding() < this.#options.concurrency && Date.now() >= this.#restUntil) {
        try {
          took = await this.#take();
        } catch {
          // Redis out of reach: the link says so once; look again later.
        }
      }
      if (took) {
        this.#pump();
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#options.pollMs ?? 100);
        timer.unref();
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async #liveBatches(): Promise<Batch[]> {
    const now = performance.now();
    // With no batch known, look at every poll: a batch that starts is served at once.
    if (this.#batches.length > 0 && now - this.#batchesAt < BATCHES_MS) return this.#batches;
    this.#batchesAt = now;
    const ids = await runWork(this.#link, (r) => r.volleyBatchLive(batchRegistryKey(this.#prefix)));
    const known = new Map(this.#batches.map((b) => [b.id, b]));
    const batches: Batch[] = [];
    for (const id of ids) {
      const old = known.get(id);
      if (old !== undefined) {
        batches.push(old);
        continue;
      }
      let keys: BatchKeys;
      try {
        keys = batchKeys(this.#prefix, id);
      } catch {
        continue; // Not one of ours.
      }
      const [lease, ttl] = await runWork(this.#link, (r) => r.hmget(keys.meta, 'lease', 'ttl'));
      batches.push({
        id,
        keys,
        leaseMs: Number(lease) > 0 ? Number(lease) : DEFAULT_LEASE_MS,
        ttlMs: Number(ttl) > 0 ? Number(ttl) : DEFAULT_BATCH_TTL_MS,
      });
    }
    this.#batches = batches;
    return batches;
  }

  /** Takes one chunk: first one whose lease lapsed, else a new one, from the batches in turn. */
  async #take(): Promise<boolean> {
    const batches = await this.#liveBatches();
    for (let n = 0; n < batches.length; n++) {
      const batch = batches[(this.#next + n) % batches.length] as Batch;
      const { work } = batch.keys;
      let entry: [string, string[]] | undefined;
      let takeover = false;
      try {
        entry = await this.#claimLapsed(batch);
        takeover = entry !== undefined;
        if (entry === undefined) {
          const read = (await runWork(this.#link, (r) =>
            r.xreadgroup('GROUP', WORK_GROUP, this.member, 'COUNT', 1, 'STREAMS', work, '>'),
          )) as Array<[string, Array<[string, string[]]>]> | null;
          entry = read?.[0]?.[1][0];
        }
      } catch (error) {
        if (redisMessage(error).includes('NOGROUP')) continue; // The batch just ended.
        throw error;
      }
      if (entry === undefined) continue;
      this.#next = (this.#next + n + 1) % batches.length;
      this.#adopt(batch, entry, takeover);
      return true;
    }
    return false;
  }

  /**
   * The first chunk whose lease lapsed (or that was released), claimed. XAUTOCLAIM looks at no
   * more than 10 x COUNT entries of the pending list per call and returns where it stopped, so
   * the scan follows that cursor to the end: with many chunks held by live workers, a lapsed one
   * past the first ten would otherwise never be taken over.
   */
  async #claimLapsed(batch: Batch): Promise<[string, string[]] | undefined> {
    let cursor = '0-0';
    do {
      const from = cursor;
      const [next, entries] = (await runWork(this.#link, (r) =>
        r.xautoclaim(batch.keys.work, WORK_GROUP, this.member, batch.leaseMs, from, 'COUNT', 1),
      )) as [string, Array<[string, string[]] | null>];
      const entry = entries.find((e): e is [string, string[]] => e !== null);
      if (entry !== undefined) return entry;
      cursor = next;
    } while (cursor !== '0-0');
    return undefined;
  }

  #adopt(batch: Batch, [id, fields]: [string, string[]], takeover: boolean): void {
    const own = [...this.#chunks].find((c) => c.batch.id === batch.id && c.id === id && !c.lost);
    if (own !== undefined) {
      // Its own lease lapsed (a slow or starved process) and it claimed the chunk back: the claim
      // renewed the lease; the chunk runs on as it was, nothing is sent twice.
      own.renewedAt = Date.now();
      return;
    }
    const data = fields[fields.indexOf('d') + 1];
    let lines: WorkLine[] = [];
    try {
      lines = JSON.parse(data ?? '[]') as WorkLine[];
    } catch {
      // Not a chunk of ours: acknowledge nothing, leave it (its lease lapses for no one).
    }
    this.#stats.chunks++;
    if (takeover) {
      this.#stats.takeovers++;
      this.#log(
        `took over chunk ${id} of batch ${batch.id} (released by its worker, or its lease lapsed)`,
      );
    }
    this.#chunks.add({
      batch,
      id,
      lineNos: lines.map((l) => l.i),
      queue: lines,
      inFlight: 0,
      remaining: lines.length,
      unreported: new Map(),
      resent: new Set(),
      unsent: [],
      notDone: 0,
      lost: false,
      giveUp: false,
      renewedAt: Date.now(),
    });
  }

  /** Runs {@link #pumpOnce}, one at a time; asked again while it runs, it runs once more after. */
  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    this.#pumpOnce()
      .catch(() => undefined)
      .finally(() => {
        this.#pumping = false;
        if (this.#pumpAgain) {
          this.#pumpAgain = false;
          this.#pump();
        }
      });
  }

  /**
   * Starts queued lines while fewer than `concurrency` hold a slot: one script per group of a
   * chunk's lines. A group may start nothing (every line in it answered already: a chunk taken
   * over from a worker that died after reporting them), so the same chunk goes on with its next
   * group; stopping after one group left such a chunk's later lines queued with no answer coming
   * to start them again.
   */
  async #pumpOnce(): Promise<void> {
    for (const chunk of this.#chunks) {
      let started = false;
      while (!chunk.lost && !chunk.giveUp && chunk.queue.length > 0) {
        const free = this.#options.concurrency - this.#held;
        if (free <= 0 || this.#stopping) return;
        if (!(await this.#startGroup(chunk, chunk.queue.splice(0, free)))) return;
        started = true;
      }
      if (started && chunk.remaining === 0) await this.#settleChunk(chunk);
    }
  }

  /** Marks `group` sent and sends the lines not yet answered; false when Redis is out of reach. */
  async #startGroup(chunk: Chunk, group: WorkLine[]): Promise<boolean> {
    const { work, lines } = chunk.batch.keys;
    let reply: [number, string[], string[]];
    try {
      reply = await runWork(this.#link, (r) =>
        r.volleyWorkStart(
          work,
          lines,
          WORK_GROUP,
          this.member,
          chunk.id,
          chunk.batch.ttlMs,
          ...group.map((l) => String(l.i)),
        ),
      );
    } catch {
      chunk.queue.unshift(...group); // Redis out of reach: try again on the next pump.
      setTimeout(() => this.#pump(), 250).unref();
      return false;
    }
    const [owned, answered, resent] = reply;
    if (owned !== 1) {
      this.#loseLease(chunk);
      return true;
    }
    const skip = new Set(answered.map(Number));
    for (const i of resent) chunk.resent.add(Number(i));
    this.#stats.resent += resent.length;
    for (const line of group) {
      if (skip.has(line.i)) chunk.remaining--;
      else this.#send(chunk, line);
    }
    return true;
  }

  #send(chunk: Chunk, line: WorkLine): void {
    this.#inFlight++;
    this.#held++;
    chunk.inFlight++;
    // runLine settles every line (an unexpected throw counts as "not doable here").
    void this.#options
      .runLine(line)
      .then(
        (outcome) => outcome,
        () => undefined,
      )
      .then((outcome) => {
        this.#inFlight--;
        chunk.inFlight--;
        if (outcome === undefined || outcome === 'unsent') {
          // Not doable here: let another worker have the chunk as soon as this one lets go.
          // Its mark stays until the release: its slot stays taken till then too, so the lines
          // marked and unanswered never exceed `concurrency` (the bound on re-sent lines).
          if (outcome === 'unsent') chunk.unsent.push(line.i);
          chunk.notDone++;
          if (!chunk.giveUp) this.#rest();
          chunk.giveUp = true;
          chunk.queue = [];
        } else {
          this.#restMs = 0;
          const report: LineReport = { ...outcome, i: line.i };
          if (chunk.resent.has(line.i)) report.rs = 1;
          chunk.unreported.set(line.i, JSON.stringify(report));
          this.#stats.linesDone++;
          if (this.#unreported() >= this.#reportBatch()) void this.#report();
        }
        this.#pump();
        this.#wake?.();
      });
  }

  /** Takes no chunk for a while: this worker could not send a line (see REST_FIRST_MS). */
  #rest(): void {
    this.#restMs = Math.min(REST_MAX_MS, this.#restMs === 0 ? REST_FIRST_MS : this.#restMs * 2);
    this.#restUntil = Date.now() + this.#restMs;
  }

  #loseLease(chunk: Chunk): void {
    if (chunk.lost) return;
    chunk.lost = true;
    chunk.queue = [];
    this.#stats.leasesLost++;
    this.#log(
      `lost the lease of chunk ${chunk.id} of batch ${chunk.batch.id} (paused or cut off past it); its lines in flight are reported, the rest is another worker's`,
    );
  }

  /**
   * A line holds its slot until reported, so a fixed tick alone made slots wait: against a 20 ms
   * server, answers landing just after a 25 ms tick phase-locked one worker x 32 at ~49 ms a line
   * (657 lines/s; benchmarks/cluster-batch). Once 3/4 of the slots' results wait they go at
   * once: 1,200 lines/s; a report still carries that many lines, so commands per line do not rise.
   */
  #reportBatch(): number {
    return Math.max(1, Math.ceil((this.#options.concurrency * 3) / 4));
  }

  #unreported(): number {
    let n = 0;
    for (const chunk of this.#chunks) n += chunk.unreported.size;
    return n;
  }

  /**
   * Runs {@link #flush}, one at a time. Not again by itself: with Redis out of reach that would
   * spin; the next result (or the tick) asks again.
   */
  #report(): Promise<void> {
    this.#reporting ??= this.#flush()
      .catch(() => undefined)
      .finally(() => {
        this.#reporting = undefined;
      });
    return this.#reporting;
  }

  /**
   * Reports buffered results, one script per batch (the results of all its chunks together: a
   * worker often runs the end of one chunk and the start of the next, and one script per chunk
   * doubled the reports), with the runtime's new maybe-billed-twice calls; then settles the chunks
   * that are done.
   */
  async #flush(): Promise<void> {
    const byBatch = new Map<string, Chunk[]>();
    for (const chunk of this.#chunks) {
      if (chunk.unreported.size === 0) continue;
      const chunks = byBatch.get(chunk.batch.id) ?? [];
      chunks.push(chunk);
      byBatch.set(chunk.batch.id, chunks);
    }
    for (const [batchId, chunks] of byBatch) {
      const { batch } = chunks[0] as Chunk;
      const extra = this.#extraBilledDelta();
      const pairs: string[] = [];
      const sent = new Map<Chunk, number[]>();
      for (const chunk of chunks) {
        for (const [i, payload] of chunk.unreported) pairs.push(String(i), payload);
        sent.set(chunk, [...chunk.unreported.keys()]);
      }
      let reply: number;
      try {
        reply = await runWork(this.#link, (r) =>
          r.volleyWorkReport(
            batch.keys.lines,
            batch.keys.results,
            batch.keys.meta,
            batch.ttlMs,
            this.member,
            chunks.map((c) => c.id).join(','),
            extra,
            ...pairs,
          ),
        );
      } catch {
        return; // Kept; the next flush tries again.
      }
      if (reply === -1) {
        // The batch is gone. While it is still listed, its coordinator is rebuilding it (Redis
        // lost its data; it sends every pending line again): try later. Otherwise it ended.
        if (this.#batches.some((b) => b.id === batchId)) continue;
        for (const [chunk, lines] of sent) {
          chunk.lost = true;
          chunk.unreported.clear();
          this.#held -= lines.length;
        }
        continue;
      }
      this.#reportedExtra += extra;
      for (const [chunk, lines] of sent) {
        for (const i of lines) chunk.unreported.delete(i);
        chunk.remaining -= lines.length;
        this.#held -= lines.length;
      }
      this.#pump();
      this.#wake?.();
    }
    for (const chunk of this.#chunks) {
      if (chunk.inFlight > 0 || chunk.unreported.size > 0) continue;
      if (chunk.remaining === 0 || chunk.lost || (chunk.giveUp && chunk.queue.length === 0)) {
        await this.#settleChunk(chunk).catch(() => undefined);
        if (!this.#chunks.has(chunk)) this.#wake?.();
      }
    }
  }

  #extraBilledDelta(): number {
    const total = this.#options.extraBilledCalls?.() ?? 0;
    return Math.max(0, total - this.#reportedExtra);
  }

  /** Done with a chunk: acknowledge it (all answered), release it, or just drop it (lost). */
  async #settleChunk(chunk: Chunk): Promise<void> {
    if (chunk.inFlight > 0 || chunk.unreported.size > 0) return;
    const { work, lines } = chunk.batch.keys;
    if (!chunk.lost && chunk.remaining === 0) {
      const all = chunk.lineNos.map(String);
      await runWork(this.#link, (r) =>
        r.volleyWorkFinish(work, lines, WORK_GROUP, this.member, chunk.id, ...all),
      );
    } else if (!chunk.lost) {
      const unsent = chunk.unsent.map(String);
      await runWork(this.#link, (r) =>
        r.volleyWorkRelease(work, lines, WORK_GROUP, this.member, chunk.id, ...unsent),
      );
    }
    this.#held -= chunk.notDone;
    this.#chunks.delete(chunk);
  }

  async #renew(): Promise<void> {
    const now = Date.now();
    for (const chunk of this.#chunks) {
      if (chunk.lost) continue;
      if (now - chunk.renewedAt < chunk.batch.leaseMs / 4) continue;
      const owned = await runWork(this.#link, (r) =>
        r.volleyWorkRenew(chunk.batch.keys.work, WORK_GROUP, this.member, chunk.id),
      );
      if (owned === 1) chunk.renewedAt = now;
      else this.#loseLease(chunk);
    }
  }

  async #heartbeat(): Promise<void> {
    const stats = this.stats();
    const body = JSON.stringify({
      member: this.member,
      host: hostname(),
      pid: process.pid,
      startedAt: this.#startedAt,
      concurrency: this.#options.concurrency,
      ...this.#options.describe?.(),
      load: { inFlight: stats.inFlight, queued: stats.queued, chunks: this.#chunks.size },
      done: { chunks: stats.chunks, lines: stats.linesDone, takeovers: stats.takeovers },
      batches: this.#batches.map((b) => b.id),
    });
    await runWork(this.#link, (r) =>
      r.set(workerKey(this.#prefix, this.member), body, 'PX', WORKER_TTL_MS),
    );
  }
}
