// The rs commands end to end (train, inspect, prune, grow, search, export, report, bench: its test
// times pruned.rsm, written by the prune tests above); the harness is in cli.test-util.ts.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Model, createOpRegistry, load, save, tf, type OpRegistry } from '@rs/core';
import { prunableParams } from '@rs/prune';
import { createRegistry } from './index';
import { dir, packageRoot, rs, file, TINY, useTinyModel } from './cli.test-util';

useTinyModel();

describe('rs train', () => {
  it('trains, prints test accuracy and saves the model; --json is one valid document', async () => {
    const text = await rs(['train', ...TINY, '--out', 'again.rsm']);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^test accuracy: \d+\.\d\d% on 200 held-out rows/m);
    expect(text.stdout).toContain('parameters: 25,818');
    expect(text.leaked).toBe(0);
    const json = await rs(['train', ...TINY, '--out', 'again.rsm', '--json']);
    const doc = JSON.parse(json.stdout);
    expect(doc.command).toBe('train');
    expect(doc.data).toMatchObject({ name: 'mnist', trainRows: 300, testRows: 200 });
    expect(doc.history).toHaveLength(1);
    // 784*32+32 + 32*16+16 + 16*10+10 parameters (LeNet-300-100's shape at 32-16).
    expect(doc.counts.params).toBe(25_818);
    expect(doc.test.accuracy).toBeGreaterThan(0.2); // far above chance (0.1) after one epoch
    const model = await load(file('again.rsm'));
    expect(model.counts().params).toBe(25_818);
    model.dispose();
  });

  it('trains an MLP on the two spirals', async () => {
    const result = await rs(['train', '--model', 'mlp', '--hidden', '16,16', '--data', 'spirals', '--epochs', '2', '--backend', 'cpu', '--out', 'spirals.rsm', '--json', '-q']);
    expect(result.status).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc.data).toMatchObject({ name: 'spirals', trainRows: 194, testRows: 192 });
    expect(doc.counts.params).toBe(2 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2);
  });

  it('trains on the native backend (--backend native)', async () => {
    const result = await rs(['train', '--model', 'mlp', '--hidden', '16,16', '--data', 'spirals', '--epochs', '2', '--backend', 'native', '--threads', '2', '--out', 'spirals-native.rsm', '--json', '-q']);
    expect(result.status, result.stderr).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc.settings.backend).toBe('native');
    expect(Number.isFinite(doc.test.loss)).toBe(true);
    expect(doc.data).toMatchObject({ name: 'spirals', trainRows: 194, testRows: 192 });
  });
});

describe('rs inspect', () => {
  it('prints the node table, groups and an empty journal', async () => {
    const result = await rs(['inspect', 'tiny.rsm']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('inputs:  x [?, 784] float32');
    expect(result.stdout).toMatch(/^fc1\s+dense\s+\[\?, 32\]\s+25,120\s+25,120\s+50,208\s+trainable$/m);
    expect(result.stdout).toMatch(/^total\s+5 nodes\s+25,818\s+25,818/m);
    expect(result.stdout).toContain('journal: empty');
    expect(result.leaked).toBe(0);
  });

  it('warns about weights that hold NaN or Infinity, on stderr and in --json', async () => {
    const model = await load(file('tiny.rsm'));
    model.edit((tx) => {
      const bad = tf.tidy(() => tf.div(tx.param('fc2/bias').value, 0)); // +-Infinity or NaN everywhere
      tx.setParam('fc2/bias', bad);
      bad.dispose();
    });
    await save(model, file('nonfinite.rsm'));
    model.dispose();
    const text = await rs(['inspect', 'nonfinite.rsm']);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain('non-finite: 1 tensor(s) hold NaN or Infinity: fc2/bias');
    expect(text.stderr).toContain('warning: 1 tensor(s) hold NaN or Infinity: fc2/bias');
    const json = JSON.parse((await rs(['inspect', 'nonfinite.rsm', '--json', '-q'])).stdout);
    expect(json.nonFinite).toEqual(['fc2/bias']);
    const healthy = JSON.parse((await rs(['inspect', 'tiny.rsm', '--json'])).stdout);
    expect(healthy.nonFinite).toEqual([]);
  });

  it('--json numbers are those of model.counts()', async () => {
    const result = await rs(['inspect', 'tiny.rsm', '--json']);
    const doc = JSON.parse(result.stdout);
    const model = await load(file('tiny.rsm'));
    const counts = model.counts();
    expect(doc.totals).toMatchObject({ params: counts.params, nonzeroParams: counts.nonzeroParams, flops: counts.flops });
    for (const n of counts.perNode) expect(doc.nodes.find((d: { id: string }) => d.id === n.node)).toMatchObject({ op: n.op, params: n.params, nonzeroParams: n.nonzeroParams, flops: n.flops });
    expect(doc.groups.filter((g: { editable: boolean }) => g.editable).map((g: { id: string }) => g.id)).toEqual(['fc1', 'fc2']);
    expect(doc.journal).toEqual([]);
    model.dispose();
  });

  it('loads models with technique ops (moe, learnedScale, nas.mixed)', async () => {
    const registry = await createRegistry(dir);
    const model = Model.create(
      {
        inputs: [{ id: 'x', shape: [null, 8], dtype: 'float32' }],
        nodes: [
          { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
          { id: 'experts', op: 'moe', inputs: ['fc1'], attrs: { experts: 4, hidden: 8 } },
          { id: 'scale', op: 'learnedScale', inputs: ['experts'], attrs: {} },
          { id: 'head', op: 'dense', inputs: ['scale'], attrs: { units: 3 } },
        ],
        outputs: ['head'],
      },
      { registry, seed: 1 },
    );
    await save(model, file('techniques.rsm'));
    const counts = model.counts();
    model.dispose();
    const result = await rs(['inspect', 'techniques.rsm', '--json']);
    expect(result.status).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc.nodes.map((n: { op: string }) => n.op)).toEqual(['dense', 'moe', 'learnedScale', 'dense']);
    expect(doc.totals.params).toBe(counts.params);
    expect(result.leaked).toBe(0);
  });

  it('loads a plugin op with --plugin, and says to use it when missing', async () => {
    // The example third-party plugin of this repository, given by path as a user would.
    const pluginPath = resolve(packageRoot, '../plugin-glu/src/index.ts');
    const plugin = (await import(/* @vite-ignore */ pathToFileURL(pluginPath).href)) as { registerGlu(r: OpRegistry): OpRegistry };
    const registry = plugin.registerGlu(createOpRegistry());
    const model = Model.create(
      { inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }], nodes: [{ id: 'glu', op: 'gatedLinear', inputs: ['x'], attrs: { units: 5 } }, { id: 'out', op: 'dense', inputs: ['glu'], attrs: { units: 2 } }], outputs: ['out'] },
      { registry, seed: 0 },
    );
    await save(model, file('glu.rsm'));
    model.dispose();
    const missing = await rs(['inspect', 'glu.rsm']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^rs inspect: \[UNKNOWN_OP\] glu\.rsm uses op 'gatedLinear'.*--plugin/);
    const loaded = await rs(['inspect', 'glu.rsm', '--plugin', pluginPath]);
    expect(loaded.stderr).toBe('');
    expect(loaded.status).toBe(0);
    expect(loaded.stdout).toMatch(/^glu\s+gatedLinear\s+\[\?, 5\]\s+70\s/m); // 2 * 6 * 5 + 2 * 5
  });
});

describe('rs prune', () => {
  it('masks the asked fraction of weights (layer scope: every kernel)', async () => {
    const result = await rs(['prune', 'tiny.rsm', '--sparsity', '0.9', '--scope', 'layer', '--out', 'pruned.rsm', '--backend', 'cpu', '--json']);
    expect(result.status).toBe(0);
    expect(result.leaked).toBe(0);
    const doc = JSON.parse(result.stdout);
    const model = await load(file('pruned.rsm'));
    for (const key of prunableParams(model)) {
      const mask = model.param(key).mask as tf.Tensor;
      const zeros = tf.tidy(() => tf.sum(tf.sub(1, mask)).dataSync()[0]);
      // pruneWeights masks floor(0.9 * size) weights of each kernel (at least 1% kept).
      expect(zeros).toBe(Math.floor(0.9 * mask.size));
    }
    expect(doc.after.nonzeroParams).toBe(model.counts().nonzeroParams);
    expect(model.journal.map((e) => e.technique)).toEqual(['prune']);
    model.dispose();
  });

  it('removes units physically and fine-tunes, reporting accuracy', async () => {
    const result = await rs(['prune', 'tiny.rsm', '--units', '0.5', '--groups', 'fc1', '--sparsity', '0.5', '--data', 'mnist', '--train-size', '300', '--test-size', '200', '--fine-tune-epochs', '1', '--backend', 'cpu', '--out', 'units.rsm']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('removed 16 of 32 units of fc1 (now 16)');
    expect(result.stdout).toMatch(/test accuracy: before \d+\.\d\d%, after pruning \d+\.\d\d%, after 1 fine-tuning epoch\(s\) \d+\.\d\d%/);
    expect(result.leaked).toBe(0);
    const model = await load(file('units.rsm'));
    expect(model.group('fc1').size).toBe(16);
    expect(model.journal).toHaveLength(2);
    model.dispose();
    const inspected = await rs(['inspect', 'units.rsm']);
    // 784*16+16 + 16*16+16 + 16*10+10 = 13,002 parameters once fc1 has 16 units.
    expect(inspected.stdout).toMatch(/^\s+1\s+prune\s+rs prune --units 0\.5\s+25,818 -> 13,002\s+25,818 -> 13,002\s+51,626 -> 25,994$/m);
  });
});

describe('rs grow', () => {
  it('widens with Net2Net without changing the outputs', async () => {
    const result = await rs(['grow', 'tiny.rsm', '--group', 'fc1', '--units', '8', '--out', 'grown.rsm', '--json']);
    expect(result.status).toBe(0);
    expect(result.leaked).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc.steps[0]).toMatchObject({ kind: 'widen', group: 'fc1', sizeBefore: 32, sizeAfter: 40 });
    expect(doc.outputCheck.maxAbsDiff).toBeLessThan(1e-5);
    const model = await load(file('grown.rsm'));
    expect(model.group('fc1').size).toBe(40);
    model.dispose();
  });

  it('--split picks how Net2Net shares the outgoing weights (exact either way); a bad value is a usage error', async () => {
    const result = await rs(['grow', 'tiny.rsm', '--group', 'fc1', '--units', '8', '--split', 'even', '--out', 'grown-even.rsm', '--json']);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).outputCheck.maxAbsDiff).toBeLessThan(1e-5);
    const model = await load(file('grown-even.rsm'));
    expect(model.journal[model.journal.length - 1].reason).toMatch(/even split/);
    model.dispose();
    const bad = await rs(['grow', 'tiny.rsm', '--group', 'fc1', '--units', '8', '--split', 'halves', '--out', 'x.rsm']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--split must be one of random, even, random-weights/);
  });

  it('grows with GradMax and deepens', async () => {
    const result = await rs(['grow', 'tiny.rsm', '--group', 'fc2', '--units', '4', '--method', 'gradmax', '--deepen', 'relu1', '--data', 'mnist', '--train-size', '300', '--test-size', '100', '--out', 'grown2.rsm']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('widened fc2: 16 -> 20 units (gradmax)');
    expect(result.stdout).toContain('deepened after relu1: added relu1.deep, relu1.deep.relu');
    expect(result.leaked).toBe(0);
  });
});

describe('rs search', () => {
  it('searches NAS-Bench-201 with plain progress lines off a terminal, and writes a checkpoint', async () => {
    const result = await rs(['search', '--evaluations', '20', '--strategy', 'random', '--checkpoint', 'search.json', '--json']);
    expect(result.status).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ space: 'nas-bench-201', strategy: 'random', evaluations: 20 });
    expect(doc.best.validation).toBeGreaterThan(80);
    // One line every 2 evaluations (a tenth of the budget), none with terminal escapes.
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(10);
    for (const line of lines) expect(line).toMatch(/^search \d+\/20 evaluations {2}best validation \d+\.\d\d {2}\(.* elapsed, ETA .*\)$/);
    expect(JSON.parse(readFileSync(file('search.json'), 'utf8')).trials).toHaveLength(20);
  });
});

describe('rs export', () => {
  it('writes an ONNX file that onnxruntime runs to the same outputs', async () => {
    const result = await rs(['export', 'tiny.rsm', '--out', 'tiny.onnx', '--json']);
    expect(result.status).toBe(0);
    expect(result.leaked).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ format: 'onnx', opset: 17, batch: 'dynamic', outputs: ['fc3'] });
    const bytes = readFileSync(file('tiny.onnx'));
    expect(bytes.byteLength).toBe(doc.bytes);
    const { InferenceSession, Tensor } = await import('onnxruntime-node');
    const session = await InferenceSession.create(new Uint8Array(bytes));
    const model = await load(file('tiny.rsm'));
    const x = tf.randomUniform([3, 784], 0, 1, 'float32', 7);
    const expected = tf.tidy(() => model.apply(x).dataSync().slice());
    const pixels = x.dataSync().slice() as Float32Array;
    const outputs = await session.run({ x: new Tensor('float32', pixels, [3, 784]) });
    const actual = outputs.fc3.data as Float32Array;
    for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThan(1e-4);
    x.dispose();
    model.dispose();
    await session.release();
  });

  it('--check lists nodes without an ONNX rule and exits 1 with UNSUPPORTED_EXPORT', async () => {
    const pluginPath = resolve(packageRoot, '../plugin-glu/src/index.ts');
    const result = await rs(['export', 'glu.rsm', '--check', '--plugin', pluginPath]);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^glu\s+gatedLinear\s/m);
    expect(result.stderr).toMatch(/^rs export: \[UNSUPPORTED_EXPORT\] 1 node\(s\) of glu\.rsm cannot be exported to ONNX: glu \(gatedLinear\)/);
    const ok = await rs(['export', 'tiny.rsm', '--check']);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('every node can be exported');
  });
});

describe('rs report', () => {
  it('writes a self-contained HTML page; --json prints the report data', async () => {
    const html = await rs(['report', 'units.rsm', '--out', 'report.html', '--title', 'units', '--search', 'search.json', '--backend', 'cpu']);
    expect(html.stderr).toBe('');
    expect(html.status).toBe(0);
    expect(html.leaked).toBe(0);
    const page = readFileSync(file('report.html'), 'utf8');
    expect(page.startsWith('<!DOCTYPE html>') || page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain('units');
    const json = await rs(['report', 'units.rsm', '--json', '--data', 'mnist', '--test-size', '100', '--backend', 'cpu']);
    expect(json.status).toBe(0);
    const data = JSON.parse(json.stdout);
    expect(data.version).toBe(1);
    expect(data.journal).toHaveLength(2);
  });
});

describe('rs bench', () => {
  it('times the model against a baseline file in the same run', async () => {
    const result = await rs(['bench', 'pruned.rsm', '--baseline', 'tiny.rsm', '--backend', 'cpu', '--batch', '32', '--repeats', '3', '--warmup', '1', '--json']);
    expect(result.status).toBe(0);
    expect(result.leaked).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc.results.map((r: { name: string }) => r.name)).toEqual(['model', 'baseline']);
    for (const r of doc.results) {
      expect(r.medianMs).toBeGreaterThan(0);
      expect(r.rowsPerSecond).toBeCloseTo((32 * 1000) / r.medianMs, 6);
    }
    expect(doc.results[1].ratio).toBe(1);
  });

  it('refuses a benchmark name outside the repository', async () => {
    const result = await rs(['bench', 'gemm']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^rs bench: \[NOT_IN_REPOSITORY\] 'gemm' is not a \.rsm file/);
  });
});
