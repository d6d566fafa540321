/**
 * What `JSON.parse` accepts silently but Volley refuses, found by one linear scan of the raw text
 * of a line that already parsed: duplicate and forbidden keys, unsafe integers, numbers beyond the
 * double range, nesting too deep. Also the JSON path of a position, to name the field in a message.
 *
 * Cost (measured when it was written, Node 20 on the 2-core dev machine): a 2.5 KB chat line
 * scans in about 1.0 µs beside 2.4 µs for `JSON.parse`; a 12 KB line of tool schemas, the
 * structure-heavy worst case, in about 76 µs.
 */

import type { InputIssueCode } from '../codes.js';
import { makeSnippet } from '../text.js';

/** A problem found by {@link scanJsonStructure}; `index` is a UTF-16 index into the text. */
export interface StructureProblem {
  code: Extract<
    InputIssueCode,
    | 'VOLLEY_INPUT_JSON_TOO_DEEP'
    | 'VOLLEY_INPUT_JSON_UNSAFE_INTEGER'
    | 'VOLLEY_INPUT_JSON_NUMBER_OUT_OF_RANGE'
    | 'VOLLEY_INPUT_JSON_DUPLICATE_KEY'
    | 'VOLLEY_INPUT_JSON_FORBIDDEN_KEY'
  >;
  detail: string;
  index: number;
}

/** Deepest accepted nesting of objects and arrays; the line's own object is depth 1. */
export const MAX_JSON_DEPTH = 64;

/** Objects switch from a linear array of keys to a Set above this many keys. */
const SMALL_OBJECT_KEYS = 16;

/**
 * One linear pass over text that `JSON.parse` has accepted, finding what it accepts silently:
 * duplicate keys (it keeps the last), `__proto__`/`constructor` keys (a prototype-pollution
 * vector once the object is merged), integer literals beyond 2^53 (it rounds them), number
 * literals beyond the double range (it makes them Infinity, which `JSON.stringify` sends as
 * `null`) and nesting deeper than {@link MAX_JSON_DEPTH}. Number problems name the field path.
 *
 * Strings are skipped with `indexOf('"')`, so prompts, the bulk of a line, are crossed at native
 * speed; only structural characters are visited one by one. Keys are compared after decoding
 * escapes (`"\u005f_proto__"` is `__proto__`). Per object, keys go in an array (small objects) or
 * a Set (large ones): linear overall, never quadratic.
 *
 * The text must be valid JSON; on other text the result is meaningless. `value`, when given, is
 * what `JSON.parse` made of `text`: lines it proves clean skip the scan (see provedClean).
 */
export function scanJsonStructure(text: string, value?: unknown): StructureProblem | undefined {
  if (value !== undefined && provedClean(text, value)) return undefined;
  // One entry per open container: the keys seen so far (objects) or null (arrays).
  const frames: Array<string[] | Set<string> | null> = [];
  let expectKey = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = text.indexOf('"', i + 1);
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf('"', end + 1);
      if (end === -1) return undefined;
      if (expectKey) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (key === '__proto__' || key === 'constructor') {
          return {
            code: 'VOLLEY_INPUT_JSON_FORBIDDEN_KEY',
            detail: `key ${JSON.stringify(key)} is not allowed`,
            index: i,
          };
        }
        const frame = frames[frames.length - 1];
        if (frame != null && addKey(frames, frame, key)) {
          return {
            code: 'VOLLEY_INPUT_JSON_DUPLICATE_KEY',
            detail: `key ${makeSnippet(JSON.stringify(key)).slice(0, 60)} appears twice in the same object`,
            index: i,
          };
        }
        expectKey = false;
      }
      i = end + 1;
      continue;
    }
    switch (c) {
      case 0x7b /* { */:
      case 0x5b /* [ */:
        frames.push(c === 0x7b ? [] : null);
        if (frames.length > MAX_JSON_DEPTH) {
          return {
            code: 'VOLLEY_INPUT_JSON_TOO_DEEP',
            detail: `nesting is deeper than ${MAX_JSON_DEPTH} levels`,
            index: i,
          };
        }
        expectKey = c === 0x7b;
        break;
      case 0x7d /* } */:
      case 0x5d /* ] */:
        frames.pop();
        expectKey = false;
        break;
      case 0x2c /* , */:
        expectKey = frames[frames.length - 1] != null;
        break;
      case 0x3a /* : */:
        expectKey = false;
        break;
      default:
        if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
          let end = i + 1;
          let integer = true;
          let exponent = false;
          for (; end < n; end++) {
            const d = text.charCodeAt(end);
            if (d >= 0x30 && d <= 0x39) continue;
            if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) {
              integer = false;
              if (d === 0x65 || d === 0x45) exponent = true;
              continue;
            }
            break;
          }
          // 2^53 has 16 digits: shorter integer literals are always safe, so most numbers are
          // never converted here.
          const digits = end - i - (c === 0x2d ? 1 : 0);
          if (integer && digits >= 16 && !Number.isSafeInteger(Number(text.slice(i, end)))) {
            return {
              code: 'VOLLEY_INPUT_JSON_UNSAFE_INTEGER',
              detail: `${fieldLabel(text, i)}integer ${text.slice(i, Math.min(end, i + 40))} is beyond 2^53 - 1 and would lose precision; quote it as a string`,
              index: i,
            };
          }
          // Only an exponent or over 308 digits can leave the double range (1.8e308).
          if (
            !integer &&
            (exponent || digits > 308) &&
            !Number.isFinite(Number(text.slice(i, end)))
          ) {
            return {
              code: 'VOLLEY_INPUT_JSON_NUMBER_OUT_OF_RANGE',
              detail: `${fieldLabel(text, i)}number ${text.slice(i, Math.min(end, i + 40))} is beyond the largest double (about 1.8e308) and would be sent as null; use a smaller number`,
              index: i,
            };
          }
          i = end;
          continue;
        }
    }
    i++;
  }
  return undefined;
}

/**
 * A cheap proof that the full scan would find nothing, from the value `JSON.parse` made of `text`:
 * true only when no key is `__proto__`/`constructor`, nothing nests deeper than
 * {@link MAX_JSON_DEPTH}, every number's magnitude is below 2^53 (a rounded integer or a literal
 * beyond the double range parses to 2^53 or more) and the parsed objects hold as many keys as the
 * text has key-colons. Every key of the text is followed by exactly one `"`, optional whitespace
 * and `:`; other such colons can only sit inside strings and add to the text's count, while each
 * duplicate key (kept once by `JSON.parse`) takes one away from the objects' count, so equal counts
 * prove there is no duplicate. False is no verdict: the caller runs the full scan, which names the
 * problem. It walks values, not characters, and allocates nothing; on the benchmark's chat line it
 * replaces a scan that sliced every key (2.3-3.0% of `volley run`'s main thread, issue 12).
 */
function provedClean(text: string, value: unknown): boolean {
  const keys = countKeys(value, 1);
  return keys >= 0 && keys === countKeyColons(text);
}

const UNSAFE_MAGNITUDE = 2 ** 53;

/** Keys in `value` and everything it holds, or -1 if anything needs the full scan. */
function countKeys(value: unknown, depth: number): number {
  if (typeof value === 'number') return Math.abs(value) < UNSAFE_MAGNITUDE ? 0 : -1;
  if (typeof value !== 'object' || value === null) return 0;
  if (depth > MAX_JSON_DEPTH) return -1;
  let keys = 0;
  if (Array.isArray(value)) {
    for (const item of value) {
      const inner = countKeys(item, depth + 1);
      if (inner < 0) return -1;
      keys += inner;
    }
    return keys;
  }
  const obj = value as Record<string, unknown>;
  // JSON.parse makes plain objects whose keys are all own and enumerable.
  for (const key in obj) {
    if (key === '__proto__' || key === 'constructor') return -1;
    const inner = countKeys(obj[key], depth + 1);
    if (inner < 0) return -1;
    keys += inner + 1;
  }
  return keys;
}

/** Colons preceded, across JSON whitespace, by a quote: every key's, and any inside strings. */
function countKeyColons(text: string): number {
  let count = 0;
  for (let i = text.indexOf(':'); i !== -1; i = text.indexOf(':', i + 1)) {
    let k = i - 1;
    let c = text.charCodeAt(k);
    while (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) c = text.charCodeAt(--k);
    if (c === 0x22 /* " */) count++;
  }
  return count;
}

/** `"body.temperature": ` for the value starting at `index`, or nothing at the top level. */
function fieldLabel(text: string, index: number): string {
  const path = jsonPathAt(text, index);
  return path === '' ? '' : `${makeSnippet(JSON.stringify(path)).slice(0, 80)}: `;
}

/**
 * The path (`body.messages[0].content`) of the value that starts at `index` in valid JSON text:
 * one linear pass, run only to describe a problem already found.
 */
export function jsonPathAt(text: string, index: number): string {
  // One entry per open container: the current key (objects) or element number (arrays).
  const frames: Array<{ key: string } | { element: number }> = [];
  let expectKey = false;
  let i = 0;
  while (i < index) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = text.indexOf('"', i + 1);
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf('"', end + 1);
      if (end === -1) break;
      const frame = frames[frames.length - 1];
      if (expectKey && frame !== undefined && 'key' in frame) {
        frame.key = JSON.parse(text.slice(i, end + 1)) as string;
        expectKey = false;
      }
      i = end + 1;
      continue;
    }
    const frame = frames[frames.length - 1];
    if (c === 0x7b /* { */) {
      frames.push({ key: '' });
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      frames.push({ element: 0 });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
    } else if (c === 0x2c /* , */ && frame !== undefined) {
      if ('key' in frame) expectKey = true;
      else frame.element++;
    }
    i++;
  }
  let path = '';
  for (const frame of frames) {
    if ('element' in frame) path += `[${frame.element}]`;
    else path += path === '' ? frame.key : `.${frame.key}`;
  }
  return path;
}

/** Adds `key` to the current object's frame; true if it was already there. */
function addKey(
  frames: Array<string[] | Set<string> | null>,
  frame: string[] | Set<string>,
  key: string,
): boolean {
  if (Array.isArray(frame)) {
    if (frame.includes(key)) return true;
    if (frame.length < SMALL_OBJECT_KEYS) {
      frame.push(key);
      return false;
    }
    const set = new Set(frame);
    set.add(key);
    frames[frames.length - 1] = set;
    return false;
  }
  if (frame.has(key)) return true;
  frame.add(key);
  return false;
}

/** True if the quote at `index` is preceded by an odd number of backslashes. */
function isEscaped(text: string, index: number): boolean {
  let k = index - 1;
  while (k >= 0 && text.charCodeAt(k) === 0x5c) k--;
  return (index - 1 - k) % 2 === 1;
}
