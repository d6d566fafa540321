/**
 * Estimated cost: prices in US dollars per million tokens, from `--price-input`/`--price-output`
 * (every model) or a JSON table (`--prices prices.json`):
 *
 *   { "gpt-4o-mini": { "input": 0.15, "output": 0.60 }, "*": { "input": 1, "output": 2 } }
 *
 * `"*"` is the fallback for models the table does not name; the flags set `"*"` and win over the
 * file's. Costs are computed from each response's `usage` (and, for `--dry-run`, from estimates),
 * so they are estimates: cached-input discounts and batch discounts are not modelled.
 */

import { readFile } from 'node:fs/promises';
import { CliError, ExitCode } from '../exit-codes.js';

/** Input and output prices of one model, USD per million tokens. */
export interface ModelPrice {
  input: number;
  output: number;
}

/** A loaded price table. */
export interface PriceTable {
  /** Cost in USD, or undefined when no price applies to `model`. */
  cost(model: string, promptTokens: number, completionTokens: number): number | undefined;
}

/** Options of {@link loadPriceTable}. */
export interface PriceOptions {
  priceInput?: number | undefined;
  priceOutput?: number | undefined;
  pricesFile?: string | undefined;
}

/**
 * Builds the price table, or undefined when no price is configured. A malformed file is a usage
 * error (`VOLLEY_ERR_PRICES_INVALID`, exit 2).
 *
 * @example
 * const prices = await loadPriceTable({ priceInput: 0.15, priceOutput: 0.6 });
 * prices?.cost('gpt-4o-mini', 1000, 200); // 0.00027
 */
export async function loadPriceTable(options: PriceOptions): Promise<PriceTable | undefined> {
  const table = new Map<string, ModelPrice>();
  if (options.pricesFile !== undefined) {
    const invalid = (detail: string): CliError =>
      new CliError(
        `--prices ${JSON.stringify(options.pricesFile)}: ${detail}`,
        ExitCode.USAGE,
        'VOLLEY_ERR_PRICES_INVALID',
      );
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(options.pricesFile, 'utf8'));
    } catch (error) {
      throw invalid(error instanceof SyntaxError ? 'not valid JSON' : (error as Error).message);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw invalid('expected an object of model names to {"input": n, "output": n}');
    }
    for (const [model, price] of Object.entries(parsed)) {
      const p = price as Partial<ModelPrice> | null;
      if (typeof p !== 'object' || p === null || !isPrice(p.input) || !isPrice(p.output)) {
        throw invalid(
          `${JSON.stringify(model)} needs "input" and "output" prices (USD per million tokens, >= 0)`,
        );
      }
      table.set(model, { input: p.input, output: p.output });
    }
  }
  if (options.priceInput !== undefined || options.priceOutput !== undefined) {
    const fallback = table.get('*');
    table.set('*', {
      input: options.priceInput ?? fallback?.input ?? 0,
      output: options.priceOutput ?? fallback?.output ?? 0,
    });
  }
  if (table.size === 0) return undefined;
  return {
    cost(model, promptTokens, completionTokens) {
      const price = table.get(model) ?? table.get('*');
      if (price === undefined) return undefined;
      return (promptTokens * price.input + completionTokens * price.output) / 1_000_000;
    },
  };
}

function isPrice(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}
