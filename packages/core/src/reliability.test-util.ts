// Shared fixtures of the reliability regression tests (reliability-edits.test.ts,
// reliability-training.test.ts): small models, seeded batches and byte-exact save comparison.
import { tf } from './tf';
import type { Model } from './model';
import { lenet300100 } from './models/builders';
import type { GraphDef } from './ir/types';
import { saveToBuffer } from './io/model-io';

export const small = (): GraphDef => lenet300100({ inputs: 6, hidden: [8, 5], classes: 3 });

/** A small MLP with dropout, so that resuming must also resume the model's generator. */
export const withDropout = (): GraphDef => ({
  inputs: [{ id: 'x', shape: [null, 6], dtype: 'float32' }],
  nodes: [
    { id: 'fc1', op: 'dense', inputs: ['x'], attrs: { units: 8 } },
    { id: 'relu1', op: 'relu', inputs: ['fc1'], attrs: {} },
    { id: 'drop', op: 'dropout', inputs: ['relu1'], attrs: { rate: 0.3 } },
    { id: 'fc2', op: 'dense', inputs: ['drop'], attrs: { units: 3 } },
  ],
  outputs: ['fc2'],
});

export function batch(seed: number, rows = 16): { x: tf.Tensor; y: tf.Tensor } {
  return tf.tidy(() => ({
    x: tf.randomNormal([rows, 6], 0, 1, 'float32', seed),
    y: tf.cast(tf.floor(tf.randomUniform([rows], 0, 3, 'float32', seed + 1000)), 'int32'),
  }));
}

export const bytesOf = (model: Model, optimizerState = true): Uint8Array => new Uint8Array(saveToBuffer(model, { includeOptimizerState: optimizerState }));

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
