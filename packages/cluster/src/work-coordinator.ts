/**
 * The coordinator's side of a batch spread over a cluster: lines go out in chunks, results come
 * back, and each line's promise settles once, whatever arrives twice.
 *
 *   submit(line) ─► chunk buffer ─► XADD work (every `chunkLines` lines, or 50 ms after the first)
 *   XREAD results ─► pending line? settle it (first result wins) : count a duplicate
 *   every second: beat (TTLs; is the batch still there?), registry, trim what was written
 *
 * Delivery is at least once (a chunk whose lease lapsed runs again); the caller (the journal's
 * only writer) sees each line once: a line is settled at most once, and a result for a line no
 * longer pending is dropped. A result stays in Redis until the caller says it is written
 * (`written`), so a coordinator killed in between finds it again on `--resume` (same batch id):
 * {@link BatchCoordinator.open} adopts the chunks and results still in Redis.
 *
 * If Redis comes back empty (restarted without persistence), the batch is created again and
 * every line still pending is sent out again, counted as maybe billed twice.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { BatchKeys } from './work-keys.js';
import { batchKeys, batchRegistryKey, compareStreamIds } from './work-keys.js';
import type { LineReport, WorkerReport, WorkLine, WorkLink } from './work-protocol.js';
import {
  DEFAULT_BATCH_TTL_MS,
  DEFAULT_LEASE_MS,
  openWorkLink,
  pause,
  redisMessage,
  runWork,
  stoppedError,
} from './work-protocol.js';

export interface BatchCoordinatorOptions {
  url: string;
  /** Default `volley`. */
  prefix?: string;
  /** The run id: the same on `--resume`, so the batch (and what Redis holds of it) is found again. */
  batch: string;
  /** Lines per chunk. Default 100: a chunk run twice costs at most that many calls. */
  chunkLines?: number;
  leaseMs?: number;
  ttlMs?: number;
  /** Shown by `volley cluster status`. */
  describe?: Record<string, string | number>;
  log?: (message: string) => void;
}

/** Lines done by one worker, as the summary shows them. */
export interface WorkerShare {
  lines: number;
  succeeded: number;
  failed: number;
}

export interface BatchReport {
  batch: string;
  chunks: number;
  byWorker: Record<string, WorkerShare>;
  /** Results for a line already settled: dropped here (and at Redis, `atRedis`). */
  duplicatesDropped: number;
  /** Lines sent again after a lapsed lease or a Redis that lost its data: maybe billed twice. */
  resentLines: number;
  /** Calls the workers' runtimes retried after an ambiguous failure: maybe billed twice. */
  workerExtraBilledCalls: number;
  /** Results found in Redis on `--resume`, written without being sent again. */
  recovered: number;
  /** Redis commands this coordinator sent. */
  commands: number;
}

interface Pending {
  line: WorkLine;
  resolve: (report: WorkerReport) => void;
  reject: (error: Error) => void;
}

interface Early {
  report: LineReport;
  worker: string;
  entry: string;
}

const BEAT_MS = 1_000;
/** How long a batch stays listed as running after its coordinator's last beat. */
const LIVE_MS = 5_000;
/**
 * A chunk not yet full goes out this long after its first line while fewer than two chunks' worth
 * of lines are out (the start, the tail, a small batch): workers never wait long for work.
 */
const FLUSH_DELAY_MS = 50;
/**
 * While more are out, the workers have work queued, so a part chunk waits for more lines, up to
 * this long: in steady state lines arrive only as results come back, and a 50 ms flush cut the
 * chunks to ~rate x 50 ms lines (47 a chunk at 640 lines/s), each costing 4 commands more
 * (benchmarks/cluster-batch).
 */
const MAX_FLUSH_DELAY_MS = 1_000;
/**
 * After a read that returned results, the next waits this long, so that one XREAD takes the
 * reports of several workers: results reach the writer at most this much later, and the lines
 * out at once (the pass's window) are many more than the workers hold, so no worker waits.
 */
const READ_GAP_MS = 50;
/** Result entries one XREAD takes at most (each holds one worker's report of up to a chunk). */
const READ_COUNT = 500;

export class BatchCoordinator {
  readonly batch: string;
  readonly #link: WorkLink;
  readonly #reader: Redis;
  readonly #keys: BatchKeys;
  readonly #registry: string;
  readonly #options: BatchCoordinatorOptions;
  readonly #chunkLines: number;
  readonly #leaseMs: number;
  readonly #ttlMs: number;
  #epoch = newEpoch();
  readonly #pending = new Map<number, Pending>();
  /** Lines of chunks a previous coordinator of this batch left in Redis, not yet asked for. */
  readonly #adopted = new Set<number>();
  /** Results for adopted lines that arrived before the caller asked for them. */
  readonly #early = new Map<number, Early>();
  /** Settled, not yet written: the result entry to keep in Redis until then. */
  readonly #unwritten = new Map<number, string>();
  #buffer: WorkLine[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  /** When the part chunk in the buffer got its first line (performance.now). */
  #bufferedAt = 0;
  #lastId = '0-0';
  #closed = false;
  /** No result is read any more (the caller stopped waiting): what comes stays in Redis. */
  #stopped = false;
  #reading: Promise<void> | undefined;
  #beatTimer: NodeJS.Timeout | undefined;
  #beating = false;
  /** Redis lost the batch's keys and the pending lines have not all gone out again yet. */
  #rebuilding = false;
  readonly #report: Omit<BatchReport, 'commands'>;

  private constructor(link: WorkLink, options: BatchCoordinatorOptions) {
    this.#link = link;
    this.#options = options;
    this.batch = options.batch;
    this.#keys = batchKeys(options.prefix ?? 'volley', options.batch);
    this.#registry = batchRegistryKey(options.prefix ?? 'volley');
    this.#chunkLines = options.chunkLines ?? 100;
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.#ttlMs = options.ttlMs ?? DEFAULT_BATCH_TTL_MS;
    this.#reader = link.redis.duplicate({ connectionName: `volley:${link.member}:results` });
    this.#reader.on('error', () => undefined);
    this.#report = {
      batch: options.batch,
      chunks: 0,
      byWorker: {},
      duplicatesDropped: 0,
      resentLines: 0,
      workerExtraBilledCalls: 0,
      recovered: 0,
    };
  }

  /**
   * Creates the batch in Redis, or adopts what a killed coordinator of the same batch left there
   * (its chunks still queued or running, its results not yet written). Rejects with
   * `VOLLEY_ERR_CLUSTER_UNAVAILABLE` when Redis is out of reach.
   */
  static async open(options: BatchCoordinatorOptions): Promise<BatchCoordinator> {
    const link = await openWorkLink(options.url, '--cluster');
    const coordinator = new BatchCoordinator(link, options);
    link.onEvent((event) => {
      if (event.type === 'lost')
        coordinator.#log(`cluster Redis lost (${event.cause}); lines wait`);
      else coordinator.#log(`cluster Redis back after ${event.downMs} ms`);
    });
    try {
      const previous = await coordinator.#open();
      if (previous !== null) await coordinator.#adopt();
      await coordinator.#reader.connect();
      await coordinator.#register(LIVE_MS);
    } catch (error) {
      coordinator.#reader.disconnect();
      await link.close();
      throw error;
    }
    coordinator.#reading = coordinator.#read();
    coordinator.#beatTimer = setInterval(() => coordinator.#beat(), BEAT_MS);
    coordinator.#beatTimer.unref();
    return coordinator;
  }

  /** Sends a line out; settles with the first result any worker reports for it. */
  submit(line: WorkLine): Promise<WorkerReport> {
    if (this.#closed || this.#stopped) {
      return Promise.reject(stoppedError('the batch coordinator has stopped'));
    }
    const early = this.#early.get(line.i);
    if (early !== undefined) {
      this.#early.delete(line.i);
      this.#adopted.delete(line.i);
      this.#report.recovered++;
      this.#unwritten.set(line.i, early.entry);
      this.#tally(early.report, early.worker);
      return Promise.resolve({ ...early.report, worker: early.worker });
    }
    return new Promise<WorkerReport>((resolve, reject) => {
      this.#pending.set(line.i, { line, resolve, reject });
      // A chunk a previous coordinator left in Redis already holds it.
      if (this.#adopted.delete(line.i)) return;
      this.#buffer.push(line);
      if (this.#buffer.length >= this.#chunkLines) this.#flushBuffer();
      else if (this.#flushTimer === undefined) {
        this.#bufferedAt = performance.now();
        this.#armFlush();
      }
    });
  }

  /** The caller wrote (or dropped) a settled line: its result may leave Redis. */
  written(lineNo: number): void {
    this.#unwritten.delete(lineNo);
  }

  /** Lines still waiting for a result. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Every line still waiting rejects with `VOLLEY_ERR_STOPPED` (it stays pending for `--resume`).
   * Results are read no more: those arriving now stay in Redis for `--resume` to write.
   */
  abortPending(message: string): void {
    this.#stopped = true;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#buffer = [];
    for (const p of pending) p.reject(stoppedError(message));
  }

  report(): BatchReport {
    return {
      ...this.#report,
      byWorker: { ...this.#report.byWorker },
      commands: this.#link.commands,
    };
  }

  /**
   * Stops. `complete`: every line has its record, so every key of the batch goes; otherwise the
   * keys stay (with their TTL) for `--resume`, and workers take no more of its chunks.
   */
  async close(complete: boolean): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#beatTimer);
    clearTimeout(this.#flushTimer);
    this.abortPending('the batch coordinator has stopped');
    const k = this.#keys;
    try {
      await this.#register(0);
      if (complete) await runWork(this.#link, (r) => r.del(k.meta, k.work, k.lines, k.results));
      else await this.#trim();
    } catch (error) {
      this.#log(
        `could not tidy the batch's keys in Redis (${redisMessage(error)}); their TTL will`,
      );
    }
    this.#reader.disconnect();
    await this.#reading;
    await this.#link.close();
  }

  #log(message: string): void {
    this.#options.log?.(message);
  }

  async #open(): Promise<string | null> {
    const fields: string[] = [
      'coordinator',
      this.#link.member,
      'host',
      hostname(),
      'pid',
      String(process.pid),
      'startedAt',
      new Date().toISOString(),
      'lease',
      String(this.#leaseMs),
      'ttl',
      String(this.#ttlMs),
      'chunkLines',
      String(this.#chunkLines),
    ];
    for (const [key, value] of Object.entries(this.#options.describe ?? {})) {
      fields.push(key, String(value));
    }
    const k = this.#keys;
    return runWork(this.#link, (r) =>
      r.volleyBatchOpen(k.meta, k.work, this.#epoch, this.#ttlMs, ...fields),
    );
  }

  /** `--resume`: the lines of the chunks still in Redis; their results come through the reader. */
  async #adopt(): Promise<void> {
    const entries = (await runWork(this.#link, (r) =>
      r.xrange(this.#keys.work, '-', '+'),
    )) as Array<[string, string[]]>;
    for (const [, fields] of entries) {
      try {
        const lines = JSON.parse(fields[fields.indexOf('d') + 1] ?? '[]') as WorkLine[];
        for (const line of lines) this.#adopted.add(line.i);
      } catch {
        // Not a chunk of ours.
      }
    }
    // Results not yet written: kept aside until the caller asks for their lines (they may answer
    // lines whose chunk is already gone); the reader goes on after them.
    const results = (await runWork(this.#link, (r) =>
      r.xrange(this.#keys.results, '-', '+'),
    )) as Array<[string, string[]]>;
    for (const [id, fields] of results) {
      for (const report of parseReports(fields)) this.#adopted.add(report.i);
      this.#onEntry(id, fields);
      this.#lastId = id;
    }
    if (this.#adopted.size > 0) {
      this.#log(
        `resuming batch ${this.batch}: ${this.#adopted.size} lines still in Redis (queued, running or answered)`,
      );
    }
  }

  /** Flushes the part chunk soon while few lines are out, else once it has waited its longest. */
  #armFlush(): void {
    this.#flushTimer = setTimeout(() => {
      const out = this.#pending.size - this.#buffer.length;
      const waited = performance.now() - this.#bufferedAt;
      if (out >= 2 * this.#chunkLines && waited < MAX_FLUSH_DELAY_MS) this.#armFlush();
      else this.#flushBuffer();
    }, FLUSH_DELAY_MS);
  }

  #flushBuffer(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#buffer.length === 0) return;
    const lines = this.#buffer;
    this.#buffer = [];
    this.#enqueue(lines).catch(() => undefined);
  }

  /** XADD one chunk; while Redis is out of reach, tries again (the lines wait, pending). */
  async #enqueue(lines: WorkLine[]): Promise<void> {
    for (;;) {
      const live = lines.filter((l) => this.#pending.has(l.i));
      if (live.length === 0 || this.#closed) return;
      try {
        await runWork(this.#link, (r) => r.xadd(this.#keys.work, '*', 'd', JSON.stringify(live)));
        this.#report.chunks++;
        return;
      } catch {
        await pause(250);
      }
    }
  }

  async #read(): Promise<void> {
    while (!this.#closed && !this.#stopped) {
      let reply: Array<[string, Array<[string, string[]]>]> | null;
      const from = this.#lastId;
      try {
        this.#link.commands++;
        reply = (await this.#reader.xread(
          'COUNT',
          READ_COUNT,
          'BLOCK',
          250,
          'STREAMS',
          this.#keys.results,
          from,
        )) as typeof reply;
      } catch {
        if (!this.#closed) await pause(250);
        continue;
      }
      // A recovery reset the position meanwhile: what was read belongs to the lost stream.
      // A stop meanwhile: leave what was read in Redis for `--resume`.
      if (this.#lastId !== from || this.#stopped) continue;
      const entries = reply?.[0]?.[1] ?? [];
      for (const [id, fields] of entries) {
        this.#lastId = id;
        this.#onEntry(id, fields);
      }
      if (entries.length > 0 && entries.length < READ_COUNT) await pause(READ_GAP_MS);
    }
  }

  #onEntry(id: string, fields: string[]): void {
    const field = (name: string): string | undefined => fields[fields.indexOf(name) + 1];
    const worker = field('w') ?? '?';
    this.#report.workerExtraBilledCalls += Number(field('x') ?? 0) || 0;
    this.#report.duplicatesDropped += Number(field('n') ?? 0) || 0;
    for (const report of parseReports(fields)) {
      if (report.rs === 1) this.#report.resentLines++;
      const pending = this.#pending.get(report.i);
      if (pending !== undefined) {
        this.#pending.delete(report.i);
        this.#unwritten.set(report.i, id);
        this.#tally(report, worker);
        pending.resolve({ ...report, worker });
      } else if (this.#adopted.has(report.i) && !this.#early.has(report.i)) {
        this.#early.set(report.i, { report, worker, entry: id });
      } else {
        this.#report.duplicatesDropped++;
      }
    }
  }

  #tally(report: LineReport, worker: string): void {
    const share = this.#report.byWorker[worker] ?? { lines: 0, succeeded: 0, failed: 0 };
    this.#report.byWorker[worker] = share;
    share.lines++;
    if ('ok' in report) share.succeeded++;
    else share.failed++;
  }

  #beat(): void {
    if (this.#beating || this.#closed) return;
    this.#beating = true;
    this.#beatOnce()
      .catch(() => undefined)
      .finally(() => {
        this.#beating = false;
      });
  }

  async #beatOnce(): Promise<void> {
    const k = this.#keys;
    const alive = await runWork(this.#link, (r) =>
      r.volleyBatchBeat(k.meta, k.work, k.lines, k.results, this.#epoch, this.#ttlMs),
    );
    if (alive === 0) {
      // A new epoch before anything is written: should the rebuild stop half-way (a command
      // failed, its reply lost), the next beat finds either no batch again or this epoch, and
      // `#rebuilding` says the pending lines still have to go out.
      this.#epoch = newEpoch();
      this.#rebuilding = true;
    } else if (alive === -1) {
      this.#log(`batch ${this.batch} was adopted by another coordinator: this one stops`);
      this.abortPending('another coordinator adopted the batch');
      return;
    }
    if (this.#rebuilding) await this.#rebuild();
    await this.#register(LIVE_MS);
    await this.#trim();
  }

  /**
   * Redis came back without the batch: create it again and send out every pending line. Run
   * again from the start (the lines counted again) if a beat finds it did not finish.
   */
  async #rebuild(): Promise<void> {
    await this.#open();
    this.#lastId = '0-0';
    this.#adopted.clear();
    this.#early.clear();
    this.#unwritten.clear();
    const buffered = new Set(this.#buffer.map((l) => l.i));
    const again = [...this.#pending.values()].map((p) => p.line).filter((l) => !buffered.has(l.i));
    this.#report.resentLines += again.length;
    this.#log(
      `Redis lost the batch's keys (restarted without persistence?): sending ${again.length} pending lines again (maybe billed twice)`,
    );
    for (let start = 0; start < again.length; start += this.#chunkLines) {
      await this.#enqueue(again.slice(start, start + this.#chunkLines));
    }
    this.#rebuilding = false;
  }

  async #register(liveMs: number): Promise<void> {
    await runWork(this.#link, (r) => r.volleyBatchRegister(this.#registry, this.batch, liveMs));
  }

  /** Results older than the oldest one not yet written (or adopted and not yet asked for) go. */
  async #trim(): Promise<void> {
    let keep = this.#lastId;
    for (const entry of this.#unwritten.values()) {
      if (compareStreamIds(entry, keep) < 0) keep = entry;
    }
    for (const early of this.#early.values()) {
      if (compareStreamIds(early.entry, keep) < 0) keep = early.entry;
    }
    if (keep === '0-0') return;
    await runWork(this.#link, (r) => r.xtrim(this.#keys.results, 'MINID', keep));
  }
}

function parseReports(fields: string[]): LineReport[] {
  const data = fields[fields.indexOf('d') + 1];
  try {
    const reports = JSON.parse(data ?? '[]') as unknown;
    return Array.isArray(reports) ? (reports as LineReport[]) : [];
  } catch {
    return [];
  }
}

function newEpoch(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
