import { describe, expect, it } from 'vitest';
import { loadPriceTable } from '../src/run/prices.js';
import { useTempDir, writeTemp } from './helpers/temp-files.js';

const tempDir = useTempDir();

describe('loadPriceTable', () => {
  it('is undefined without prices', async () => {
    expect(await loadPriceTable({})).toBeUndefined();
  });

  it('prices every model from the flags, in USD per million tokens', async () => {
    const prices = await loadPriceTable({ priceInput: 0.15, priceOutput: 0.6 });
    expect(prices?.cost('any', 1_000_000, 500_000)).toBeCloseTo(0.45, 10);
  });

  it('reads a table with a fallback, the flags overriding the fallback', async () => {
    const path = await writeTemp(
      await tempDir(),
      'prices.json',
      JSON.stringify({ small: { input: 1, output: 2 }, '*': { input: 10, output: 20 } }),
    );
    const prices = await loadPriceTable({ pricesFile: path, priceOutput: 30 });
    expect(prices?.cost('small', 1e6, 1e6)).toBe(3);
    expect(prices?.cost('other', 1e6, 1e6)).toBe(40);
  });

  it('refuses a malformed table with VOLLEY_ERR_PRICES_INVALID', async () => {
    const dir = await tempDir();
    for (const content of [
      'not json',
      '[]',
      '{"m":{"input":-1,"output":1}}',
      '{"m":{"input":1}}',
    ]) {
      const path = await writeTemp(dir, 'p.json', content);
      await expect(loadPriceTable({ pricesFile: path })).rejects.toMatchObject({
        code: 'VOLLEY_ERR_PRICES_INVALID',
        exitCode: 2,
      });
    }
  });
});
