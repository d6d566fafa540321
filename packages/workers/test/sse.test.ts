import { describe, expect, it } from 'vitest';
import { SseLimitError, SseParser } from '../src/sse.js';

/** Feeds `chunks` (strings as UTF-8) to a parser and returns the events and comments it saw. */
function parse(chunks: Array<string | Buffer>, maxEventChars = 1_000_000) {
  const events: string[] = [];
  const comments: string[] = [];
  const parser = new SseParser(
    { onData: (data) => events.push(data), onComment: (text) => comments.push(text) },
    maxEventChars,
  );
  for (const chunk of chunks)
    parser.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
  parser.end();
  return { events, comments };
}

describe('SseParser', () => {
  it('dispatches data fields on a blank line, whatever the line ending', () => {
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = `data: one${eol}${eol}data:two${eol}${eol}: ping${eol}data: [DONE]${eol}${eol}`;
      expect(parse([text])).toEqual({ events: ['one', 'two', '[DONE]'], comments: [' ping'] });
    }
  });

  it('joins the data lines of one event with \\n and ignores other fields', () => {
    const text = 'event: x\nid: 7\ndata: a\ndata: b\nretry: 10\n\n';
    expect(parse([text]).events).toEqual(['a\nb']);
  });

  it('finds every event whatever the chunk boundaries, \\r\\n split between chunks included', () => {
    const text =
      'data: {"a":1}\r\n\r\n: keep-alive\r\n\r\ndata: {"b":2}\r\n\r\ndata: [DONE]\r\n\r\n';
    const expected = { events: ['{"a":1}', '{"b":2}', '[DONE]'], comments: [' keep-alive'] };
    for (let size = 1; size <= text.length; size++) {
      const chunks: string[] = [];
      for (let at = 0; at < text.length; at += size) chunks.push(text.slice(at, at + size));
      expect(parse(chunks), `chunks of ${size}`).toEqual(expected);
    }
  });

  it('keeps a multi-byte character split across chunks', () => {
    const bytes = Buffer.from('data: héllo ✓\n\n', 'utf8');
    const split = bytes.indexOf(0xa9); // inside "é"
    expect(parse([bytes.subarray(0, split), bytes.subarray(split)]).events).toEqual(['héllo ✓']);
  });

  it('discards an event whose blank line never came', () => {
    expect(parse(['data: one\n\ndata: cut off\n']).events).toEqual(['one']);
  });

  it('caps a line without an end and an event of many lines', () => {
    expect(() => parse([`data: ${'x'.repeat(100)}`], 50)).toThrow(SseLimitError);
    expect(() => parse(['data: xxxxxxxxxx\n'.repeat(10)], 50)).toThrow(SseLimitError);
  });
});
