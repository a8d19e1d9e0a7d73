import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../tf';
import { useCpu } from '../test-setup';
import { Model } from '../model';
import { lenet300100, lenet5 } from '../models/builders';
import { isRsError, type RsErrorCode } from '../errors';
import { fit } from '../train/fit';
import { saveToBuffer, loadFromBuffer, save, load } from './model-io';
import { decodeSafetensors, encodeSafetensors } from './safetensors';

beforeAll(useCpu);

const bits = (t: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from(t.dataSync()).buffer));

function expectCode(f: () => unknown, code: RsErrorCode): void {
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(isRsError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

function edited(): Model {
  const model = Model.create(lenet300100({ hidden: [12, 6] }), { seed: 4 });
  model.edit((tx) => {
    tx.removeUnits('fc1', [0, 5]);
    tx.setMask('fc2/kernel', tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([10, 6], 0, 1, 'float32', 1), 0.3), 'float32')));
    tx.setTrainable('fc3', false);
  }, { technique: 'test', reason: 'round trip' });
  return model;
}

describe('save and load', () => {
  it('reproduces outputs bit for bit, with graph, journal, masks and trainable flags', () => {
    const model = edited();
    const copy = loadFromBuffer(saveToBuffer(model));
    const x = tf.randomNormal([5, 784], 0, 1, 'float32', 2);
    expect(bits(copy.apply(x))).toEqual(bits(model.apply(x)));
    expect(copy.graph).toEqual(model.graph);
    expect(copy.journal).toEqual(model.journal);
    for (const key of model.paramKeys()) {
      expect(copy.param(key).trainable).toBe(model.param(key).trainable);
      expect(copy.param(key).mask === undefined).toBe(model.param(key).mask === undefined);
    }
    expect(bits(copy.param('fc2/kernel').mask as tf.Tensor)).toEqual(bits(model.param('fc2/kernel').mask as tf.Tensor));
    tf.dispose(x);
    model.dispose();
    copy.dispose();
  });

  it('round-trips a conv model through a file, and optimizer state when asked', async () => {
    const model = Model.create(lenet5({ filters: [2, 3], hidden: [8, 8] }), { seed: 1 });
    const data = { x: tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 3), y: tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32') };
    await fit(model, data, { loss: 'softmaxCrossEntropy', epochs: 1, batchSize: 4 });
    const dir = mkdtempSync(join(tmpdir(), 'rs-io-'));
    try {
      await save(model, join(dir, 'model.rsm'), { includeOptimizerState: true });
      const copy = await load(join(dir, 'model.rsm'));
      expect(bits(copy.apply(data.x))).toEqual(bits(model.apply(data.x)));
      expect(bits(copy.internalState.slots.get('conv1/kernel')?.get('m') as tf.Tensor)).toEqual(bits(model.internalState.slots.get('conv1/kernel')?.get('m') as tf.Tensor));
      copy.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    model.dispose();
    tf.dispose([data.x, data.y]);
  });

  it('corrupt, truncated, mismatched and foreign files give typed errors and leak nothing', () => {
    const model = edited();
    const good = saveToBuffer(model);
    const tensors = tf.memory().numTensors;

    const flipped = good.slice();
    flipped[flipped.length - 10] ^= 0xff;
    expectCode(() => loadFromBuffer(flipped), 'IO_CORRUPT');

    const garbage = good.slice();
    garbage[9] = 0x7b; // '{' inside the header JSON
    garbage[10] = 0x7b;
    expectCode(() => loadFromBuffer(garbage), 'IO_CORRUPT');

    expectCode(() => loadFromBuffer(good.slice(0, good.length - 100)), 'IO_TRUNCATED');
    expectCode(() => loadFromBuffer(good.slice(0, 5)), 'IO_TRUNCATED');
    expectCode(() => loadFromBuffer(good.slice(0, 40)), 'IO_TRUNCATED');

    const reencode = (change: (metadata: Record<string, string>) => void): Uint8Array => {
      const content = decodeSafetensors(good);
      change(content.metadata);
      return encodeSafetensors(content);
    };
    expectCode(
      () =>
        loadFromBuffer(
          reencode((m) => {
            const graph = JSON.parse(m.graph);
            graph.nodes[0].attrs.units = 11;
            m.graph = JSON.stringify(graph);
          }),
        ),
      'IO_MISMATCH',
    );
    expectCode(() => loadFromBuffer(reencode((m) => (m.format = 'something-else'))), 'IO_NOT_A_MODEL');
    expectCode(() => loadFromBuffer(reencode((m) => (m.version = '99'))), 'IO_UNSUPPORTED_VERSION');
    expectCode(
      () =>
        loadFromBuffer(
          reencode((m) => {
            const graph = JSON.parse(m.graph);
            graph.nodes[1].op = 'notAnOp';
            m.graph = JSON.stringify(graph);
          }),
        ),
      'UNKNOWN_OP',
    );
    expectCode(() => loadFromBuffer(reencode((m) => (m.graph = '{not json'))), 'IO_CORRUPT');
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });
});
