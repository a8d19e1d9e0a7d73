import { Command } from 'commander';
import { Model, evaluate, lenet300100, lenet5, type GraphDef } from '@rs/core';
import { backendOptions, common, type Runner } from '../command';
import { disposeData, inputShapeOf, loadData, type LoadedData } from '../data';
import { int, percent } from '../format';
import { list, number } from '../options';
import { checkOutputPath, loadModel, saveModel, setupBackend } from '../runtime';
import { trainWithProgress } from '../training';
import { usage } from '../errors';

const BUILT_IN = ['lenet300100', 'lenet5', 'mlp'];

function buildGraph(name: string, hiddenText: string | undefined, data: { sample: number[]; classes: number }): GraphDef {
  const hidden = list(hiddenText)?.map((h) => number('--hidden', h, { integer: true, min: 1 }));
  if (hidden !== undefined && hidden.length !== 2) throw usage(`--hidden takes two widths (e.g. 300,100), got '${hiddenText}'.`);
  if (name === 'lenet300100') return lenet300100({ hidden: hidden as [number, number] | undefined, classes: data.classes });
  if (name === 'lenet5') {
    if (hidden !== undefined) return lenet5({ hidden: hidden as [number, number], classes: data.classes });
    return lenet5({ classes: data.classes });
  }
  // mlp: LeNet-300-100's shape (two hidden ReLU layers) sized for the data set.
  return lenet300100({ inputs: data.sample.reduce((a, b) => a * b, 1), hidden: (hidden as [number, number] | undefined) ?? [64, 64], classes: data.classes });
}

export function trainCommand(run: Runner): Command {
  const command = new Command('train')
    .description('train a built-in architecture or a saved model, and save it')
    .requiredOption('--model <name|file.rsm>', `${BUILT_IN.join(', ')}, or a saved model to train further`)
    .option('--data <name>', 'mnist (8,000 train / 2,000 test digits) or spirals', 'mnist')
    .requiredOption('--out <file.rsm>', 'where to save the trained model')
    .option('--epochs <n>', 'passes over the training data', '5')
    .option('--batch-size <n>', 'rows per step', '128')
    .option('--lr <rate>', 'Adam learning rate', '0.002')
    .option('--seed <n>', 'seed of initialization and shuffling', '0')
    .option('--hidden <a,b>', 'hidden widths of lenet300100 / lenet5 / mlp (mlp default 64,64)')
    .option('--train-size <n>', 'use only the first n training rows')
    .option('--test-size <n>', 'use only the first n test rows');
  backendOptions(common(command));
  return command.action(
    run(async (context, _args, options) => {
      const epochs = number('--epochs', options.epochs, { integer: true, min: 1 });
      const batchSize = number('--batch-size', options.batchSize, { integer: true, min: 1 });
      const learningRate = number('--lr', options.lr, { min: 0 });
      const seed = number('--seed', options.seed, { integer: true, min: 0 });
      const fromFile = !BUILT_IN.includes(options.model);
      if (fromFile && !/\.rsm$/i.test(options.model)) throw usage(`--model must be one of ${BUILT_IN.join(', ')} or a .rsm file; got '${options.model}'.`);
      checkOutputPath(context.cwd, options.out); // before training: the directory must exist
      const backend = await setupBackend(options.backend, options.threads);
      const started = performance.now();
      let model: Model | undefined;
      let data: LoadedData | undefined;
      try {
        if (fromFile) {
          model = await loadModel(context.cwd, options.model, options.plugin);
          data = loadData(options.data, inputShapeOf(model), options);
        } else {
          const probe = options.data === 'spirals' ? { sample: [2], classes: 2 } : { sample: options.model === 'lenet5' ? [28, 28, 1] : [784], classes: 10 };
          const graph = buildGraph(options.model, options.hidden, probe);
          data = loadData(options.data, graph.inputs[0].shape, options);
          model = Model.create(graph, { seed });
        }
        const counts = model.counts();
        context.note(`${options.model} on ${data.name}: ${int(data.train.count)} train / ${int(data.test.count)} test rows, backend ${backend}, ${int(counts.params)} parameters`);
        const history = await trainWithProgress(context, model, data.train, { epochs, batchSize, learningRate, seed, label: 'train' });
        const test = evaluate(model, { x: data.test.x, y: data.test.y });
        const out = await saveModel(context.cwd, model, options.out);
        const seconds = (performance.now() - started) / 1000;
        context.out(`test accuracy: ${percent(test.accuracy)} on ${int(data.test.count)} held-out rows (loss ${test.loss.toFixed(4)})`);
        context.out(`parameters: ${int(counts.params)}  FLOPs per sample: ${int(counts.flops)}  time: ${seconds.toFixed(1)} s`);
        context.out(`saved ${options.out}`);
        context.emitJson({
          command: 'train',
          model: options.model,
          data: { name: data.name, source: data.source, trainRows: data.train.count, testRows: data.test.count },
          settings: { epochs, batchSize, learningRate, seed, backend },
          history,
          test,
          counts: { params: counts.params, nonzeroParams: counts.nonzeroParams, flops: counts.flops },
          seconds,
          out,
        });
      } finally {
        model?.dispose();
        disposeData(data);
      }
    }),
  );
}
