/**
 * Actor primitives. An actor owns its state and handles one message at a time from a bounded
 * mailbox, so its state needs no locks. `receive` runs synchronously; a reply may be a promise,
 * which is handed to the asker without blocking the next message (Akka's `pipeTo`): the token
 * bucket can park a request for a second while still serving `settle` messages.
 *
 *   send/ask --> [ mailbox (bounded FIFO) ] --microtask--> receive(msg) --> reply / side effects
 */
import { ErrorCode, VolleyError } from './errors.js';
import { FixedQueue } from './fixed-queue.js';

export interface ActorBehavior<TMsg, TReply> {
  receive(message: TMsg): TReply | Promise<TReply>;
  /** Runs once after the mailbox has drained on `stop()`. */
  onStop?(): void | Promise<void>;
}

export interface ActorOptions {
  name: string;
  /** Messages waiting at once. `send` returns false and `ask` rejects past it. */
  mailboxCapacity?: number;
  /** Where a `send` whose handler threw reports. Defaults to rethrowing out of band (loud). */
  onError?: (error: unknown, actorName: string) => void;
}

export interface AskOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface ActorRef<TMsg, TReply> {
  readonly name: string;
  readonly isStopped: boolean;
  /** Fire and forget. `false` means the mailbox is full or the actor stopped. */
  send(message: TMsg): boolean;
  /** Request/response. Rejects with `VOLLEY_ERR_MAILBOX_FULL`, `_STOPPED`, `_TIMEOUT` or `_ABORTED`. */
  ask(message: TMsg, options?: AskOptions): Promise<TReply>;
  /** Stops intake, handles what is already queued, then runs `onStop`. Idempotent. */
  stop(): Promise<void>;
}

interface Envelope<TMsg, TReply> {
  message: TMsg;
  resolve?: (reply: TReply | Promise<TReply>) => void;
  reject?: (error: unknown) => void;
}

const DEFAULT_MAILBOX_CAPACITY = 65_536;

function rethrowOutOfBand(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

export function createActor<TMsg, TReply = void>(
  behavior: ActorBehavior<TMsg, TReply>,
  options: ActorOptions,
): ActorRef<TMsg, TReply> {
  const capacity = options.mailboxCapacity ?? DEFAULT_MAILBOX_CAPACITY;
  const onError = options.onError ?? rethrowOutOfBand;
  const mailbox = new FixedQueue<Envelope<TMsg, TReply>>();
  let scheduled = false;
  let stopping: Promise<void> | undefined;

  const drain = (): void => {
    scheduled = false;
    for (let envelope = mailbox.shift(); envelope !== undefined; envelope = mailbox.shift()) {
      try {
        const reply = behavior.receive(envelope.message);
        if (envelope.resolve) envelope.resolve(reply);
        else if (reply instanceof Promise)
          reply.catch((error: unknown) => onError(error, options.name));
      } catch (error) {
        if (envelope.reject) envelope.reject(error);
        else onError(error, options.name);
      }
    }
  };

  const enqueue = (envelope: Envelope<TMsg, TReply>): boolean => {
    if (stopping !== undefined || mailbox.length >= capacity) return false;
    mailbox.push(envelope);
    if (!scheduled) {
      scheduled = true;
      // Never deliver synchronously: a caller must be able to rely on `send` returning first.
      queueMicrotask(drain);
    }
    return true;
  };

  const refusal = (): VolleyError =>
    stopping !== undefined
      ? new VolleyError(ErrorCode.STOPPED, `actor ${options.name} is stopped`)
      : new VolleyError(
          ErrorCode.MAILBOX_FULL,
          `actor ${options.name}: mailbox full (${capacity})`,
        );

  return {
    name: options.name,
    get isStopped() {
      return stopping !== undefined;
    },
    send: (message) => enqueue({ message }),
    ask(message, askOptions = {}) {
      return new Promise<TReply>((resolve, reject) => {
        const { signal, timeoutMs } = askOptions;
        if (signal?.aborted) {
          reject(
            new VolleyError(ErrorCode.ABORTED, `ask to ${options.name} aborted`, {
              cause: signal.reason,
            }),
          );
          return;
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const cleanup = (): void => {
          if (timer !== undefined) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        };
        const onAbort = (): void => {
          cleanup();
          reject(
            new VolleyError(ErrorCode.ABORTED, `ask to ${options.name} aborted`, {
              cause: signal?.reason,
            }),
          );
        };
        const accepted = enqueue({
          message,
          resolve: (reply) => {
            if (timer === undefined && signal === undefined) return resolve(reply);
            Promise.resolve(reply).then(
              (value) => {
                cleanup();
                resolve(value);
              },
              (error: unknown) => {
                cleanup();
                reject(error instanceof Error ? error : new Error(String(error)));
              },
            );
          },
          reject: (error) => {
            cleanup();
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        });
        if (!accepted) return reject(refusal());
        signal?.addEventListener('abort', onAbort, { once: true });
        if (timeoutMs !== undefined) {
          timer = setTimeout(() => {
            cleanup();
            reject(
              new VolleyError(
                ErrorCode.TIMEOUT,
                `ask to ${options.name} timed out after ${timeoutMs} ms`,
              ),
            );
          }, timeoutMs);
        }
      });
    },
    stop() {
      stopping ??= (async () => {
        await new Promise<void>((resolve) => setImmediate(resolve));
        drain();
        await behavior.onStop?.();
      })();
      return stopping;
    },
  };
}

/**
 * The mailbox of an actor that lives on the same thread as everything that sends to it (the
 * supervisor). A message sent while the actor is idle is handled at once, in the sender's turn; a
 * message sent while it is handling one (its handler sent it, directly or through a callback it
 * made) waits, and is handled right after, in the same turn. Messages are thus still handled one
 * at a time and in order, which is all the actor's state needs, without the microtask per hop that
 * `createActor` pays for its deferral (xstate's Mailbox drains synchronously the same way).
 *
 * A handler that throws is a bug: the error is rethrown out of band (loud), and the messages
 * behind it are still handled.
 */
export class Mailbox<TMsg> {
  readonly #receive: (message: TMsg) => void;
  readonly #waiting = new FixedQueue<TMsg>();
  #busy = false;

  constructor(receive: (message: TMsg) => void) {
    this.#receive = receive;
  }

  send(message: TMsg): void {
    if (this.#busy) {
      this.#waiting.push(message);
      return;
    }
    this.#busy = true;
    try {
      for (let next: TMsg | undefined = message; next !== undefined; next = this.#waiting.shift()) {
        try {
          this.#receive(next);
        } catch (error) {
          rethrowOutOfBand(error);
        }
      }
    } finally {
      this.#busy = false;
    }
  }
}
