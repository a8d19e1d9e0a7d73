import { Command } from 'commander';
import { evaluate, type Model } from '@rs/core';
import { pruneUnits, pruneWeights, pruneReport, prunableParams, defaultScores } from '@rs/prune';
import { backendOptions, common, type Runner } from '../command';
import { disposeData, inputShapeOf, loadData, type LoadedData } from '../data';
import { usage } from '../errors';
import { change, int, percent, table } from '../format';
import { choice, list, number } from '../options';
import { checkOutputPath, loadModel, saveModel, setupBackend } from '../runtime';
import { trainWithProgress } from '../training';

/** Zero weights among `params` (after masks): the sparsity pruneWeights aims at. */
function sparsityOf(model: Model, params: string[]): { zero: number; total: number } {
  let zero = 0;
  let total = 0;
  for (const key of params) {
    const entry = model.param(key);
    total += entry.value.size;
    if (entry.mask) {
      const mask = entry.mask.dataSync();
      for (let i = 0; i < mask.length; i++) if (mask[i] === 0) zero += 1;
    }
  }
  return { zero, total };
}

export function pruneCommand(run: Runner): Command {
  const command = new Command('prune')
    .description('prune: remove units (--units) and/or mask weights (--sparsity), fine-tune')
    .argument('<model.rsm>', 'a saved model')
    .requiredOption('--out <file.rsm>', 'where to save the pruned model')
    .option('--sparsity <s>', 'fraction of the selected weights masked to zero, in [0, 1)')
    .option('--scope <scope>', 'weights: global (one ranking) or layer (each parameter reaches --sparsity)', 'global')
    .option('--score <name>', 'importance score: l1, l2, random (taylor, taylorGroup, snip need --data; gate too, with --units only)', 'l1')
    .option('--params <keys>', 'weights to mask, comma-separated (default: every trainable kernel)')
    .option('--units <fraction>', 'fraction of each unit group removed physically, in [0, 1)')
    .option('--groups <ids>', 'unit groups for --units, comma-separated (default: every editable group)')
    .option('--fine-tune-epochs <n>', 'epochs of training after pruning (needs --data)', '0')
    .option('--data <name>', 'mnist or spirals: accuracy before/after, fine-tuning, data-driven scores')
    .option('--batch-size <n>', 'fine-tuning batch size', '128')
    .option('--lr <rate>', 'fine-tuning Adam learning rate', '0.001')
    .option('--seed <n>', 'fine-tuning seed', '0')
    .option('--train-size <n>', 'use only the first n training rows')
    .option('--test-size <n>', 'use only the first n test rows');
  backendOptions(common(command));
  return command.action(
    run(async (context, [path], options) => {
      const sparsity = number('--sparsity', options.sparsity, { min: 0, below: 1 }, true);
      const units = number('--units', options.units, { min: 0, below: 1 }, true);
      if (sparsity === undefined && units === undefined) throw usage('Nothing to prune: give --sparsity and/or --units.');
      const scope = choice('--scope', options.scope, ['global', 'layer'] as const);
      const fineTuneEpochs = number('--fine-tune-epochs', options.fineTuneEpochs, { integer: true, min: 0 });
      if (fineTuneEpochs > 0 && options.data === undefined) throw usage('--fine-tune-epochs needs --data.');
      const batchSize = number('--batch-size', options.batchSize, { integer: true, min: 1 });
      const learningRate = number('--lr', options.lr, { min: 0 });
      const seed = number('--seed', options.seed, { integer: true, min: 0 });
      const score = defaultScores.get(choice('--score', options.score, defaultScores.names()));
      if (score.needsData && options.data === undefined) throw usage(`--score ${score.name} needs --data (it scores weights with gradients of training rows).`);
      checkOutputPath(context.cwd, options.out);
      await setupBackend(options.backend, options.threads);
      const model = await loadModel(context.cwd, path, options.plugin);
      let data: LoadedData | undefined;
      try {
        if (options.data !== undefined) data = loadData(options.data, inputShapeOf(model), options);
        const test = data ? { x: data.test.x, y: data.test.y } : undefined;
        const accuracy: Record<string, number> = {};
        if (test) accuracy.before = evaluate(model, test).accuracy;
        const before = model.counts();
        const groupSizes = new Map(model.groups().map((g) => [g.id, g.size]));
        const context_ = data ? { batches: [{ x: data.train.x, y: data.train.y }] } : undefined;
        let removed: Record<string, number[]> = {};
        if (units !== undefined) {
          ({ removed } = pruneUnits(model, { fraction: units, groups: list(options.groups), score: options.score, context: context_, reason: `rs prune --units ${units}` }));
          model.resetOptimizerState();
        }
        const params = list(options.params) ?? prunableParams(model);
        if (sparsity !== undefined) {
          pruneWeights(model, { sparsity, scope, score: options.score, params, context: context_, reason: `rs prune --sparsity ${sparsity} (${scope})` });
        }
        if (test) accuracy.pruned = evaluate(model, test).accuracy;
        let fineTune: { epoch: number; loss: number }[] | undefined;
        if (data && fineTuneEpochs > 0) {
          model.resetOptimizerState();
          fineTune = await trainWithProgress(context, model, data.train, { epochs: fineTuneEpochs, batchSize, learningRate, seed, label: 'fine-tune' });
          if (test) accuracy.fineTuned = evaluate(model, test).accuracy;
        }
        const after = model.counts();
        const weights = sparsityOf(model, params);
        const report = pruneReport(model);
        const out = await saveModel(context.cwd, model, options.out);
        const groups = Object.entries(removed).map(([id, list_]) => ({ group: id, before: groupSizes.get(id) ?? 0, removed: list_.length, after: model.group(id).size }));
        context.emitJson({
          command: 'prune',
          in: path,
          out,
          settings: { sparsity, scope, score: options.score, units, groups: list(options.groups), fineTuneEpochs },
          groups,
          weights: { params, zero: weights.zero, total: weights.total, sparsity: weights.total ? weights.zero / weights.total : 0 },
          layers: report.layers,
          before: { params: before.params, nonzeroParams: before.nonzeroParams, flops: before.flops },
          after: { params: after.params, nonzeroParams: after.nonzeroParams, flops: after.flops },
          accuracy,
          fineTune,
        });
        if (context.json) return;
        for (const g of groups) context.out(`removed ${g.removed} of ${g.before} units of ${g.group} (now ${g.after})`);
        if (sparsity !== undefined) context.out(`masked ${int(weights.zero)} of ${int(weights.total)} weights (${percent(weights.zero / weights.total, 1)}) in ${params.join(', ')}`);
        for (const line of table(
          ['layer', 'params', 'non-zero', 'sparsity', 'FLOPs'],
          report.layers.map((l) => [l.node, int(l.params), int(l.nonzeroParams), percent(l.sparsity, 1), int(l.flops)]),
          [1, 2, 3, 4],
        ))
          context.out(line);
        context.out(`parameters ${change(before.params, after.params)}, non-zero ${change(before.nonzeroParams, after.nonzeroParams)}, FLOPs per sample ${change(before.flops, after.flops)}`);
        if (test) {
          const parts = [`before ${percent(accuracy.before)}`, `after pruning ${percent(accuracy.pruned)}`];
          if (accuracy.fineTuned !== undefined) parts.push(`after ${fineTuneEpochs} fine-tuning epoch(s) ${percent(accuracy.fineTuned)}`);
          context.out(`test accuracy: ${parts.join(', ')} (${int(data?.test.count ?? 0)} rows)`);
        }
        context.out(`saved ${options.out}`);
      } finally {
        model.dispose();
        disposeData(data);
      }
    }),
  );
}
