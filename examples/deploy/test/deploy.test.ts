// Cross-runtime deployment (issue 26): one reorganized model gives the same answers in Node,
// Chromium (page and Web Worker), Bun and Deno, and the app that only runs it bundles small.
// Shared setup, one process per runtime: Node makes the pruned early-exit MNIST model and a MoE
// character model, saves both, and computes the reference outputs (200 digits, 20 text windows)
// on @rs/backend-wasm; meanwhile `vite build` bundles the inference-only app (app/) and esbuild
// the browser harness (src/harness.ts, on @rs/backend-wasm/runtime); then Bun and Deno (the
// published packages' builds, from npm) and Chromium compute the same outputs from the saved
// bytes, all at once.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Model, charTransformer, createOpRegistry, saveToBuffer, trainStep, adam, softmaxCrossEntropy, tf, useBackend } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';
import { install as installWasm } from '@rs/backend-wasm';
import { register as registerMoe, moeGraph } from '@rs/moe';
import { loadMnist, loadMobyDick, charBatches } from '@rs/datasets';
import { makeModel } from '../../browser/scripts/make-model.mjs';
import { computeChecked, type ComputeInputs, type ComputeOutputs } from '../src/compute';
import type { HarnessResult } from '../src/harness';

const root = fileURLToPath(new URL('..', import.meta.url));
const DIGITS = 200;
const WINDOWS = 20;
const CONTEXT = 32;
/** The bundle of a fresh Vite app that trains, prunes and runs a model, gzip (issue 26; docs/deploy.md). */
const BASELINE_GZIP_KB = 248;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A binary the test needs, from its environment variable (set by scripts/run-tests.mjs) or its usual place; never skipped. */
function binary(variable: string, fallback: string, how: string): string {
  const path = process.env[variable] ?? fallback;
  if (!existsSync(path)) throw new Error(`The cross-runtime test needs ${how} and found none at ${path}: run \`pnpm install\` (or node scripts/ensure-runtimes.mjs / ensure-chromium.mjs), or set ${variable}.`);
  return path;
}

/** Runs `command` to completion; rejects with its output when it fails. */
function run(command: string, args: string[], cwd = root): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(' ')} failed (exit ${code}):\n${output}`))));
  });
}

const wasmDist = join(dirname(createRequire(join(root, '../../packages/backend-wasm/package.json')).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm', '.rsm': 'application/octet-stream' };

/** A static server: the app build at /, the harness at /harness.*, the wasm binaries at /wasm/. */
function serve(app: string, extra: Record<string, Buffer | string>): Promise<Server> {
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    let body: Buffer | string | undefined = extra[path];
    if (body === undefined) {
      const [folder, rest] = path.startsWith('/wasm/') ? [wasmDist, path.slice('/wasm'.length)] : [app, path.endsWith('/') ? `${path}index.html` : path];
      const file = normalize(join(folder, rest));
      if (file.startsWith(folder + sep) && existsSync(file)) body = readFileSync(file);
    }
    if (body === undefined) return void response.writeHead(404).end();
    response.writeHead(200, { 'Content-Type': TYPES[extname(path.endsWith('/') ? 'x.html' : path)] ?? 'application/octet-stream' }).end(body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Largest |a - b| over two equally long arrays. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Gzip size (level 9) of every file of a build except the .wasm binaries, in kB (1000 bytes, as Vite prints). */
function gzipKb(folder: string): { kb: number; files: string[] } {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (!name.endsWith('.wasm')) files.push(path);
    }
  };
  walk(folder);
  const bytes = files.reduce((sum, file) => sum + gzipSync(readFileSync(file), { level: 9 }).length, 0);
  return { kb: bytes / 1000, files: files.map((f) => f.slice(folder.length + 1)) };
}

/** The MoE character transformer (4 experts, top-1), trained briefly; its saved bytes. */
function makeMoeModel(): { bytes: ArrayBuffer; vocab: number } {
  const book = loadMobyDick();
  const registry = registerMoe(createOpRegistry());
  const graph = moeGraph(charTransformer({ vocabSize: book.vocab.length, context: CONTEXT, dim: 32, heads: 2, layers: 2, ffn: 64 }), {
    experts: 4,
    routing: 'switch',
    capacityFactor: 1.25,
    evalCapacityFactor: 4,
  });
  const model = Model.create(graph, { registry, seed: 0 });
  const batches = charBatches(book.train, { context: CONTEXT, batchSize: 16, seed: 0 });
  const optimizer = adam({ learningRate: 0.003 });
  for (let step = 1; step <= 15; step++) {
    const batch = batches.sample(step);
    const x = tf.tensor2d(batch.x, [16, CONTEXT], 'int32');
    const y = tf.tensor2d(batch.y, [16, CONTEXT], 'int32');
    trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
    tf.dispose([x, y]);
  }
  const bytes = saveToBuffer(model);
  model.dispose();
  return { bytes, vocab: book.vocab.length };
}

const base64 = (bytes: ArrayBuffer): string => Buffer.from(bytes).toString('base64');

describe('cross-runtime deployment (Node, Chromium page and worker, Bun, Deno)', () => {
  // Checked while the file is collected: without a runtime the file fails, no test is skipped.
  const bun = binary('BUN_PATH', join(root, 'node_modules/bun/bin/bun.exe'), 'Bun (the `bun` npm package)');
  const deno = binary('DENO_PATH', join(root, 'node_modules/deno/deno'), 'Deno (the `deno` npm package)');
  const chromiumPath = binary('CHROMIUM_PATH', '/usr/bin/chromium', 'Chromium');
  const work = mkdtempSync(join(tmpdir(), 'rs-deploy-'));
  const appDir = join(work, 'app');
  let server: Server | undefined;
  let browser: Browser | undefined;
  let inputs: ComputeInputs;
  let node: ComputeOutputs;
  let vocab: number;
  const results: Record<string, { outputs: ComputeOutputs; threadsRequest?: HarnessResult['threadsRequest'] }> = {};
  let appRun: { logits: number[]; exitIndex: number[]; leakedPerCall: number };
  let bundle: { kb: number; files: string[] };
  const problems: string[] = [];

  beforeAll(async () => {
    const started = performance.now();
    const seconds = (): string => ((performance.now() - started) / 1000).toFixed(1);
    const viteBin = join(createRequire(join(root, 'package.json')).resolve('vite/package.json'), '../bin/vite.js');
    const built = run(process.execPath, [viteBin, 'build', '--outDir', appDir, '--emptyOutDir', '--logLevel', 'warn']);
    const harness = build({
      entryPoints: [join(root, 'src/harness.ts')],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      conditions: ['@rs/source'],
      external: ['node:*'],
      logLevel: 'silent',
    });
    // Meanwhile, in Node: the models, saved, and the reference outputs from the saved bytes.
    await installCpu({ activate: false });
    await installWasm({ activate: false, threads: 1 });
    await useBackend('wasm');
    const exitModel = await makeModel({ seed: 0, epochs: 1 });
    const moe = makeMoeModel();
    vocab = moe.vocab;
    const mnist = loadMnist();
    const book = loadMobyDick();
    const chars: number[] = [];
    for (let w = 0; w < WINDOWS; w++) chars.push(...book.validation.subarray(w * 997, w * 997 + CONTEXT));
    inputs = {
      exitModel: base64(exitModel.buffer),
      moeModel: base64(moe.bytes),
      pixels: Array.from(mnist.test.x.subarray(0, DIGITS * 784)),
      digits: DIGITS,
      chars,
      windows: WINDOWS,
      context: CONTEXT,
    };
    node = await computeChecked(inputs);
    const inputFile = join(work, 'inputs.json');
    writeFileSync(inputFile, JSON.stringify(inputs));
    const madeAfter = seconds();

    // Bun and Deno, each one process computing everything.
    const script = join(root, 'scripts/run-models.ts');
    const others = (['bun', 'deno'] as const).map(async (name) => {
      const out = join(work, `${name}.json`);
      const args = name === 'bun' ? [script, inputFile, out] : ['run', '-A', '--quiet', script, inputFile, out];
      await run(name === 'bun' ? bun : deno, args);
      results[name] = JSON.parse(readFileSync(out, 'utf8'));
    });

    // Chromium: the app's page, the harness in a page and in a worker.
    await built;
    bundle = gzipKb(appDir);
    const harnessJs = (await harness).outputFiles[0].contents;
    server = await serve(appDir, {
      '/model.rsm': Buffer.from(exitModel.buffer),
      '/harness.js': Buffer.from(harnessJs),
      '/harness.html': '<!doctype html><html><head><link rel="icon" href="data:,"><script type="module" src="/harness.js"></script></head><body></body></html>',
    });
    const { port } = server.address() as AddressInfo;
    browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
    const watch = (page: Page): Page => {
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('console', (message) => void (message.type() === 'error' && problems.push(`console error: ${message.text()}`)));
      return page;
    };
    const appPage = watch(await browser.newPage());
    await appPage.goto(`http://127.0.0.1:${port}/`);
    await appPage.waitForSelector('body:not([data-state="starting"])', { timeout: 60_000 });
    const state = await appPage.evaluate(() => [document.body.dataset.state, document.getElementById('status')?.textContent]);
    if (state[0] !== 'ready') throw new Error(`The app did not load the model: ${state[1]}; ${problems.join('; ')}`);
    const classify = (): Promise<{ logits: number[]; exitIndex: number[]; numTensors: number }> =>
      appPage.evaluate(
        ([p, n]) => (window as unknown as { rsClassify: (pixels: number[], count: number) => Promise<{ logits: number[]; exitIndex: number[]; numTensors: number }> }).rsClassify(p as number[], n as number),
        [inputs.pixels, DIGITS] as const,
      );
    const first = await classify();
    // A second call leaves as many live tensors as the first: nothing leaks per call.
    appRun = { ...first, leakedPerCall: (await classify()).numTensors - first.numTensors };
    const harnessPage = watch(await browser.newPage());
    await harnessPage.goto(`http://127.0.0.1:${port}/harness.html`);
    await harnessPage.waitForFunction(() => typeof (window as unknown as { rsRunInWorker?: unknown }).rsRunInWorker === 'function');
    type Harness = { rsRun: (i: ComputeInputs) => Promise<HarnessResult>; rsRunInWorker: (i: ComputeInputs) => Promise<HarnessResult> };
    const [page, worker] = await Promise.all([
      harnessPage.evaluate((i) => (window as unknown as Harness).rsRun(i), inputs),
      harnessPage.evaluate((i) => (window as unknown as Harness).rsRunInWorker(i), inputs),
    ]);
    results['chromium page'] = page;
    results['chromium worker'] = worker;
    await Promise.all(others);
    console.log(`deploy: models made and Node's outputs after ${madeAfter} s, every runtime done after ${seconds()} s; app bundle ${bundle.kb.toFixed(1)} kB gzip`);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    rmSync(work, { recursive: true, force: true });
  });

  it('the reference exercises both exits and real routing', () => {
    expect(node.backend).toBe('wasm');
    expect(new Set(node.exitIndex)).toEqual(new Set([0, 1]));
    expect(node.next).toHaveLength(WINDOWS * vocab);
    expect(node.leaked).toBe(0);
  });

  for (const name of ['chromium page', 'chromium worker', 'bun', 'deno']) {
    it(`${name}: the same exits, logits within 1e-5 on ${DIGITS} digits, next-character distributions within 1e-5 on ${WINDOWS} windows`, () => {
      const got = results[name].outputs;
      expect(got.backend).toBe('wasm');
      expect(got.exitIndex).toEqual(node.exitIndex);
      const logits = maxDiff(got.logits, node.logits);
      const next = maxDiff(got.next, node.next);
      console.log(`deploy: ${name} vs Node: largest logit difference ${logits.toExponential(2)}, largest probability difference ${next.toExponential(2)}`);
      expect(logits).toBeLessThanOrEqual(1e-5);
      expect(next).toBeLessThanOrEqual(1e-5);
      expect(got.leaked).toBe(0);
    });
  }

  it('the inference-only app classifies the digits as Node does, from a bundle at most 40% of 248 kB gzip', () => {
    expect(appRun.exitIndex).toEqual(node.exitIndex);
    expect(maxDiff(appRun.logits, node.logits)).toBeLessThanOrEqual(1e-5);
    expect(appRun.leakedPerCall).toBe(0);
    console.log(`deploy: inference-only app bundle ${bundle.kb.toFixed(1)} kB gzip (${((100 * bundle.kb) / BASELINE_GZIP_KB).toFixed(1)}% of ${BASELINE_GZIP_KB} kB) in ${bundle.files.join(', ')}`);
    expect(bundle.kb).toBeLessThanOrEqual(0.4 * BASELINE_GZIP_KB);
  });

  it('threads asked for where they cannot run: a typed UNSUPPORTED_RUNTIME error, then one thread', () => {
    for (const name of ['chromium page', 'chromium worker']) {
      const request = results[name].threadsRequest;
      // A page served without cross-origin isolation has no SharedArrayBuffer.
      expect(request?.sharedArrayBuffer).toBe(false);
      expect(request?.threw).toBe(true);
      expect(request?.code).toBe('UNSUPPORTED_RUNTIME');
      expect(request?.message).toContain('SharedArrayBuffer is not defined here');
    }
    const denoRequest = results.deno.threadsRequest;
    expect(denoRequest?.threw).toBe(true);
    expect(denoRequest?.code).toBe('UNSUPPORTED_RUNTIME');
    expect(denoRequest?.message).toContain("Deno's workers cannot host");
  });

  it('had no page error or console error', () => {
    expect(problems).toEqual([]);
  });
});
