import { describe, it, expect, beforeAll } from 'vitest';
import { tf } from '../tf';
import { useCpu } from '../test-setup';
import { Model } from '../model';
import { lenet300100 } from '../models/builders';
import { fit } from './fit';
import { adam } from './optimizers';
import { earlyStopping, progressBar, type EpochInfo, type StepInfo } from './callbacks';
import { leakOnThrow } from '../testing';

beforeAll(useCpu);

const small = () => lenet300100({ inputs: 8, hidden: [12, 6], classes: 2 });

/** Two Gaussian blobs (class = sign of the first coordinate's mean); `flip` inverts the labels. */
function blobs(n: number, seed: number, flip = false): { x: tf.Tensor; y: tf.Tensor } {
  return tf.tidy(() => {
    const label = tf.cast(tf.greater(tf.randomUniform([n], 0, 1, 'float32', seed), 0.5), 'int32');
    const centre = tf.mul(tf.sub(tf.cast(tf.expandDims(label, 1), 'float32'), 0.5), tf.concat([tf.fill([1, 1], 3), tf.zeros([1, 7])], 1));
    const x = tf.add(tf.randomNormal([n, 8], 0, 1, 'float32', seed + 1), centre);
    return { x, y: flip ? tf.cast(tf.sub(1, label), 'int32') : label };
  });
}

describe('fit callbacks and history', () => {
  it('calls onTrainBegin, onBatchEnd/onStepEnd, onEpochEnd and onTrainEnd with logs; history is plain JSON', async () => {
    const model = Model.create(small(), { seed: 1 });
    const train = blobs(50, 2);
    const val = blobs(30, 3);
    const events: string[] = [];
    const batches: StepInfo[] = [];
    const epochs: EpochInfo[] = [];
    const history = await fit(model, train, {
      loss: 'softmaxCrossEntropy',
      optimizer: adam({ learningRate: 0.05 }),
      epochs: 3,
      batchSize: 16,
      validation: val,
      callbacks: [
        {
          onTrainBegin: (info) => void events.push(`begin ${info.epochs} epochs x ${info.batches} batches, ${info.rows} rows`),
          onStepEnd: () => void events.push('step'),
          onBatchEnd: (info) => void batches.push(info),
          onEpochEnd: (info) => void epochs.push(info),
          onTrainEnd: (info) => void events.push(`end ${info.epochs.length} ${info.steps} ${info.failed}`),
        },
      ],
    });
    expect(events[0]).toBe('begin 3 epochs x 4 batches, 50 rows');
    expect(events.filter((e) => e === 'step')).toHaveLength(12);
    expect(events[events.length - 1]).toBe('end 3 12 false');
    expect(batches.map((b) => `${b.epoch}:${b.batch}/${b.batches}`).slice(0, 5)).toEqual(['0:0/4', '0:1/4', '0:2/4', '0:3/4', '1:0/4']);
    expect(epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
    for (const e of epochs) {
      expect(e.logs).toEqual(history.epochs[e.epoch]);
      expect(e.valLoss).toBeGreaterThan(0);
      expect(e.valAccuracy).toBeGreaterThanOrEqual(0);
      expect(e.seconds).toBeGreaterThanOrEqual(0);
    }
    // The epoch loss is the row-weighted mean of its steps' losses (16, 16, 16, 2 rows).
    const steps = history.losses.slice(0, 4);
    expect(history.epochs[0].loss).toBeCloseTo((16 * (steps[0] + steps[1] + steps[2]) + 2 * steps[3]) / 50, 6);
    // Validation improves on this separable problem.
    expect(history.epochs[2].valAccuracy).toBeGreaterThan(0.8);
    const text = JSON.stringify(history);
    expect(text).not.toContain('model');
    expect(JSON.parse(text)).toEqual(history);
    model.dispose();
    tf.dispose([train.x, train.y, val.x, val.y]);
  });

  it('earlyStopping stops when the validation loss stops improving and restores the best weights', async () => {
    const model = Model.create(small(), { seed: 4 });
    const train = blobs(64, 5);
    // Labels flipped: the better the model learns the training data, the worse this loss gets.
    const val = blobs(40, 6, true);
    const stopper = earlyStopping({ monitor: 'valLoss', patience: 2, restoreBestWeights: true });
    const weights: Float32Array[][] = [];
    const live = tf.memory().numTensors;
    const history = await fit(model, train, {
      loss: 'softmaxCrossEntropy',
      optimizer: adam({ learningRate: 0.02 }),
      epochs: 30,
      batchSize: 16,
      validation: val,
      callbacks: [{ onEpochEnd: (info) => void weights.push(info.model.paramKeys().map((k) => info.model.param(k).value.dataSync() as Float32Array)) }, stopper],
    });
    const valLosses = history.epochs.map((e) => e.valLoss as number);
    const best = valLosses.indexOf(Math.min(...valLosses));
    expect(stopper.bestEpoch).toBe(best);
    expect(history.epochs.length).toBe(best + 3); // patience 2: stop after the second epoch without improvement
    expect(history.epochs.length).toBeLessThan(30);
    expect(stopper.stoppedEpoch).toBe(history.epochs.length - 1);
    expect(stopper.restored).toBe(true);
    model.paramKeys().forEach((k, i) => expect(Array.from(model.param(k).value.dataSync()), k).toEqual(Array.from(weights[best][i])));
    // Only Adam's slots (m and v per parameter) remain: the saved copies were released or handed over.
    expect(tf.memory().numTensors - live).toBe(2 * model.paramKeys().length);
    model.dispose();
    tf.dispose([train.x, train.y, val.x, val.y]);
  });

  it('earlyStopping on a value fit does not report is a typed error, and nothing leaks', async () => {
    const model = Model.create(small(), { seed: 7 });
    const train = blobs(20, 8);
    const { error, leaked } = await leakOnThrow(() => fit(model, train, { loss: 'softmaxCrossEntropy', optimizer: adam(), callbacks: [earlyStopping({ restoreBestWeights: true })] }));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(String(error)).toMatch(/give fit validation data/);
    expect(leaked).toBe(2 * model.paramKeys().length); // Adam's slots from the epoch that ran
    expect(() => earlyStopping({ patience: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => earlyStopping({ mode: 'up' as never })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    model.dispose();
    tf.dispose([train.x, train.y]);
  });

  it('progressBar draws on a terminal and stays silent elsewhere', async () => {
    const model = Model.create(small(), { seed: 9 });
    const train = blobs(40, 10);
    const tty: string[] = [];
    const pipe: string[] = [];
    await fit(model, train, {
      loss: 'softmaxCrossEntropy',
      epochs: 2,
      batchSize: 10,
      callbacks: [progressBar({ stream: { isTTY: true, columns: 120, write: (t: string) => tty.push(t) } }), progressBar({ stream: { isTTY: false, write: (t: string) => pipe.push(t) } })],
    });
    expect(pipe).toEqual([]);
    expect(tty.some((t) => t.startsWith('\repoch 1/2 [') && t.includes('1/4'))).toBe(true);
    expect(tty.filter((t) => t.endsWith('\n'))).toHaveLength(2);
    model.dispose();
    tf.dispose([train.x, train.y]);
  });
});
