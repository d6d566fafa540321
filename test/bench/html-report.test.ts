/**
 * The HTML report opens offline: headless Chromium with every non-file request aborted (and
 * Chromium's own background networking off) renders each chart. A chart counts as drawn when its
 * canvas holds coloured pixels (the series), not just the grey axes and grid.
 */
import { writeFile } from 'node:fs/promises';
import type { BenchDocument, DocumentMeta } from '@volley/bench';
import {
  chartIds,
  createBenchmark,
  machineInfo,
  renderHtmlReport,
  runDocument,
  sweep,
  sweepDocument,
} from '@volley/bench';
import { createSimulator } from '@volley/sim';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { options, prompts } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--headless',
  '--disable-gpu',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

function meta(url: string): DocumentMeta {
  return {
    date: new Date().toISOString(),
    label: 'report-test',
    backend: 'openai-chat',
    endpoint_type: 'openai-chat',
    base_url: url,
    embedded_simulator: false,
    model_id: 'volley-sim-1',
    tokenizer_id: 'gpt-tokenizer (o200k_base)',
    dataset: { name: 'random' },
    streaming: true,
    seed: 0,
    threads: 1,
    num_warmups: 0,
    goodput_slos_ms: {},
    machine: machineInfo(),
  };
}

/** Per chart id: coloured pixels (series lines; axes and grid are grey) in its canvas. */
async function drawnPixels(
  file: string,
  ids: string[],
): Promise<{ counts: Record<string, number>; requests: string[]; screenshot: Buffer }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    await page.route('**/*', async (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      requests.push(url);
      return route.abort();
    });
    await page.goto(`file://${file}`);
    await page.waitForFunction(
      (n) => (globalThis as unknown as { __benchChartsDrawn?: number }).__benchChartsDrawn === n,
      ids.length,
      { timeout: 15_000 },
    );
    const screenshot = await page.screenshot({ fullPage: true });
    const counts = await page.evaluate(
      ({ ids }) => {
        // The page's DOM, typed by hand: the tests compile without the DOM library.
        type Canvas = {
          width: number;
          height: number;
          getContext(kind: '2d'): {
            getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
          };
        };
        const page = globalThis as unknown as {
          document: { querySelector(selector: string): Canvas | null };
        };
        const out: Record<string, number> = {};
        for (const id of ids) {
          const canvas = page.document.querySelector(`#${id} canvas`);
          if (canvas === null) {
            out[id] = -1;
            continue;
          }
          const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
          let n = 0;
          for (let i = 0; i < data.length; i += 4) {
            const r = data[i] as number;
            const g = data[i + 1] as number;
            const b = data[i + 2] as number;
            if ((data[i + 3] as number) > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
          }
          out[id] = n;
        }
        return out;
      },
      { ids },
    );
    return { counts, requests, screenshot };
  } finally {
    await browser.close();
  }
}

describe('volley bench HTML report', () => {
  it('renders every chart of a run and of a sweep in Chromium with the network disabled', async () => {
    await using dir = await tempDir();
    const sim = await createSimulator({ latency: { headersMs: 20, tokensPerSecond: 200 } });
    const bench = await createBenchmark(
      options(sim.url, await prompts(40, 12), { stop: { requests: 40 } }),
    );
    const docs: BenchDocument[] = [];
    try {
      docs.push(
        runDocument(meta(sim.url), await bench.run({ ratePerSecond: 40, arrival: 'poisson' })),
      );
      const outcome = await sweep(bench, 'concurrency', [1, 2, 4], {
        loadFor: (c) => ({ ratePerSecond: Infinity, arrival: 'constant', maxConcurrency: c }),
      });
      docs.push(sweepDocument(meta(sim.url), outcome));
    } finally {
      await bench.close();
      await sim.close();
    }
    for (const [i, doc] of docs.entries()) {
      const file = dir.file(`report-${i}.html`);
      const html = renderHtmlReport(doc);
      // Nothing to fetch: no http(s) URL in a src or href.
      expect(html).not.toMatch(/(src|href)=["']?https?:/);
      await writeFile(file, html);
      const ids = chartIds(doc);
      expect(ids.length).toBe(doc.kind === 'sweep' ? 5 : 4);
      const { counts, requests, screenshot } = await drawnPixels(file, ids);
      await writeFile(dir.file(`report-${i}.png`), screenshot);
      expect(requests).toEqual([]);
      for (const id of ids) expect(counts[id], `chart ${id}`).toBeGreaterThan(20);
    }
  }, 120_000);
});
