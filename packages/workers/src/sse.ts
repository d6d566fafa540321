/**
 * A minimal, incremental Server-Sent Events parser (WHATWG HTML §9.2.6, the parts LLM servers
 * use): `data:` fields joined by `\n`, dispatched on a blank line; `:` comments reported
 * separately because keep-alive comments must not count as progress for the idle timeout;
 * `\r\n`, `\n` and `\r` line endings. Bytes are decoded as a stream so a multi-byte character
 * split across chunks survives. Lines and events are capped so a hostile server cannot grow
 * memory without bound.
 */
export interface SseHandlers {
  onData(data: string): void;
  /** A `:` comment line; `text` is what follows the colon (servers put metadata there). */
  onComment?(text: string): void;
}

export class SseLimitError extends Error {
  override name = 'SseLimitError';
}

export class SseParser {
  readonly #handlers: SseHandlers;
  readonly #maxEventChars: number;
  readonly #decoder = new TextDecoder('utf-8');
  #pending = '';
  #data: string[] = [];
  #dataChars = 0;

  constructor(handlers: SseHandlers, maxEventChars: number) {
    this.#handlers = handlers;
    this.#maxEventChars = maxEventChars;
  }

  push(chunk: Uint8Array): void {
    this.#feed(this.#decoder.decode(chunk, { stream: true }), false);
  }

  /** End of stream: per the spec an event without its terminating blank line is discarded. */
  end(): void {
    this.#feed(this.#decoder.decode(), true);
  }

  #feed(text: string, final: boolean): void {
    const input = this.#pending + text;
    let start = 0;
    // Only the new text can hold a line end: the pending part was scanned before.
    for (let i = this.#pending.length; i < input.length; i++) {
      const c = input.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // A '\r' ending the chunk may be the first half of '\r\n': decide when more arrives.
      if (c === 13 && i + 1 === input.length && !final) break;
      this.#line(input.slice(start, i));
      if (c === 13 && input.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    this.#pending = input.slice(start);
    if (this.#pending.length > this.#maxEventChars) {
      throw new SseLimitError(`SSE line longer than ${this.#maxEventChars} characters`);
    }
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length === 0) return;
      const data = this.#data.length === 1 ? (this.#data[0] as string) : this.#data.join('\n');
      this.#data = [];
      this.#dataChars = 0;
      this.#handlers.onData(data);
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      this.#handlers.onComment?.(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== 'data') return; // `event`, `id`, `retry`: not used by OpenAI-style streams
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    this.#dataChars += value.length;
    if (this.#dataChars > this.#maxEventChars) {
      throw new SseLimitError(`SSE event larger than ${this.#maxEventChars} characters`);
    }
    this.#data.push(value);
  }
}
