/** A mistyped command line is refused in one line that names the fix and where to read more. */
import { describe, expect, it } from 'vitest';
import { usageLine } from '../src/help.js';

describe('usageLine', () => {
  it("joins commander's suggestion into the one line", () => {
    expect(
      usageLine(
        "error: unknown option '--concurency'\n(Did you mean --concurrency?)",
        'volley run',
      ),
    ).toBe(
      "volley: unknown option '--concurency' (did you mean --concurrency?); see volley run --help",
    );
  });

  it('points a flag other tools have to what Volley reads instead', () => {
    expect(usageLine("error: unknown option '--api-key'", 'volley run')).toBe(
      "volley: unknown option '--api-key' (set OPENAI_API_KEY instead); see volley run --help",
    );
  });

  it("drops commander's final full stop before the pointer", () => {
    expect(
      usageLine(
        "error: option '--order <order>' argument 'x' is invalid. Allowed choices are completion, input.",
        'volley run',
      ),
    ).toBe(
      "volley: option '--order <order>' argument 'x' is invalid. Allowed choices are completion, input; see volley run --help",
    );
  });
});
