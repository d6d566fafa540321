/**
 * `threads` mode: a Piscina pool of long-lived worker actors, each addressed through its own port.
 *
 *   worker start-up --hello { port, control }--> one Session per thread
 *   dispatch(requests) --least-loaded Session--> port { work, cancels }  (a message per thread)
 *   port { outcomes, deltas } --> sink                                    (a message per worker turn)
 *   cancel(ids) --> only the Session that holds each attempt
 *   the port closes (thread died) --> sink.lost(the attempts that thread still held)
 *
 * Piscina owns the threads (spawn, replace the dead, resource limits, tear down); the dispatcher
 * owns the traffic. Because it knows which thread holds each attempt, a cancel goes to that thread
 * alone, and a dead thread's attempts are exactly the ones its Session still lists: the supervisor
 * re-dispatches and counts them.
 */

import type { MessagePort } from 'node:worker_threads';
import type {
  Dispatcher,
  DispatchSink,
  WorkerConfig,
  WorkerStats,
  WorkRequest,
} from '@volley/core';
import { ErrorCode, serializeError, VolleyError } from '@volley/core';
import type { Remote } from 'comlink';
import { Piscina } from 'piscina';
import { wrapControl } from './control-channel.js';
import { wireBody } from './executor.js';
import { failure } from './failures.js';
import type { EventBatch, HelloMessage, WorkBatch, WorkerControl, WorkerInit } from './protocol.js';
import { isHello } from './protocol.js';
import { WorkPacker } from './work-pack.js';

export interface ThreadDispatcherOptions {
  sink: DispatchSink;
  config: WorkerConfig;
  threads: number;
  /** Override the worker entry (tests use a worker that crashes on purpose). */
  workerUrl?: URL;
}

/** One live worker thread, as the main thread sees it. */
interface Session {
  threadId: number;
  port: MessagePort;
  control: Remote<WorkerControl>;
  controlPort: MessagePort;
  /** Attempts this thread holds: sent, outcome not yet back. */
  open: Set<number>;
  /** Cancels waiting for this turn's flush. */
  cancels: number[];
}

export function defaultWorkerUrl(): URL {
  return new URL('./worker-entry.js', import.meta.url);
}

export function createThreadDispatcher(options: ThreadDispatcherOptions): Dispatcher {
  const { sink } = options;
  const sessions = new Set<Session>();
  /** Requests dispatched while no thread was up (start-up, or every thread just died). */
  let backlog: WorkRequest[] = [];
  let cancelFlushScheduled = false;
  let stopping = false;
  let pool = createPool();

  function createPool(): Piscina {
    const init: WorkerInit = { config: options.config };
    const created = new Piscina({
      filename: (options.workerUrl ?? defaultWorkerUrl()).href,
      minThreads: options.threads,
      maxThreads: options.threads,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      atomics: 'disabled',
      workerData: init,
    });
    created.on('message', (message: unknown) => {
      if (isHello(message) && !stopping) open(message);
    });
    // Every thread death, including one before its hello (start-up), is seen here exactly once.
    created.on('workerDestroy', () => {
      if (stopping || created !== pool) return;
      sink.workerCrashed(
        serializeError(new VolleyError(ErrorCode.WORKER_CRASHED, 'a worker thread exited')),
      );
      setImmediate(() => replaceIfAbandoned(created));
    });
    created.on('error', () => undefined /* every thread death is reported through workerDestroy */);
    return created;
  }

  /**
   * Piscina stops replacing threads that die while starting up. When it has given up, the whole
   * pool is rebuilt; the old threads' ports close and what they held comes back as `lost`.
   */
  function replaceIfAbandoned(current: Piscina): void {
    if (stopping || current !== pool || current.threads.length >= options.threads) return;
    pool = createPool();
    void current.destroy();
  }

  function open(hello: HelloMessage): void {
    const session: Session = {
      threadId: hello.threadId,
      port: hello.port,
      controlPort: hello.control,
      control: wrapControl<WorkerControl>(hello.control),
      open: new Set(),
      cancels: [],
    };
    sessions.add(session);
    session.port.on('message', (batch: EventBatch) => {
      for (const outcome of batch.outcomes) session.open.delete(outcome.id);
      if (session.open.size === 0) session.port.unref();
      if (batch.deltas.length > 0) sink.deltas(batch.deltas);
      if (batch.outcomes.length > 0) sink.outcomes(batch.outcomes);
    });
    // A thread's port closes when the thread ends, however it ends.
    session.port.once('close', () => onClosed(session));
    // The main thread must be free to exit while idle; a session holding attempts refs its port.
    session.port.unref();
    session.controlPort.unref();
    if (backlog.length > 0) {
      const waiting = backlog;
      backlog = [];
      send(session, waiting);
    }
  }

  function onClosed(session: Session): void {
    sessions.delete(session);
    if (stopping || session.open.size === 0) return;
    sink.lost(
      [...session.open],
      serializeError(new VolleyError(ErrorCode.WORKER_CRASHED, 'worker thread died mid-request')),
    );
    session.open.clear();
  }

  function send(session: Session, requests: WorkRequest[]): void {
    if (session.open.size === 0) session.port.ref();
    const packer = new WorkPacker();
    for (const request of requests) {
      session.open.add(request.id);
      packer.add(request, JSON.stringify(wireBody(request)));
    }
    const work = packer.take();
    const batch: WorkBatch = { work, cancels: session.cancels };
    session.cancels = [];
    session.port.postMessage(batch, [work.buffer]);
  }

  function flushCancels(): void {
    cancelFlushScheduled = false;
    for (const session of sessions) {
      if (session.cancels.length === 0) continue;
      const batch: WorkBatch = { cancels: session.cancels };
      session.cancels = [];
      session.port.postMessage(batch);
    }
  }

  /** `stats()` calls awaiting their answers. */
  let statsInFlight = 0;

  return {
    kind: 'threads',
    dispatch(requests) {
      if (sessions.size === 0) {
        for (const request of requests) backlog.push(request);
        return;
      }
      // Each request to the thread holding the fewest attempts: one message per thread.
      const shares = new Map<Session, WorkRequest[]>();
      const load = new Map<Session, number>();
      for (const session of sessions) load.set(session, session.open.size);
      for (const request of requests) {
        let best: Session | undefined;
        let bestLoad = Number.POSITIVE_INFINITY;
        for (const [session, held] of load) {
          if (held < bestLoad) {
            best = session;
            bestLoad = held;
          }
        }
        const target = best as Session;
        load.set(target, bestLoad + 1);
        const share = shares.get(target);
        if (share === undefined) shares.set(target, [request]);
        else share.push(request);
      }
      for (const [session, share] of shares) send(session, share);
    },
    cancel(ids) {
      for (const id of ids) {
        const queued = backlog.findIndex((request) => request.id === id);
        if (queued !== -1) {
          // Never sent: it ends here, as an aborted attempt that did not start.
          backlog.splice(queued, 1);
          const error = failure(ErrorCode.ABORTED, 'attempt cancelled before it started', false);
          // The sink hears back asynchronously, never from inside the call that caused it.
          setImmediate(() => sink.outcomes([{ id, ok: false, error }]));
          continue;
        }
        for (const session of sessions) {
          if (!session.open.has(id)) continue;
          session.cancels.push(id);
          if (!cancelFlushScheduled) {
            cancelFlushScheduled = true;
            setImmediate(flushCancels);
          }
          break;
        }
      }
    },
    async stats(): Promise<WorkerStats[]> {
      const asked = [...sessions];
      // The control ports are unref'd so an idle runtime never holds the process open; while an
      // answer is on its way they must hold it, or a caller with nothing else pending exits
      // mid-await. Counted: ref() is not, and overlapping calls must not unref each other.
      if (statsInFlight++ === 0) for (const session of asked) session.controlPort.ref();
      try {
        const all = await Promise.allSettled(asked.map((session) => session.control.stats()));
        return all.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      } finally {
        if (--statsInFlight === 0) for (const session of sessions) session.controlPort.unref();
      }
    },
    async close() {
      stopping = true;
      await pool.close();
      await pool.destroy();
    },
    async destroy() {
      stopping = true;
      await pool.destroy();
    },
  };
}
