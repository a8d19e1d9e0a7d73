import { RsError } from '@rs/core';
import { queueChart } from './specs-queue';
import { countsChart, currentGraphChart, exitChart, expertCharts, growthChart, journalGraphCharts, searchChart, sparsityChart, widthsChart, type ReportChart } from './specs';
import type { ReportData } from './types';

/** The JavaScript sources of the charting libraries, inlined into the page (UMD builds). */
export interface VegaLibraries {
  /** `vega/build/vega.min.js` */
  vega: string;
  /** `vega-lite/build/vega-lite.min.js` */
  vegaLite: string;
  /** `vega-embed/build/vega-embed.min.js` */
  vegaEmbed: string;
}

function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** JSON that is safe inside a `<script>` element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** A library source that is safe inside a `<script>` element (`</script` can only occur in strings or regexes). */
function scriptSource(source: string, name: string): string {
  if (typeof source !== 'string' || source.length === 0) throw new RsError('INVALID_ARGUMENT', `renderReport: the ${name} library source is empty.`);
  return source.replace(/<\/script/gi, '<\\/script').replace(/<!--/g, '<\\!--');
}

const fmt = (n: number): string => n.toLocaleString('en-US');

function chartDiv(chart: ReportChart): string {
  return `<div class="chart" id="chart-${chart.id}" data-section="${chart.section}"></div>`;
}

function noData(reason: string | undefined): string {
  return `<p class="nodata">No data: ${escapeHtml(reason ?? 'nothing to show')}.</p>`;
}

function summaryTable(data: ReportData): string {
  const m = data.model;
  const rows: [string, string][] = [
    ['inputs', m.inputs.map((i) => `${i.id} [${i.shape.map((d) => (d === null ? 'batch' : d)).join(', ')}]`).join('; ')],
    ['outputs', m.outputs.join(', ')],
    ['nodes', fmt(m.nodes)],
    ['parameters', fmt(m.params)],
    ['non-zero parameters', `${fmt(m.nonzeroParams)} (${m.params > 0 ? ((100 * m.nonzeroParams) / m.params).toFixed(1) : '0'}%)`],
    ['FLOPs per sample', fmt(m.flops)],
    ['journal entries', fmt(data.journal.length)],
  ];
  return `<table class="summary">${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>`;
}

function change(before: number, after: number): string {
  const d = after - before;
  return `${fmt(before)} → ${fmt(after)}${d === 0 ? '' : ` <span class="${d < 0 ? 'down' : 'up'}">(${d > 0 ? '+' : ''}${fmt(d)})</span>`}`;
}

function journalTable(data: ReportData): string {
  const rows = data.journal.map((e) => {
    const shown = e.changes.slice(0, 6).map((c) => `<li><code>${escapeHtml(c.kind)}</code> ${escapeHtml(c.target)}: ${escapeHtml(c.summary)}</li>`);
    if (e.changes.length > 6) shown.push(`<li>… and ${e.changes.length - 6} more</li>`);
    return `<tr><td>${e.seq}</td><td>${escapeHtml(e.technique)}</td><td>${escapeHtml(e.reason)}</td><td><ul>${shown.join('')}</ul></td><td>${change(e.params.before, e.params.after)}</td><td>${change(e.nonzeroParams.before, e.nonzeroParams.after)}</td><td>${change(e.flops.before, e.flops.after)}</td></tr>`;
  });
  return `<table class="journal"><thead><tr><th>#</th><th>technique</th><th>reason</th><th>changes</th><th>parameters</th><th>non-zero</th><th>FLOPs</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:0;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:18px;margin:34px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:18px 0 4px}
.meta{color:#666;font-size:12px}.nodata{color:#8a6d00;background:#fff8e1;border:1px solid #f0e0a0;padding:6px 10px;border-radius:4px}
.note{color:#555;font-size:12.5px}.chart{margin:8px 0 4px;overflow-x:auto;background:#fff;border:1px solid #e6e6e6;border-radius:4px;padding:6px}
table{border-collapse:collapse;font-size:12.5px;background:#fff}th,td{border:1px solid #e1e1e1;padding:4px 7px;text-align:left;vertical-align:top}
table.summary th{background:#f3f3f3;font-weight:600}table.journal ul{margin:0;padding-left:16px}
.down{color:#b3261e}.up{color:#1b7f2a}code{font-size:12px;background:#f1f1f1;padding:0 3px;border-radius:3px}
details{margin:4px 0}summary{cursor:pointer;color:#444}
`;

/**
 * Renders report data as one self-contained HTML page: the charting libraries are inlined from
 * `libraries`, the data and chart specs are embedded, and a Content-Security-Policy forbids every
 * network request. Works anywhere (browser or Node); `@rs/report/node`'s `renderReport` reads the
 * libraries from node_modules for you.
 *
 * @example
 * const html = renderReportHtml(collectReport(model), { vega, vegaLite, vegaEmbed });
 */
export function renderReportHtml(data: ReportData, libraries: VegaLibraries): string {
  if (!data || data.version !== 1 || !Array.isArray(data.journal) || !data.graphs || !Array.isArray(data.graphs.snapshots)) {
    throw new RsError('INVALID_ARGUMENT', 'renderReport: data must be the result of collectReport (version 1).');
  }
  if (!libraries || typeof libraries !== 'object') throw new RsError('INVALID_ARGUMENT', 'renderReport: libraries { vega, vegaLite, vegaEmbed } are required.');
  const charts: ReportChart[] = [];
  const add = (chart: ReportChart | undefined): string => {
    if (!chart) return '';
    charts.push(chart);
    return chartDiv(chart);
  };
  const sections: string[] = [];

  // 1. Structure over the journal.
  const graphParts: string[] = [];
  if (data.journal.length === 0) {
    graphParts.push('<p class="note">The journal is empty: the model has not been reorganized. Its current graph:</p>', add(currentGraphChart(data)));
  } else {
    graphParts.push(
      '<p class="note">Each node is drawn on its layer (depth from the inputs); the symbol area is the node\'s units (last axis of its output), the color says what the entry changed. ' +
        'The journal stores changes, not graph snapshots: every graph before the current one is <strong>reconstructed</strong> by undoing the recorded changes from the current graph backwards. ' +
        'Diamonds mark nodes whose edges or attributes the journal does not record (drawn as well as the records allow); <code>?</code> marks an unknown width.</p>',
    );
    if (data.graphs.notes.length > 0) {
      graphParts.push(`<details><summary>Reconstruction notes (${data.graphs.notes.length})</summary><ul class="note">${data.graphs.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul></details>`);
    }
    for (const item of journalGraphCharts(data)) {
      const entry = data.journal.find((e) => e.seq === item.seq) as ReportData['journal'][number];
      graphParts.push(`<h3>#${entry.seq} ${escapeHtml(entry.technique)}: ${escapeHtml(entry.reason)}</h3>`);
      graphParts.push(item.chart ? add(item.chart) : '<p class="note">Structure unchanged (masks, values, trainability or annotations only).</p>');
    }
    graphParts.push('<h3>Units of every node after every step</h3>', add(widthsChart(data)));
    graphParts.push('<h3>Parameters and FLOPs over the journal</h3>', add(countsChart(data)));
    graphParts.push('<h3>Journal</h3>', journalTable(data));
  }
  sections.push(`<section id="structure"><h2>Structure and journal</h2>${graphParts.join('\n')}</section>`);

  // 2. Sparsity.
  const sp = data.sparsity;
  const sparsity = sparsityChart(data);
  sections.push(
    `<section id="sparsity"><h2>Per-layer sparsity</h2>${
      sparsity
        ? `<p class="note">Fraction of each weight parameter's elements whose mask is 0 (read from the masks). Overall: ${fmt(sp.totalZeros)} of ${fmt(sp.totalSize)} weights (${((100 * sp.totalZeros) / Math.max(1, sp.totalSize)).toFixed(1)}%).</p>${add(sparsity)}`
        : noData(sp.reason)
    }</section>`,
  );

  // 3. Expert load.
  const experts = expertCharts(data);
  sections.push(
    `<section id="experts"><h2>Expert load</h2>${
      experts.length > 0
        ? `<p class="note">Measured on the given data in inference mode: fraction of tokens whose first choice is each expert; the dashed line is a uniform load.</p>${experts.map(add).join('')}${data.expertLoad.reason ? noData(data.expertLoad.reason) : ''}`
        : noData(data.expertLoad.reason)
    }</section>`,
  );

  // 4. Exit rates.
  const rates = data.exits.rates;
  const exit = exitChart(data);
  sections.push(
    `<section id="exits"><h2>Exit rates</h2>${
      rates && exit
        ? `<p class="note">${fmt(rates.rows)} rows, rule <code>${rates.rule}</code>, thresholds [${rates.thresholds.map((t) => Number(t.toPrecision(4))).join(', ')}] (from ${rates.policySource === 'model' ? 'the policy stored in the model' : 'the options'}).${
            rates.accuracy !== undefined ? ` Accuracy with early exit ${(100 * rates.accuracy).toFixed(2)}%, final exit alone ${(100 * (rates.finalAccuracy as number)).toFixed(2)}%.` : ''
          }</p>${add(exit)}`
        : noData(data.exits.reason)
    }</section>`,
  );

  // 5. Growth.
  const growth = growthChart(data);
  const inserted = data.growth.insertedNodes;
  sections.push(
    `<section id="growth"><h2>Growth history</h2>${
      growth || inserted.length > 0
        ? `${growth ? `<p class="note">Units of each group changed by <code>grow</code> entries, after each journal step.</p>${add(growth)}` : ''}${
            inserted.length > 0 ? `<h3>Nodes inserted by growth</h3><ul>${inserted.map((n) => `<li>#${n.seq} <code>${escapeHtml(n.node)}</code>: ${escapeHtml(n.summary)}</li>`).join('')}</ul>` : ''
          }`
        : noData(data.growth.reason)
    }</section>`,
  );

  // 6. Search.
  const search = searchChart(data);
  sections.push(
    `<section id="search"><h2>Search anytime curves</h2>${
      search
        ? `<p class="note">Dots: every evaluated architecture; lines: best validation so far${data.search.curves.some((c) => c.anytime.some((p) => p.bestTest !== undefined)) ? ' (dashed: test score of that architecture, reported, never searched on)' : ''}. Best: ${data.search.curves
            .map((c) => `${escapeHtml(c.name)} ${c.best.validation}${c.best.encoded ? ` <code>${escapeHtml(c.best.encoded)}</code>` : ''} at evaluation ${c.best.evaluation}`)
            .join('; ')}.</p>${add(search)}`
        : noData(data.search.reason)
    }</section>`,
  );

  // 7. Queue (a search on @rs/nas-queue): trials over time per worker.
  const queue = queueChart(data);
  if (queue) {
    const timeline = data.search.curves.flatMap((c) => c.timeline ?? []);
    const workers = new Set(data.search.curves.flatMap((c) => (c.timeline ?? []).map((t) => `${c.name}/${t.worker}`))).size;
    const retried = timeline.filter((t) => t.attempt > 1).length;
    const failed = timeline.filter((t) => t.failed).length;
    const fidelities = [...new Set(timeline.flatMap((t) => (t.fidelity !== undefined ? [t.fidelity] : [])))].sort((a, b) => a - b);
    const rungs = fidelities.length > 1 ? ` Trials per fidelity: ${fidelities.map((f) => `${f}: ${timeline.filter((t) => t.fidelity === f).length}`).join(', ')} (above the lowest: promotions).` : '';
    sections.push(
      `<section id="queue"><h2>Queue search: trials over time per worker</h2><p class="note">${timeline.length} trials on ${workers} workers; ${retried} retried after their worker died (black outline); ${failed} failed (red).${rungs}</p>${add(queue)}</section>`,
    );
  }

  const specs = charts.map((c) => ({ id: c.id, spec: c.spec }));
  const csp = "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(data.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(data.title)}</h1>
<p class="meta">Generated ${escapeHtml(data.generated)} by @rs/report. Every number is read from the model or measured on the data given; sections without data say so.</p>
${summaryTable(data)}
${sections.join('\n')}
</main>
<script id="rs-report-data" type="application/json">${scriptJson(data)}</script>
<script id="rs-report-specs" type="application/json">${scriptJson(specs)}</script>
<script>${scriptSource(libraries.vega, 'vega')}</script>
<script>${scriptSource(libraries.vegaLite, 'vega-lite')}</script>
<script>${scriptSource(libraries.vegaEmbed, 'vega-embed')}</script>
<script>
(function () {
  var specs = JSON.parse(document.getElementById('rs-report-specs').textContent);
  var options = { renderer: 'svg', actions: { export: true, source: false, compiled: false, editor: false } };
  Promise.all(specs.map(function (s) { return vegaEmbed("#chart-" + s.id, s.spec, options); })).then(
    function () { document.body.setAttribute('data-charts', 'ready'); },
    function (error) { document.body.setAttribute('data-charts', 'error'); console.error(error); }
  );
})();
</script>
</body>
</html>
`;
}
