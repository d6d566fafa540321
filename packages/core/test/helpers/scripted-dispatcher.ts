/**
 * An in-memory `Dispatcher` driven by the test: it records every `WorkRequest` the supervisor
 * dispatches, and the test answers them through the sink (outcomes, lost attempts, crashes),
 * always from test code, never from inside `dispatch`, as the sink contract requires.
 */
import type { SerializedError } from '../../src/errors.js';
import type {
  Dispatcher,
  DispatchSink,
  WorkerStats,
  WorkRequest,
  WorkSuccess,
} from '../../src/protocol/work.js';

export class ScriptedDispatcher implements Dispatcher {
  readonly kind = 'async' as const;
  readonly sink: DispatchSink;
  /** Every request dispatched, in order, retries included. */
  readonly dispatched: WorkRequest[] = [];
  /** Sizes of the batches handed to `dispatch`. */
  readonly batches: number[] = [];
  /** Attempt ids dispatched and not yet answered by the test. */
  readonly open = new Map<number, WorkRequest>();
  /** The most attempts ever open at once. */
  maxOpen = 0;
  readonly cancelled: number[] = [];
  closeCalls = 0;
  destroyCalls = 0;

  constructor(sink: DispatchSink) {
    this.sink = sink;
  }

  dispatch(requests: WorkRequest[]): void {
    this.batches.push(requests.length);
    for (const request of requests) {
      this.dispatched.push(request);
      this.open.set(request.id, request);
    }
    this.maxOpen = Math.max(this.maxOpen, this.open.size);
  }

  cancel(ids: number[]): void {
    this.cancelled.push(...ids);
  }

  stats(): Promise<WorkerStats[]> {
    return Promise.resolve([]);
  }

  close(): Promise<void> {
    this.closeCalls++;
    return Promise.resolve();
  }

  destroy(): Promise<void> {
    this.destroyCalls++;
    return Promise.resolve();
  }

  /** The latest dispatched request; throws if there is none. */
  last(): WorkRequest {
    const request = this.dispatched.at(-1);
    if (request === undefined) throw new Error('nothing dispatched');
    return request;
  }

  /** Ids of the attempts still open, oldest first. */
  openIds(): number[] {
    return [...this.open.keys()];
  }

  succeed(
    id: number,
    body: unknown = { id: `cmpl-${id}` },
    extra: Partial<WorkSuccess> = {},
  ): void {
    this.open.delete(id);
    this.sink.outcomes([
      {
        id,
        ok: true,
        status: 200,
        requestId: `req-${id}`,
        body,
        timing: { latencyMs: 5, headersMs: 2 },
        ...extra,
      },
    ]);
  }

  fail(id: number, error: Partial<SerializedError> & { code: string }): void {
    this.open.delete(id);
    this.sink.outcomes([
      { id, ok: false, error: { name: 'VolleyError', message: 'scripted failure', ...error } },
    ]);
  }

  lose(ids: number[], error: Partial<SerializedError> = {}): void {
    for (const id of ids) this.open.delete(id);
    this.sink.lost(ids, { name: 'Error', message: 'worker exited', ...error });
  }

  crash(error: Partial<SerializedError> = {}): void {
    this.sink.workerCrashed({ name: 'Error', message: 'worker exited with code 1', ...error });
  }
}
