/**
 * comlink over a dedicated MessagePort per worker: the control plane (stats, cancel), kept off
 * the data path. comlink's default "throw" handler keeps only message, name and stack, so both
 * sides install one that carries Volley's `code`, `status` and `cause` across.
 */

import type { MessagePort } from 'node:worker_threads';
import { deserializeError, serializeError } from '@volley/core';
import * as Comlink from 'comlink';

let installed = false;

export function installErrorTransfer(): void {
  if (installed) return;
  installed = true;
  const builtin = Comlink.transferHandlers.get('throw');
  if (builtin === undefined) return;
  Comlink.transferHandlers.set('throw', {
    canHandle: builtin.canHandle,
    serialize(thrown: unknown) {
      const { value } = thrown as { value: unknown };
      return [
        {
          isError: value instanceof Error,
          value: value instanceof Error ? serializeError(value) : value,
        },
        [],
      ];
    },
    deserialize(serialized: unknown) {
      const { isError, value } = serialized as { isError: boolean; value: unknown };
      throw isError ? deserializeError(value as Parameters<typeof deserializeError>[0]) : value;
    },
  });
}

type Listener = Parameters<Comlink.Endpoint['addEventListener']>[1];

/** Node's MessagePort speaks `on('message')`; comlink wants DOM-style listeners with `{ data }`. */
export function portEndpoint(port: MessagePort): Comlink.Endpoint {
  const listeners = new WeakMap<object, (data: unknown) => void>();
  return {
    postMessage: (message: unknown, transfer?: unknown[]) =>
      port.postMessage(message, transfer as never),
    addEventListener(_type: string, handler: Listener) {
      const listener = (data: unknown): void => {
        const event = { data } as Parameters<Extract<Listener, (...args: never[]) => unknown>>[0];
        if (typeof handler === 'function') handler(event);
        else handler.handleEvent(event);
      };
      listeners.set(handler, listener);
      port.on('message', listener);
    },
    removeEventListener(_type: string, handler: Listener) {
      const listener = listeners.get(handler);
      if (listener !== undefined) port.off('message', listener);
      listeners.delete(handler);
    },
    start: () => port.start(),
  };
}

export function exposeControl(api: object, port: MessagePort): void {
  installErrorTransfer();
  Comlink.expose(api, portEndpoint(port));
}

export function wrapControl<T>(port: MessagePort): Comlink.Remote<T> {
  installErrorTransfer();
  return Comlink.wrap<T>(portEndpoint(port));
}
