import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load, tf } from '@rs/core';
import { createRegistry, runCli } from './index';

// rs import, and .onnx files read directly by rs inspect / prune / report: the small MNIST CNN
// exported by PyTorch (packages/onnx/fixtures/import, made by scripts/make-import-fixtures.py).
const fixtures = fileURLToPath(new URL('../../onnx/fixtures/import/', import.meta.url));
let dir: string;

async function rs(args: string[]) {
  let stdout = '';
  let stderr = '';
  const before = tf.memory().numTensors;
  const status = await runCli(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, cwd: dir });
  return { status, stdout, stderr, leaked: tf.memory().numTensors - before };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rs-import-'));
  for (const name of ['cnn.onnx', 'unsupported.onnx']) copyFileSync(join(fixtures, name), join(dir, name));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('rs import and .onnx inputs', () => {
  it('rs import writes a model file that loads with the CLI registry; inspect, prune and report read .onnx directly', async () => {
    const imported = await rs(['import', 'cnn.onnx', '--out', 'cnn.rsm', '--json']);
    expect(imported.stderr).toBe('');
    expect(imported.status).toBe(0);
    expect(imported.leaked).toBe(0);
    const doc = JSON.parse(imported.stdout);
    expect(doc.inputs).toEqual([{ id: 'x', shape: [null, 28, 28, 1], dtype: 'float32' }]);
    const model = await load(join(dir, 'cnn.rsm'), { registry: await createRegistry(dir) });
    expect(model.counts().params).toBe(doc.params);
    expect(model.graph.nodes.map((n) => n.op)).toContain('batchNorm');
    model.dispose();

    const inspected = await rs(['inspect', 'cnn.onnx', '--json']);
    expect(inspected.status).toBe(0);
    const groups = JSON.parse(inspected.stdout).groups as { id: string; size: number; editable: boolean }[];
    expect(groups.filter((g) => g.editable).map((g) => g.size).sort((a, b) => a - b)).toEqual([8, 16]);

    const conv = groups.find((g) => g.editable && g.size === 16)!.id;
    const pruned = await rs(['prune', 'cnn.onnx', '--units', '0.5', '--groups', conv, '--out', 'pruned.rsm', '--backend', 'cpu']);
    expect(pruned.status).toBe(0);
    expect(pruned.stdout).toContain(`removed 8 of 16 units of ${conv} (now 8)`);

    const report = await rs(['report', 'cnn.onnx', '--json', '--backend', 'cpu']);
    expect(report.status).toBe(0);
    expect(JSON.parse(report.stdout).version).toBe(1);
  });

  it('an unsupported model exits 1 with UNSUPPORTED_IMPORT naming every node', async () => {
    const result = await rs(['import', 'unsupported.onnx', '--out', 'x.rsm']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('[UNSUPPORTED_IMPORT]');
    expect(result.stderr).toContain("node 'refine' (Loop, opset 13)");
    expect(result.stderr).toContain("node 'nms' (NonMaxSuppression, opset 13)");
    expect(result.leaked).toBe(0);
  });
});
