/**
 * The HTML report: one file that opens offline. uPlot (its minified script and stylesheet, read
 * from node_modules at report time) and the result itself are inlined; the page loads nothing
 * else, so it works from a mail attachment or an air-gapped machine (the complaint about reports
 * that need a network or a browser download: research/bench-anchors.md, "What users keep asking
 * for").
 *
 * Charts: latency percentile curves (TTFT, first chunk, TPOT, ITL per chunk, E2E, and TTFT and
 * E2E from the intended send time), throughput over time, TTFT over time, concurrency and schedule
 * lag over time, and for sweeps and SLO searches the throughput-latency curve with the knee (or
 * the SLO answer) marked. Each chart's container gets `data-drawn="1"` once uPlot has drawn it.
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { BenchDocument } from './document.js';
import { runsOf } from './document.js';

const require = createRequire(import.meta.url);

let uplotAssets: { script: string; style: string } | undefined;

function assets(): { script: string; style: string } {
  uplotAssets ??= {
    script: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    style: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return uplotAssets;
}

/** Series colours; the report test looks for the first one in every chart's canvas. */
export const CHART_COLORS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#8c564b',
  '#e377c2',
];

/** The charts a document gets, by id (the report test checks each is drawn). */
export function chartIds(doc: BenchDocument): string[] {
  const ids = [
    'latency-distribution',
    'throughput-over-time',
    'ttft-over-time',
    'concurrency-over-time',
  ];
  if (doc.kind !== 'run' && runsOf(doc).length >= 2) ids.push('throughput-latency');
  return ids;
}

/**
 * Renders the report.
 *
 * @example
 * await writeFile('report.html', renderHtmlReport(document));
 */
export function renderHtmlReport(doc: BenchDocument): string {
  const { script, style } = assets();
  // `<` escaped so no string in the data can close the script element.
  const data = JSON.stringify(slim(doc)).replace(/</g, '\\u003c');
  const title = `volley bench — ${escapeHtml(doc.label)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${title}</title>
<style>${style}</style>
<style>${PAGE_STYLE}</style>
</head>
<body>
<h1>${title}</h1>
<div id="meta"></div>
<div id="health"></div>
<div id="summary"></div>
<div id="charts"></div>
<div id="definitions">${DEFINITIONS}</div>
<script id="bench-data" type="application/json">${data}</script>
<script>${script}</script>
<script>window.CHART_COLORS = ${JSON.stringify(CHART_COLORS)};</script>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
}

/** The document without what the page does not draw (histograms, per-request rows). */
function slim(doc: BenchDocument): unknown {
  const strip = (run: Record<string, unknown>): Record<string, unknown> => {
    const { histograms: _h, requests: _r, ...rest } = run;
    return rest;
  };
  if (doc.kind === 'run') return strip(doc as unknown as Record<string, unknown>);
  return { ...doc, runs: doc.runs.map((r) => strip(r as unknown as Record<string, unknown>)) };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const PAGE_STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.bad { background: #fde2e2; border: 2px solid #d62728; padding: 10px 14px; margin: 12px 0; }
.good { background: #e3f5e1; border: 1px solid #2ca02c; padding: 8px 14px; margin: 12px 0; }
.chart { margin: 12px 0 28px; } .meta td { text-align: left; }
#definitions dt { font-weight: 600; margin-top: 6px; }
`;

const DEFINITIONS = `<h2>Definitions</h2><dl>
<dt>TTFT</dt><dd>From the request's send to the first SSE event that carries content (text, reasoning or a tool call). A role-only first chunk is not a token.</dd>
<dt>Time to first chunk</dt><dd>From the send to the first SSE event of any kind (what vLLM's chat benchmark calls TTFT).</dd>
<dt>TPOT</dt><dd>(E2E − TTFT) / (output tokens − 1), for requests with more than one token. vLLM's TPOT; GuideLLM and AIPerf call it ITL.</dd>
<dt>ITL per chunk</dt><dd>Every gap between two consecutive content events, pooled over requests (vLLM's ITL, AIPerf's inter-chunk latency).</dd>
<dt>E2E latency</dt><dd>From the send to the last content event (streams) or the end of the body.</dd>
<dt>From the intended time</dt><dd>The same latencies measured from when the load plan meant to send the request. When the client falls behind (a concurrency cap, a busy event loop), these grow and the actual-send ones do not: coordinated omission made visible.</dd>
<dt>Goodput</dt><dd>Requests per second that succeeded and met every SLO given; failed requests count against it.</dd>
<dt>Output tokens</dt><dd>From the server's usage; a sample is re-counted with gpt-tokenizer (o200k) and a disagreement beyond the tolerance is reported.</dd>
</dl>`;

const CLIENT_SCRIPT = `
(function () {
  var doc = JSON.parse(document.getElementById('bench-data').textContent);
  var colors = window.CHART_COLORS;
  var runs = doc.kind === 'run' ? [doc] : doc.runs;
  var knee = doc.sweep && doc.sweep.knee ? doc.sweep.knee.index : null;
  var focusIndex = knee !== null ? knee : runs.length - 1;
  if (doc.slo_search && doc.slo_search.best !== null) {
    for (var i = 0; i < doc.slo_search.probes.length; i++) if (doc.slo_search.probes[i].value === doc.slo_search.best) focusIndex = i;
  }
  var focus = runs[focusIndex];
  function el(tag, html, cls) { var e = document.createElement(tag); if (html !== undefined) e.innerHTML = html; if (cls) e.className = cls; return e; }
  function text(s) { return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); }
  function num(v, d) { return v === null || v === undefined ? '—' : (typeof v === 'number' ? v.toFixed(d === undefined ? 2 : d) : text(v)); }

  var meta = [['kind', doc.kind], ['base URL', doc.base_url + (doc.embedded_simulator ? ' (embedded simulator)' : '')], ['model', doc.model_id],
    ['endpoint', doc.endpoint_type], ['streaming', doc.streaming], ['dataset', JSON.stringify(doc.dataset)], ['threads', doc.threads],
    ['seed', doc.seed], ['date', doc.date], ['machine', doc.machine.cpu_model + ' x' + doc.machine.cpus + ', node ' + doc.machine.node]];
  var mt = '<table class="meta">' + meta.map(function (r) { return '<tr><td>' + r[0] + '</td><td>' + text(r[1]) + '</td></tr>'; }).join('') + '</table>';
  document.getElementById('meta').innerHTML = mt;

  var limited = runs.filter(function (r) { return r.client_health.client_limited; });
  var health = document.getElementById('health');
  if (limited.length > 0) {
    var items = limited.map(function (r) { return '<li><b>' + text(r.label) + '</b>: ' + r.client_health.reasons.map(text).join('; ') + '</li>'; }).join('');
    health.appendChild(el('div', '<b>CLIENT-LIMITED RESULT</b>: the load generator, not the server, limited ' + limited.length + ' of ' + runs.length + ' run(s). Treat their throughput and latency as the client\\'s, not the server\\'s.<ul>' + items + '</ul>', 'bad'));
  } else {
    health.appendChild(el('div', 'Client health: no run was limited by the load generator (schedule lag, dropped sends, CPU and event-loop delay within limits).', 'good'));
  }

  var cols = [['run', function (r) { return text(r.label); }], ['stop', function (r) { return r.stop_reason; }], ['ok', function (r) { return r.completed; }], ['failed', function (r) { return r.failed; }],
    ['req/s', function (r) { return num(r.request_throughput); }], ['goodput', function (r) { return num(r.request_goodput); }], ['out tok/s', function (r) { return num(r.output_throughput, 1); }],
    ['TTFT p50', function (r) { return num(r.metrics.ttft_ms.percentiles.p50); }], ['TTFT p99', function (r) { return num(r.metrics.ttft_ms.percentiles.p99); }],
    ['TPOT p50', function (r) { return num(r.metrics.tpot_ms.percentiles.p50); }], ['ITL p99', function (r) { return num(r.metrics.itl_per_chunk_ms.percentiles.p99); }],
    ['E2E p99', function (r) { return num(r.metrics.e2el_ms.percentiles.p99); }], ['E2E p99 (intended)', function (r) { return num(r.metrics.e2el_from_intended_ms.percentiles.p99); }],
    ['lag p99', function (r) { return num(r.metrics.schedule_lag_ms.percentiles.p99); }], ['client', function (r) { return r.client_health.client_limited ? '<b>LIMITED</b>' : 'ok'; }]];
  var st = '<h2>Summary (ms unless stated)</h2><table><tr>' + cols.map(function (c) { return '<th>' + c[0] + '</th>'; }).join('') + '</tr>' +
    runs.map(function (r, i) { return '<tr' + (i === focusIndex && runs.length > 1 ? ' style="font-weight:600"' : '') + '>' + cols.map(function (c) { return '<td>' + c[1](r) + '</td>'; }).join('') + '</tr>'; }).join('') + '</table>';
  if (doc.sweep) st += '<p>Knee: ' + (doc.sweep.knee ? 'at ' + doc.sweep.axis + ' ' + doc.sweep.knee.load + ' (' + num(doc.sweep.knee.request_throughput) + ' req/s)' : 'none found (the curve never bends)') + '</p>';
  if (doc.slo_search) st += '<p>SLO search (' + doc.slo_search.axis + '): highest passing ' + (doc.slo_search.best === null ? 'none' : doc.slo_search.best) + ', lowest failing ' + (doc.slo_search.lowestFailing === null ? 'none' : doc.slo_search.lowestFailing) + ', step ' + num(doc.slo_search.step) + '</p>';
  document.getElementById('summary').innerHTML = st;

  var charts = document.getElementById('charts');
  var drawn = 0;
  function chart(id, title, opts, data) {
    var box = el('div', undefined, 'chart'); box.id = id; box.appendChild(el('h2', text(title)));
    charts.appendChild(box);
    opts.width = Math.min(1100, window.innerWidth - 60); opts.height = 300;
    opts.hooks = { draw: [function () { box.setAttribute('data-drawn', '1'); drawn++; window.__benchChartsDrawn = drawn; }] };
    new uPlot(opts, data, box);
  }
  function series(label, i, extra) { var s = { label: label, stroke: colors[i % colors.length], width: 2, spanGaps: true }; if (extra) for (var k in extra) s[k] = extra[k]; return s; }
  var label = runs.length > 1 ? ' (' + focus.label + ')' : '';

  var dists = [['ttft_ms', 'TTFT'], ['first_chunk_ms', 'first chunk'], ['tpot_ms', 'TPOT'], ['itl_per_chunk_ms', 'ITL per chunk'], ['e2el_ms', 'E2E'], ['ttft_from_intended_ms', 'TTFT from intended'], ['e2el_from_intended_ms', 'E2E from intended']];
  var present = dists.filter(function (d) { return focus.curves[d[0]]; });
  var xs = (focus.curves[present.length ? present[0][0] : 'e2el_ms'] || []).map(function (p) { return p[0]; });
  var ldata = [xs].concat(present.map(function (d) { return focus.curves[d[0]].map(function (p) { return p[1]; }); }));
  chart('latency-distribution', 'Latency distributions, ms by percentile' + label,
    { scales: { x: { time: false } }, axes: [{ label: 'percentile' }, { label: 'ms' }], series: [{ label: 'percentile' }].concat(present.map(function (d, i) { return series(d[1], i); })) }, ldata);

  var ts = focus.timeseries;
  chart('throughput-over-time', 'Throughput over time' + label,
    { scales: { x: { time: false }, tok: {} }, axes: [{ label: 's' }, { label: 'req/s' }, { label: 'output tok/s', side: 1, scale: 'tok', grid: { show: false } }],
      series: [{ label: 's' }, series('requests/s', 0), series('output tokens/s', 1, { scale: 'tok' }), series('errors/s', 2)] },
    [ts.t_s, ts.requests_per_s, ts.output_tokens_per_s, ts.errors_per_s]);

  chart('ttft-over-time', 'TTFT over time (by send second), ms' + label,
    { scales: { x: { time: false } }, axes: [{ label: 's' }, { label: 'ms' }],
      series: [{ label: 's' }, series('TTFT mean', 0), series('TTFT max', 1), series('TTFT from intended, mean', 2, { dash: [6, 4] })] },
    [ts.t_s, ts.ttft_mean_ms, ts.ttft_max_ms, ts.ttft_from_intended_mean_ms]);

  chart('concurrency-over-time', 'Requests in flight and schedule lag over time' + label,
    { scales: { x: { time: false }, lag: {} }, axes: [{ label: 's' }, { label: 'in flight' }, { label: 'lag ms', side: 1, scale: 'lag', grid: { show: false } }],
      series: [{ label: 's' }, series('in flight (mean)', 0), series('schedule lag max, ms', 1, { scale: 'lag' })] },
    [ts.t_s, ts.concurrency_mean, ts.schedule_lag_max_ms]);

  if (doc.kind !== 'run' && runs.length >= 2) {
    var pts = runs.map(function (r, i) { return { x: r.request_throughput, p50: r.metrics.e2el_ms.percentiles.p50, p99: r.metrics.e2el_ms.percentiles.p99, i: i }; });
    pts.sort(function (a, b) { return a.x - b.x; });
    var mark = focusIndex;
    var kx = pts.map(function (p) { return p.x; });
    chart('throughput-latency', 'Throughput vs latency' + (doc.sweep ? (doc.sweep.knee ? ' (knee marked)' : '') : ' (SLO answer marked)'),
      { scales: { x: { time: false } }, axes: [{ label: 'requests/s' }, { label: 'E2E ms' }],
        series: [{ label: 'req/s' }, series('E2E p50', 0, { points: { show: true, size: 6 } }), series('E2E p99', 1, { points: { show: true, size: 6 } }),
          series(doc.sweep ? 'knee' : 'SLO answer', 2, { width: 0, points: { show: true, size: 16, fill: colors[2] } })] },
      [kx, pts.map(function (p) { return p.p50; }), pts.map(function (p) { return p.p99; }), pts.map(function (p) { return p.i === mark ? p.p99 : null; })]);
  }
})();
`;
