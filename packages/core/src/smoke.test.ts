import { describe, it, expect, beforeAll } from 'vitest';
import '@tensorflow/tfjs-backend-cpu';
import { tf } from './tf';
import { Model } from './model';
import { lenet300100 } from './models/builders';
import { fit } from './train/fit';

beforeAll(async () => { await tf.setBackend('cpu'); });

describe('smoke', () => {
  it('lenet', async () => {
    const m = Model.create(lenet300100(), { seed: 1 });
    expect(m.counts().params).toBe(266610);
    console.log(m.groups().map((g) => `${g.id} ${g.size} ${g.frozen ?? ''} ${g.params.map((p) => p.param + '#' + p.axis + p.role).join(',')}`));
    const x = tf.randomNormal([4, 784], 0, 1, 'float32', 3);
    const y0 = m.apply(x);
    const n0 = tf.memory().numTensors;
    m.edit((tx) => { tx.insertUnits('fc1', 5); tx.permuteUnits('fc2', [...Array(100).keys()].reverse()); });
    expect(tf.memory().numTensors).toBe(n0);
    const y1 = m.apply(x);
    expect(tf.max(tf.abs(tf.sub(y0, y1))).dataSync()[0]).toBeLessThan(1e-5);
    console.log(m.journal);
    const data = { x: tf.randomNormal([64, 784]), y: tf.randomUniformInt([64], 0, 10) };
    const h = await fit(m, data, { loss: 'softmaxCrossEntropy', epochs: 3, batchSize: 16 });
    console.log(h.losses);
    expect(tf.memory().numTensors).toBeLessThan(n0 + 20);
  });
});
