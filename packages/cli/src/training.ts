import { adam, fit, type Model } from '@rs/core';
import type { Context } from './io';
import { createProgress } from './progress';
import type { Split } from './data';

export interface TrainSettings {
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  /** Label of the progress bar. */
  label: string;
}

/** Trains with Adam and softmax cross-entropy, drawing progress; returns the mean loss per epoch. */
export async function trainWithProgress(context: Context, model: Model, train: Split, settings: TrainSettings): Promise<{ epoch: number; loss: number }[]> {
  const stepsPerEpoch = Math.ceil(train.count / settings.batchSize);
  const progress = createProgress(context, { label: settings.label, total: settings.epochs * stepsPerEpoch, unit: 'steps' });
  const epochs: { epoch: number; loss: number }[] = [];
  try {
    await fit(
      model,
      { x: train.x, y: train.y },
      {
        loss: 'softmaxCrossEntropy',
        optimizer: adam({ learningRate: settings.learningRate }),
        epochs: settings.epochs,
        batchSize: settings.batchSize,
        seed: settings.seed,
        callbacks: [
          {
            onStepEnd: (info) => progress.update(info.step, `epoch ${info.epoch + 1}/${settings.epochs} loss ${info.loss.toFixed(4)}`),
            onEpochEnd: (info) => {
              epochs.push({ epoch: info.epoch + 1, loss: info.loss });
              progress.milestone(info.step, `epoch ${info.epoch + 1}/${settings.epochs} loss ${info.loss.toFixed(4)}`);
            },
          },
        ],
      },
    );
  } finally {
    progress.stop();
  }
  return epochs;
}
