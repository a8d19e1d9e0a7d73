import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inflateSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { isRsError } from '@rs/core';
import { leakedTensors } from '@rs/core/testing';
import { install } from '@rs/backend-cpu';
import { register as registerMoe } from '@rs/moe';
import { register as registerDynamic } from '@rs/dynamic';
import { collectReport, renderReportHtml, type ReportData } from './index';
import { renderReport, readVegaLibraries } from './node';
import { buildExample, type Example } from '../test/example-model';

/** Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes) into RGBA pixels. */
function decodePng(png: Buffer): { width: number; height: number; rgba: Uint8Array } {
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  let at = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat: Buffer[] = [];
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString('latin1');
    const body = png.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      expect(body[8]).toBe(8); // bit depth
      colorType = body[9];
      expect(body[12]).toBe(0); // not interlaced
    } else if (type === 'IDAT') idat.push(body);
    at += 12 + length;
  }
  const channels = colorType === 6 ? 4 : colorType === 2 ? 3 : 0;
  expect(channels).toBeGreaterThan(0);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let row = 0; row < height; row++) {
    const filter = raw[row * (stride + 1)];
    const line = raw.subarray(row * (stride + 1) + 1, (row + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const left = i >= channels ? pixels[row * stride + i - channels] : 0;
      const up = row > 0 ? pixels[(row - 1) * stride + i] : 0;
      const upLeft = row > 0 && i >= channels ? pixels[(row - 1) * stride + i - channels] : 0;
      let predictor = 0;
      if (filter === 1) predictor = left;
      else if (filter === 2) predictor = up;
      else if (filter === 3) predictor = (left + up) >> 1;
      else if (filter === 4) {
        const p = left + up - upLeft;
        const pa = Math.abs(p - left);
        const pb = Math.abs(p - up);
        const pc = Math.abs(p - upLeft);
        predictor = pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
      }
      pixels[row * stride + i] = (line[i] + predictor) & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) rgba[p * 4 + c] = pixels[p * channels + c];
    rgba[p * 4 + 3] = channels === 4 ? pixels[p * channels + 3] : 255;
  }
  return { width, height, rgba };
}

/** Fractions of pixels that are not (near) white, and that are clearly colored (chart marks, not gray text). */
function inkOf(image: { width: number; height: number; rgba: Uint8Array }): { ink: number; color: number } {
  let ink = 0;
  let color = 0;
  const n = image.width * image.height;
  for (let p = 0; p < n; p++) {
    const [r, g, b] = [image.rgba[p * 4], image.rgba[p * 4 + 1], image.rgba[p * 4 + 2]];
    if (r < 235 || g < 235 || b < 235) ink++;
    if (Math.max(r, g, b) - Math.min(r, g, b) > 60) color++;
  }
  return { ink: ink / n, color: color / n };
}

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let browser: Browser;
let example: Example;
let data: ReportData;
const dir = mkdtempSync(join(tmpdir(), 'rs-report-'));

beforeAll(async () => {
  await install();
  [browser, example] = await Promise.all([chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS }), buildExample({ train: Boolean(process.env.RS_REPORT_EXAMPLE_PNG) })]);
  data = collectReport(example.model, { title: 'Example: a reorganized MNIST model', data: { x: example.x, y: example.y }, search: example.searches });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  example?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Opens `html` from a file; returns what a reader would see, plus every request and console error. */
async function open(html: string, screenshot?: string) {
  const file = join(dir, `report-${Math.random().toString(36).slice(2)}.html`);
  writeFileSync(file, html);
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith('file:') && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) requests.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('body[data-charts]', { timeout: 15_000 });
  const state = await page.getAttribute('body', 'data-charts');
  // Per chart container: data marks drawn by Vega (items inside `role-mark` groups), not axes or legends.
  const charts = await page.$$eval('.chart', (divs) =>
    divs.map((d) => ({
      id: d.id,
      svgs: d.querySelectorAll('svg').length,
      marks: d.querySelectorAll('svg g.role-mark > path, svg g.role-mark > line, svg g.role-mark > text, svg g.role-mark > rect').length,
      bars: d.querySelectorAll('svg g.mark-rect.role-mark > path').length,
      symbols: d.querySelectorAll('svg g.mark-symbol.role-mark > path').length,
    })),
  );
  const sections = await page.$$eval('section', (list) => list.map((s) => ({ id: s.id, nodata: s.querySelector('.nodata')?.textContent ?? null })));
  const png = await page.screenshot({ fullPage: true, ...(screenshot ? { path: screenshot } : {}) });
  await page.close();
  return { state, charts, sections, requests, errors, png };
}

describe('report page in headless Chromium', () => {
  it('draws every chart of a full report (SVG marks in every container), makes no request, logs no error, and the screenshot shows charts', async () => {
    const html = renderReport(data);
    expect(html.length).toBeGreaterThan(800_000); // vega + vega-lite + vega-embed are inlined
    expect(html).not.toMatch(/<script[^>]+src=/);
    const target = process.env.RS_REPORT_EXAMPLE_PNG ? resolve(process.env.RS_REPORT_EXAMPLE_PNG) : undefined;
    const page = await open(html, target);
    expect(page.errors).toEqual([]);
    expect(page.requests).toEqual([]);
    expect(page.state).toBe('ready');
    // Expected charts: one graph per structural journal entry (setExitPolicy only annotates),
    // widths, counts, sparsity, one expert-load chart (one moe layer), exits, growth, search.
    const structural = data.journal.filter((e) => e.technique !== 'dynamic' || e.changes.some((c) => c.kind !== 'setMeta'));
    const masksOnly = data.journal.filter((e) => e.changes.every((c) => c.kind === 'setMask'));
    expect(page.charts.map((c) => c.id)).toEqual([
      ...structural.filter((e) => !masksOnly.includes(e)).map((e) => `chart-graph-${e.seq}`),
      ...['widths', 'counts', 'sparsity', 'experts-0', 'exits', 'growth', 'search'].map((id) => `chart-${id}`),
    ]);
    for (const chart of page.charts) {
      expect(chart.svgs, chart.id).toBeGreaterThanOrEqual(1);
      expect(chart.marks, chart.id).toBeGreaterThanOrEqual(3);
    }
    const chart = (id: string) => page.charts.find((c) => c.id === `chart-${id}`) as (typeof page.charts)[number];
    // Marks match the data: one bar per weight parameter, per expert, per exit; one symbol per
    // node of the before and after panels; points of the growth series and of every trial.
    expect(chart('sparsity').bars).toBe(data.sparsity.rows.length);
    expect(chart('experts-0').bars).toBe(data.expertLoad.layers[0].experts);
    expect(chart('exits').bars).toBe(data.exits.rates?.exits.length);
    const last = data.journal[data.journal.length - 2]; // addExit (the last entry only stores the policy)
    expect(chart(`graph-${last.seq}`).symbols).toBe(data.graphs.snapshots[last.seq - 1].nodes.length + data.graphs.snapshots[last.seq].nodes.length);
    expect(chart('growth').symbols).toBe(data.growth.series.reduce((a, s) => a + s.points.length, 0));
    expect(chart('search').symbols).toBe(data.search.curves.reduce((a, c) => a + c.trials.length, 0));
    expect(page.sections.map((s) => s.id)).toEqual(['structure', 'sparsity', 'experts', 'exits', 'growth', 'search']);
    expect(page.sections.every((s) => s.nodata === null)).toBe(true);
    const image = decodePng(page.png);
    expect(image.width).toBe(1280);
    expect(image.height).toBeGreaterThan(2000);
    const { ink, color } = inkOf(image);
    // A blank or text-only page has almost no colored pixels; the charts' bars, heatmap and points do.
    expect(ink).toBeGreaterThan(0.03);
    expect(color).toBeGreaterThan(0.005);
  });

  it('a model with no journal and no data renders its current graph and says "no data" for the other sections', async () => {
    const { Model, lenet300100, createOpRegistry } = await import('@rs/core');
    // The technique sections come from the packages registered in the model's registry.
    const model = Model.create(lenet300100({ hidden: [16, 8] }), { seed: 1, registry: registerDynamic(registerMoe(createOpRegistry())) });
    const bare = collectReport(model);
    model.dispose();
    const page = await open(renderReport(bare));
    expect(page.errors).toEqual([]);
    expect(page.requests).toEqual([]);
    expect(page.charts.map((c) => c.id)).toEqual(['chart-graph-current']);
    expect(page.charts[0].marks).toBeGreaterThan(3);
    const nodata = Object.fromEntries(page.sections.map((s) => [s.id, s.nodata]));
    expect(nodata.structure).toBeNull();
    expect(nodata.sparsity).toMatch(/no parameter has a mask/);
    expect(nodata.experts).toMatch(/no moe layer/);
    expect(nodata.exits).toMatch(/single output/);
    expect(nodata.growth).toMatch(/no journal entry of technique 'grow'/);
    expect(nodata.search).toMatch(/no search result/);
  });

  it('renderReport validates its input; the libraries come from this package\'s dependencies; rendering leaks nothing', async () => {
    const libraries = readVegaLibraries();
    expect(libraries.vega).toMatch(/vega/);
    expect(libraries.vegaEmbed).toContain('vegaEmbed');
    const version = (name: string) => (JSON.parse(readFileSync(join(__dirname, '..', 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    expect(libraries.vega).toContain(version('vega'));
    expect(() => renderReport({} as ReportData)).toThrow(/collectReport/);
    try {
      renderReportHtml(data, { vega: '', vegaLite: '', vegaEmbed: '' });
      throw new Error('expected an error');
    } catch (error) {
      expect(isRsError(error, 'INVALID_ARGUMENT')).toBe(true);
    }
    expect(await leakedTensors(() => renderReport(data))).toBe(0);
  });
});
