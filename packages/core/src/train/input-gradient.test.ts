import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '../tf';
import { useCpu } from '../test-setup';
import { Model } from '../model';
import { lenet300100, lenet5 } from '../models/builders';
import { trainStep } from './gradients';
import { sgd } from './optimizers';
import { softmaxCrossEntropy } from './losses';

beforeAll(useCpu);

describe('training computes no gradient that nothing needs', () => {
  it("a LeNet step takes no gradient of the input batch (no product yields a [batch, 784] tensor), only the parameters'", async () => {
    const model = Model.create(lenet300100(), { seed: 0 });
    const x = tf.randomUniform([8, 784], 0, 1, 'float32', 1);
    const y = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
    const optimizer = sgd({ learningRate: 0.01 });
    const profile = await tf.profile(() => {
      trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
    });
    const products = profile.kernels.filter((k) => k.name === 'BatchMatMul' || k.name === '_FusedMatMul');
    // Forward: 3 products; backward: 3 weight gradients and the input gradients of layers 2 and 3.
    expect(products.length).toBe(8);
    const outputs = products.map((k) => k.outputShapes[0]);
    expect(outputs).not.toContainEqual([8, 784]);
    expect(outputs.filter((s) => s[0] === 784 && s[1] === 300)).toHaveLength(1);
    model.dispose();
    tf.dispose([x, y]);
  });

  it('a LeNet-5 step takes no gradient of the input images: one input gradient (conv2), two filter gradients', async () => {
    const model = Model.create(lenet5(), { seed: 0 });
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 1);
    const y = tf.tensor1d([0, 1, 2, 3], 'int32');
    const optimizer = sgd({ learningRate: 0.01 });
    const profile = await tf.profile(() => {
      trainStep(model, [x], y, softmaxCrossEntropy, optimizer);
    });
    const inputGradients = profile.kernels.filter((k) => k.name === 'Conv2DBackpropInput');
    expect(inputGradients.map((k) => k.outputShapes[0])).toEqual([[4, 14, 14, 6]]);
    expect(profile.kernels.filter((k) => k.name === 'Conv2DBackpropFilter')).toHaveLength(2);
    model.dispose();
    tf.dispose([x, y]);
  });
});
