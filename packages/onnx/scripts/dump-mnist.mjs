// Writes the MNIST split of @rs/datasets (seed 0) as raw little-endian arrays for
// scripts/make-import-fixtures.py (from the repository root): <dir>/train-x.f32, train-y.i32, test-x.f32, test-y.i32.
// Usage: node packages/onnx/scripts/dump-mnist.mjs <dir>
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadMnist } from '@rs/datasets';

const dir = process.argv[2];
if (!dir) throw new Error('usage: node packages/onnx/scripts/dump-mnist.mjs <dir>');
mkdirSync(dir, { recursive: true });
const { train, test } = loadMnist();
for (const [name, split] of [['train', train], ['test', test]]) {
  writeFileSync(join(dir, `${name}-x.f32`), Buffer.from(split.x.buffer, split.x.byteOffset, split.x.byteLength));
  writeFileSync(join(dir, `${name}-y.i32`), Buffer.from(split.y.buffer, split.y.byteOffset, split.y.byteLength));
  console.log(`${name}: ${split.count} digits`);
}
