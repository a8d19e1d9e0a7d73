import { Model, RsError, adam, evaluate, fit, type Dataset, type GraphDef, type OpRegistry } from '@rs/core';
import { defineSpace, type Architecture, type SearchSpace } from './space';
import type { EvaluationContext, EvaluationResult, Evaluator } from './search';

/** Options of {@link trainingEvaluator}. */
export interface TrainingEvaluatorOptions {
  /** Graph of an architecture (default: the space's `build`). */
  build?: (arch: Architecture) => GraphDef;
  /** Registry with the ops the graphs use (e.g. `registerNasOps(createOpRegistry())`). */
  registry?: OpRegistry;
  train: Dataset;
  validation: Dataset;
  /** Reported only. */
  test?: Dataset;
  /** Training budget per architecture. Default 1 epoch; a trial's fidelity (ASHA) overrides it. */
  epochs?: number;
  /** Caps the optimizer steps per architecture (the budget in steps). */
  maxSteps?: number;
  batchSize?: number;
  learningRate?: number;
  /** Seed of initialization and shuffling (the same for every architecture). Default 0. */
  seed?: number;
}

/**
 * An evaluator that really trains each architecture (Adam, softmax cross-entropy) under a fixed
 * budget and scores it by validation accuracy (%); test accuracy is reported when `test` is
 * given; the cost is the measured wall time. The caller picks the backend.
 *
 * @example
 * const evaluator = trainingEvaluator(mnistMlpSpace(), { train, validation, epochs: 1 });
 */
export function trainingEvaluator(space: SearchSpace, options: TrainingEvaluatorOptions): Evaluator {
  const build = options.build ?? space.build;
  if (!build) throw new RsError('INVALID_ARGUMENT', `space '${space.name}' cannot build graphs; pass options.build.`, { space: space.name });
  return {
    async evaluate(arch: number[], _encoded?: string, context?: EvaluationContext): Promise<EvaluationResult> {
      const started = performance.now();
      const model = Model.create(build(arch), { seed: options.seed ?? 0, registry: options.registry });
      try {
        await fit(model, options.train, {
          loss: 'softmaxCrossEntropy',
          optimizer: adam({ learningRate: options.learningRate ?? 1e-3 }),
          epochs: context?.fidelity ?? options.epochs ?? 1,
          maxSteps: options.maxSteps,
          batchSize: options.batchSize ?? 64,
          seed: options.seed ?? 0,
        });
        const result: EvaluationResult = { validation: 100 * evaluate(model, options.validation).accuracy };
        if (options.test) result.test = 100 * evaluate(model, options.test).accuracy;
        result.cost = (performance.now() - started) / 1000;
        return result;
      } finally {
        model.dispose();
      }
    },
  };
}

const WIDTHS = ['32', '64', '128', '256'];
const ACTIVATIONS = ['relu', 'tanh', 'gelu'];

/**
 * A small trainable MLP space for MNIST (flattened 784 inputs): 1-3 hidden layers, each with its
 * own width and activation (3 x (4 x 3)^3 = 5,184 architectures; deeper layers' choices are
 * ignored when the network is shallower, as in NNI's conditional choices).
 *
 * @example
 * const space = mnistMlpSpace();
 * const graph = space.build!(space.decode('depth=2,width1=128,act1=relu,width2=64,act2=tanh,width3=32,act3=relu'));
 */
export function mnistMlpSpace(): SearchSpace {
  return defineSpace({
    name: 'mnist-mlp',
    choices: [
      { name: 'depth', options: ['1', '2', '3'] },
      { name: 'width1', options: WIDTHS },
      { name: 'act1', options: ACTIVATIONS },
      { name: 'width2', options: WIDTHS },
      { name: 'act2', options: ACTIVATIONS },
      { name: 'width3', options: WIDTHS },
      { name: 'act3', options: ACTIVATIONS },
    ],
    build(arch) {
      const depth = arch[0] + 1;
      const nodes: GraphDef['nodes'] = [];
      let previous = 'x';
      for (let layer = 1; layer <= depth; layer++) {
        const units = Number(WIDTHS[arch[2 * layer - 1]]);
        nodes.push(
          { id: `fc${layer}`, op: 'dense', inputs: [previous], attrs: { units } },
          { id: `act${layer}`, op: ACTIVATIONS[arch[2 * layer]], inputs: [`fc${layer}`], attrs: {} },
        );
        previous = `act${layer}`;
      }
      nodes.push({ id: 'out', op: 'dense', inputs: [previous], attrs: { units: 10 } });
      return { inputs: [{ id: 'x', shape: [null, 784], dtype: 'float32' }], nodes, outputs: ['out'] };
    },
  });
}
