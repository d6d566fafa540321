/**
 * Text that came from input files or model output, made safe to show: escaping for a terminal,
 * the test for unsafe characters (also used to refuse unsafe `custom_id`s) and short snippets for
 * issue messages. The parser and the terminal display both depend on this module, never on each
 * other.
 */

// C0, DEL, C1, the line/paragraph separators and the bidi overrides/isolates (which can reorder
// what a terminal shows: "Trojan Source"), plus lone surrogates, which are not text.
const UNSAFE_TEXT =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const UNSAFE_TEXT_TEST = new RegExp(UNSAFE_TEXT.source);
const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Makes text from model output or input files safe to print on a terminal: control characters,
 * C1 codes, U+2028/U+2029, bidi controls and lone surrogates become visible escapes (`\n`, `\x1b`,
 * `\u202e`). Everything else, including non-ASCII letters and emoji, is kept.
 *
 * @example
 * escapeForTerminal('ok\x1b[2J') // 'ok\\x1b[2J'
 */
export function escapeForTerminal(text: string): string {
  return text.replace(UNSAFE_TEXT, (ch) => {
    const named = NAMED_ESCAPES[ch];
    if (named !== undefined) return named;
    const code = ch.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * True if {@link escapeForTerminal} would change the text: it holds control, C1, bidi or
 * line-separator characters, or lone surrogates. Used to refuse unsafe `custom_id`s.
 */
export function hasUnsafeTextChars(text: string): boolean {
  return UNSAFE_TEXT_TEST.test(text);
}

/** Longest snippet, in characters after escaping. */
const SNIPPET_CHARS = 80;

/**
 * Up to 80 characters of text for an issue, control characters escaped, `…` marking a cut.
 * `from` is a character index; a snippet that does not start at 0 begins with `…`.
 */
export function makeSnippet(text: string, from = 0): string {
  const start = Math.max(0, Math.min(from, text.length));
  const prefix = start > 0 ? '\u2026' : '';
  // Escaping only lengthens text, so 81 source characters are enough to fill 80 (or cut).
  const window = text.slice(start, start + SNIPPET_CHARS + 1);
  const pieces: string[] = [];
  let length = prefix.length;
  let cut = start + window.length < text.length;
  for (const ch of window) {
    const piece = escapeForTerminal(ch);
    if (length + piece.length > SNIPPET_CHARS) {
      cut = true;
      break;
    }
    pieces.push(piece);
    length += piece.length;
  }
  if (cut) {
    // Make room for the ellipsis by dropping whole pieces: never half an escape or a surrogate.
    while (pieces.length > 0 && length + 1 > SNIPPET_CHARS) length -= pieces.pop()?.length ?? 0;
    return `${prefix}${pieces.join('')}\u2026`;
  }
  return prefix + pieces.join('');
}
