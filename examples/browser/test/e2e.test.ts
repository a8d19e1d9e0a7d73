// End to end: a model reorganized and saved in Node is loaded by the built page in headless
// Chromium, on the WASM backend, and classifies MNIST digits exactly as Node does (same class,
// same exit, logits within 1e-4); a digit drawn on the canvas with the mouse is classified too.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { tf, useBackend, loadFromBuffer, type Model } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm } from '@rs/backend-wasm';
import { earlyExitPredict } from '@rs/dynamic';
import { loadMnist } from '@rs/datasets';
import { makeModel } from '../scripts/make-model.mjs';
import type { Classification, ModelSummary } from '../src/model';

const root = fileURLToPath(new URL('..', import.meta.url));
const DIGITS = 200;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Debian's Chromium (CI installs it in .ci/run), or CHROMIUM_PATH. Never skipped. */
function chromiumPath(): string {
  const candidates = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `The browser test needs Chromium and found none at ${candidates.join(', ')}: install it with \`sudo apt-get install chromium\` (as .ci/run does), or set CHROMIUM_PATH to a Chromium binary.`,
    );
  }
  return found;
}

/** `vite build` of the page in a child process (so it runs beside the training here). */
function buildPage(outDir: string): Promise<void> {
  const viteBin = join(createRequire(join(root, 'package.json')).resolve('vite/package.json'), '../bin/vite.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [viteBin, 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vite build failed (exit ${code}):\n${output}`))));
  });
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.rsm': 'application/octet-stream',
};

/** A plain static server over the build output: what deploying the page anywhere amounts to. */
function serve(folder: string): Promise<Server> {
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    const file = normalize(join(folder, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(folder + sep) || !existsSync(file)) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('browser example (headless Chromium, wasm backend)', () => {
  // Checked while the file is collected: without Chromium the file fails, no test is skipped.
  const executablePath = chromiumPath();
  const outDir = mkdtempSync(join(tmpdir(), 'rs-browser-e2e-'));
  let server: Server | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let model: Model;
  let bytes: ArrayBuffer;
  let digits: Float32Array;
  let labels: Int32Array;
  let node: { predictions: number[]; exitIndex: number[]; logits: Float32Array };
  const problems: string[] = [];

  beforeAll(async () => {
    const started = performance.now();
    const seconds = (): string => ((performance.now() - started) / 1000).toFixed(1);
    let builtAfter = '';
    const built = buildPage(outDir).then(() => void (builtAfter = seconds()));
    // Meanwhile, in Node: make the reorganized model and classify the digits with it.
    await installCpu({ activate: false });
    // One thread: the page build runs on the other core meanwhile.
    await installWasm({ activate: false, threads: 1 });
    await useBackend('wasm');
    const made = await makeModel({ seed: 0 });
    bytes = made.buffer;
    const madeAfter = seconds();
    // What the page gets is the saved file: Node's answers come from the same bytes, loaded.
    model = loadFromBuffer(bytes);
    const mnist = loadMnist();
    digits = mnist.test.x.slice(0, DIGITS * 784);
    labels = mnist.test.y.slice(0, DIGITS);
    const x = tf.tensor2d(digits, [DIGITS, 784]);
    const run = earlyExitPredict(model, x);
    const logits = (await run.logits.data()) as Float32Array;
    const predictions = Array.from({ length: DIGITS }, (_, row) => {
      let best = 0;
      for (let c = 1; c < 10; c++) if (logits[row * 10 + c] > logits[row * 10 + best]) best = c;
      return best;
    });
    node = { predictions, exitIndex: Array.from(run.exitIndex), logits };
    tf.dispose([x, run.logits]);

    await built;
    writeFileSync(join(outDir, 'model.rsm'), new Uint8Array(bytes));
    server = await serve(outDir);
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`));
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
    });
    const { port } = server.address() as AddressInfo;
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('body:not([data-state="starting"]):not([data-state="loading"])', { timeout: 60_000 });
    const state = await page.evaluate(() => [document.body.dataset.state, document.getElementById('status')?.textContent]);
    if (state[0] !== 'ready') throw new Error(`The page did not load the model: state ${state[0]}, status "${state[1]}"; ${problems.join('; ')}`);
    console.log(
      `browser e2e: model made in ${madeAfter} s (pruned accuracy ${(100 * made.info.prunedAccuracy).toFixed(1)}%), page built after ${builtAfter} s, ` +
        `loaded in Chromium after ${seconds()} s; Node: ${node.exitIndex.filter((e) => e === 0).length}/${DIGITS} digits leave early`,
    );
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    model?.dispose();
    rmSync(outDir, { recursive: true, force: true });
  });

  it('loads the saved model on the wasm backend and shows its summary', async () => {
    const info = await page.evaluate(() => window.rsInfo());
    expect(info.backend).toBe('wasm');
    const counts = model.counts();
    const summary = info.summary as ModelSummary;
    expect(summary.params).toBe(counts.params);
    expect(summary.nonzeroParams).toBe(counts.nonzeroParams);
    expect(summary.bytes).toBe(bytes.byteLength);
    // pruneUnits, pruneWeights, freeze, addExit, setExitPolicy (scripts/make-model.mjs).
    expect(summary.journal.map((e) => e.technique)).toEqual(model.journal.map((e) => e.technique));
    expect(summary.journal).toHaveLength(5);
    expect(summary.exits.map((e) => e.id)).toEqual(['exit:relu1', 'fc3']);
    expect(summary.exits[0].flops).toBeLessThan(summary.exits[1].flops);
    const shown = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('#summary dd')].map((dd) => [(dd as HTMLElement).dataset.field, dd.textContent])));
    expect(shown.parameters).toBe(counts.params.toLocaleString('en-US'));
    expect(shown['non-zero parameters']).toMatch(new RegExp(`^${counts.nonzeroParams.toLocaleString('en-US')} `));
    expect(shown['journal entries']).toBe('5');
    expect(shown.backend).toMatch(/^wasm /);
  });

  it(`classifies ${DIGITS} MNIST test digits exactly as Node: same digit, same exit, same logits`, async () => {
    // Both exits are exercised, or the exit comparison would say little.
    expect(new Set(node.exitIndex)).toEqual(new Set([0, 1]));
    // The model is a real classifier (about 91% after this short training).
    expect(node.predictions.filter((p, i) => p === labels[i]).length / DIGITS).toBeGreaterThan(0.85);
    const tensorsBefore = (await page.evaluate(() => window.rsInfo())).numTensors;
    const pixels = Array.from(digits);
    const browserRun = await page.evaluate(([p, n]) => window.rsPredict(p as number[], n as number), [pixels, DIGITS] as const) as Classification;
    expect(browserRun.predictions).toEqual(node.predictions);
    expect(browserRun.exitIndex).toEqual(node.exitIndex);
    expect(browserRun.logits).toHaveLength(node.logits.length);
    let maxDiff = 0;
    browserRun.logits.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - node.logits[i]))));
    console.log(`browser e2e: largest logit difference page vs Node ${maxDiff.toExponential(2)} over ${DIGITS} digits`);
    expect(maxDiff).toBeLessThanOrEqual(1e-4);
    // No tensor is left behind by a classification.
    expect((await page.evaluate(() => window.rsInfo())).numTensors).toBe(tensorsBefore);
  });

  it('classifies a digit drawn on the canvas with the mouse', async () => {
    await page.click('#clear');
    const box = await page.locator('#pad').boundingBox();
    if (!box) throw new Error('#pad is not visible');
    const at = (x: number, y: number): [number, number] => [box.x + (x * box.width) / 280, box.y + (y * box.height) / 280];
    // A "1": one slightly slanted stroke down the middle of the pad.
    await page.mouse.move(...at(150, 50));
    await page.mouse.down();
    await page.mouse.move(...at(130, 230), { steps: 12 });
    await page.mouse.up();
    await page.click('#classify');
    await page.waitForFunction(() => /^[0-9]$/.test(document.getElementById('digit')?.textContent ?? ''));
    const shown = await page.evaluate(() => ({
      digit: document.getElementById('digit')?.textContent,
      exitIndex: Number(document.getElementById('digit')?.dataset.exit),
      exit: document.getElementById('exit')?.textContent,
      bars: document.querySelectorAll('#probabilities tr').length,
      input: window.rsLastDigit(),
    }));
    expect(shown.bars).toBe(10);
    expect(shown.exit).toMatch(/exit [01] \((exit:relu1|fc3)\)/);
    // What the page made of the drawing looks like an MNIST digit: values in [0, 1], ink
    // scaled to a 20-pixel box, centre of mass at (14, 14) give or take a pixel.
    const input = shown.input as number[];
    expect(input).toHaveLength(784);
    expect(Math.min(...input)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...input)).toBe(1);
    let mass = 0;
    let massX = 0;
    let massY = 0;
    let top = 28;
    let bottom = -1;
    input.forEach((v, i) => {
      mass += v;
      massX += v * (i % 28);
      massY += v * Math.floor(i / 28);
      if (v > 0.1) {
        top = Math.min(top, Math.floor(i / 28));
        bottom = Math.max(bottom, Math.floor(i / 28));
      }
    });
    expect(Math.abs(massX / mass - 14)).toBeLessThanOrEqual(1);
    expect(Math.abs(massY / mass - 14)).toBeLessThanOrEqual(1);
    expect(bottom - top + 1).toBeGreaterThanOrEqual(19);
    expect(bottom - top + 1).toBeLessThanOrEqual(21);
    // Node classifies those pixels the same way (digit and exit).
    const x = tf.tensor2d(Float32Array.from(input), [1, 784]);
    const run = earlyExitPredict(model, x);
    const logits = Array.from(await run.logits.data());
    tf.dispose([x, run.logits]);
    expect(Number(shown.digit)).toBe(logits.indexOf(Math.max(...logits)));
    expect(shown.exitIndex).toBe(run.exitIndex[0]);
    // And a clear vertical stroke is a one.
    expect(shown.digit).toBe('1');
  });

  it('had no console error, page error or failed request', () => {
    expect(problems).toEqual([]);
  });
});
