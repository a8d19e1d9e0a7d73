import { Command } from 'commander';
import { Model, adam, evaluate, fit, tf, type Dataset, type Tensor } from '@rs/core';
import { mnistMlpSpace, nb201Space, search, type Evaluator, type SearchSpace } from '@rs/nas';
import { fileCheckpoint } from '@rs/nas/node';
import { queueEvaluator, type QueueEvaluator } from '@rs/nas-queue';
import { loadMnist, MNIST_PIXELS } from '@rs/datasets';
import { createSearchEvaluator, evaluatorName } from './search-evaluators';
import { backendOptions, common, type Runner } from '../command';
import { usage } from '../errors';
import { percent } from '../format';
import { choice, number } from '../options';
import { createProgress } from '../progress';
import { checkOutputPath, saveModel, setupBackend } from '../runtime';

const SPACES = ['nb201', 'mnist-mlp'] as const;
const STRATEGIES = ['random', 'evolution', 'reinforce'] as const;

export function searchCommand(run: Runner): Command {
  const command = new Command('search')
    .description('search architectures: NAS-Bench-201 (table) or an MNIST MLP space (real training)')
    .option('--space <name>', `${SPACES.join(' or ')}`, 'nb201')
    .option('--strategy <name>', STRATEGIES.join(', '), 'evolution')
    .option('--evaluations <n>', 'architectures to evaluate', '100')
    .option('--seed <n>', 'seed of the search (and of training in mnist-mlp)', '0')
    .option('--checkpoint <file.json>', 'save the search state after every round; an existing file resumes (rs report --search reads it)')
    .option('--epochs <n>', 'mnist-mlp: training epochs per architecture', '1')
    .option('--train-size <n>', 'mnist-mlp: training digits per architecture', '4000')
    .option('--validation-size <n>', 'mnist-mlp: held-out training digits that score an architecture', '1000')
    .option('--out <file.rsm>', 'mnist-mlp: train the best architecture again and save it')
    .option('--queue <redis-url>', 'run the trials on `rs worker` processes that listen at this Redis server (redis://host:port[/db]), on any machine')
    .option('--queue-name <name>', 'with --queue: the queue name (the workers\' --queue-name)', 'rs-nas')
    .option('--search-id <id>', 'with --queue: id of this search (job ids derive from it; run again with the same id and --checkpoint to resume)')
    .option('--parallel <n>', 'trials in flight (with --queue: the number of workers)', '1');
  backendOptions(common(command));
  return command.action(
    run(async (context, _args, options) => {
      const spaceName = choice('--space', options.space, SPACES);
      const strategy = choice('--strategy', options.strategy, STRATEGIES);
      const evaluations = number('--evaluations', options.evaluations, { integer: true, min: 1 });
      const seed = number('--seed', options.seed, { integer: true, min: 0 });
      const epochs = number('--epochs', options.epochs, { integer: true, min: 1 });
      const trainSize = number('--train-size', options.trainSize, { integer: true, min: 1, max: 7000 });
      const validationSize = number('--validation-size', options.validationSize, { integer: true, min: 1, max: 1000 });
      if (options.out !== undefined && spaceName !== 'mnist-mlp') throw usage('--out saves a trained architecture: it needs --space mnist-mlp (NAS-Bench-201 is a table of CIFAR-10 results).');
      if (options.out !== undefined) checkOutputPath(context.cwd, options.out);
      const checkpoint = options.checkpoint !== undefined ? checkOutputPath(context.cwd, options.checkpoint, '--checkpoint') : undefined;
      const parallel = number('--parallel', options.parallel, { integer: true, min: 1 });
      const name = evaluatorName(spaceName, { epochs, trainSize, validationSize, seed });
      const space: SearchSpace = spaceName === 'nb201' ? nb201Space() : mnistMlpSpace();
      let evaluator: Evaluator;
      let queue: QueueEvaluator | undefined;
      const tensors: Tensor[] = [];
      let train: Dataset | undefined;
      if (spaceName === 'mnist-mlp' && (options.queue === undefined || options.out !== undefined)) await setupBackend(options.backend, options.threads);
      if (options.queue !== undefined) {
        const searchId = String(options.searchId ?? `${spaceName}-${strategy}-seed${seed}`);
        if (options.out !== undefined) train = createSearchEvaluator(name, tensors).train;
        try {
          evaluator = queue = await queueEvaluator({ url: String(options.queue), queue: String(options.queueName), search: searchId, evaluator: name });
        } catch (error) {
          tf.dispose(tensors);
          throw error;
        }
      } else {
        ({ evaluator, train } = createSearchEvaluator(name, tensors));
      }
      const every = Math.max(1, Math.ceil(evaluations / 10));
      const progress = createProgress(context, { label: 'search', total: evaluations, unit: 'evaluations' });
      let best = -Infinity;
      const started = performance.now();
      try {
        const result = await search({
          space,
          strategy,
          evaluator,
          budget: { evaluations },
          seed,
          parallel,
          checkpoint: checkpoint !== undefined ? fileCheckpoint(checkpoint) : undefined,
          onTrial: (trial, index) => {
            best = Math.max(best, trial.validation);
            const text = `best validation ${best.toFixed(2)}`;
            if ((index + 1) % every === 0 || index + 1 === evaluations) progress.milestone(index + 1, text);
            else progress.update(index + 1, text);
          },
        });
        progress.stop();
        const wallSeconds = (performance.now() - started) / 1000;
        let saved: { out: string; testAccuracy: number } | undefined;
        if (options.out !== undefined && train) {
          const model = Model.create((space.build as NonNullable<SearchSpace['build']>)(result.best.arch), { seed });
          try {
            const { test } = loadMnist();
            const testX = tf.tensor2d(test.x, [test.count, MNIST_PIXELS]);
            const testY = tf.tensor1d(test.y, 'int32');
            tensors.push(testX, testY);
            await fit(model, train, { loss: 'softmaxCrossEntropy', optimizer: adam({ learningRate: 1e-3 }), epochs, batchSize: 64, seed });
            const testAccuracy = evaluate(model, { x: testX, y: testY }).accuracy;
            saved = { out: await saveModel(context.cwd, model, options.out), testAccuracy };
          } finally {
            model.dispose();
          }
        }
        context.emitJson({
          command: 'search',
          space: space.name,
          strategy: result.strategy,
          seed,
          evaluations: result.trials.length,
          resumed: result.resumed,
          seconds: result.seconds,
          wallSeconds,
          best: result.best,
          anytime: result.anytime,
          checkpoint: options.checkpoint,
          saved,
        });
        if (context.json) return;
        context.out(`${space.name}, ${result.strategy}, seed ${seed}: ${result.trials.length} evaluations${result.resumed ? ' (resumed from the checkpoint)' : ''}, ${wallSeconds.toFixed(1)} s${spaceName === 'nb201' ? ' (table lookups)' : ''}`);
        context.out(`best: ${result.best.encoded}`);
        context.out(`  validation ${result.best.validation.toFixed(2)}${result.best.test !== undefined ? `, test ${result.best.test.toFixed(2)}` : ''}${spaceName === 'nb201' ? ' (CIFAR-10 accuracy %, NAS-Bench-201 table)' : ' (MNIST accuracy %)'}`);
        if (saved) context.out(`trained again and saved ${options.out}: test accuracy ${percent(saved.testAccuracy)}`);
        if (options.checkpoint !== undefined) context.out(`checkpoint: ${options.checkpoint} (rs report <model> --search ${options.checkpoint})`);
      } finally {
        progress.stop();
        await queue?.close();
        tf.dispose(tensors);
      }
    }),
  );
}
