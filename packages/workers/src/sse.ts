/**
 * A minimal, incremental Server-Sent Events parser (WHATWG HTML §9.2.6, the parts LLM servers
 * use): `data:` fields joined by `\n`, dispatched on a blank line; `:` comments reported
 * separately because keep-alive comments must not count as progress for the idle timeout;
 * `\r\n`, `\n` and `\r` line endings. Bytes are decoded as a stream so a multi-byte character
 * split across chunks survives. Lines and events are capped so a hostile server cannot grow
 * memory without bound.
 */
import { StringDecoder } from 'node:string_decoder';

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
  // StringDecoder rather than TextDecoder: on Node 20 a long stream's decoding fell from 12.6% of
  // the main thread to under 4% (benchmarks/README.md, round 6); the same UTF-8, `\uFFFD` for bad bytes.
  readonly #decoder = new StringDecoder('utf8');
  #pending = '';
  #data: string[] = [];
  #dataChars = 0;

  constructor(handlers: SseHandlers, maxEventChars: number) {
    this.#handlers = handlers;
    this.#maxEventChars = maxEventChars;
  }

  push(chunk: Buffer): void {
    this.#feed(this.#decoder.write(chunk), false);
  }

  /** End of stream: per the spec an event without its terminating blank line is discarded. */
  end(): void {
    this.#feed(this.#decoder.end(), true);
  }

  #feed(text: string, final: boolean): void {
    const input = this.#pending + text;
    let start = 0;
    // Line ends are found with indexOf, not char by char (that loop was 30% of the main thread on
    // a long stream). Only the new text can hold one, the pending part was scanned before, except a '\r'
    // left at its end (see below). '\r' is rare, so it is looked for once and then only past
    // the line it ended.
    const from = this.#pending.length - (this.#pending.endsWith('\r') ? 1 : 0);
    let lf = input.indexOf('\n', from);
    let cr = input.indexOf('\r', from);
    while (lf !== -1 || cr !== -1) {
      let end: number;
      let next: number;
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        end = lf;
        next = lf + 1;
      } else {
        // A '\r' ending the chunk may be the first half of '\r\n': decide when more arrives.
        if (cr + 1 === input.length && !final) break;
        end = cr;
        next = input.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
      }
      this.#line(input.slice(start, end));
      start = next;
      if (lf !== -1 && lf < start) lf = input.indexOf('\n', start);
      if (cr !== -1 && cr < start) cr = input.indexOf('\r', start);
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
