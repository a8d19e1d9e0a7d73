import { Command } from 'commander';
import { tf, type Model, type Tensor } from '@rs/core';
import { NET2NET_SPLITS, deepen, growGradMax, widen } from '@rs/grow';
import { backendOptions, common, type Runner } from '../command';
import { disposeData, inputShapeOf, loadData, type LoadedData } from '../data';
import { usage } from '../errors';
import { change, int } from '../format';
import { choice, number } from '../options';
import { checkOutputPath, loadModel, saveModel, setupBackend } from '../runtime';

const METHODS = ['net2net', 'gradmax', 'zeros'] as const;

/** A seeded probe batch of the model's input shape (real rows where data was given). */
function probeInput(model: Model, data: LoadedData | undefined): Tensor {
  if (data) return tf.slice(data.test.x, 0, Math.min(64, data.test.count));
  const shape = inputShapeOf(model).map((d) => (d === null ? 64 : d));
  return tf.randomUniform(shape, 0, 1, 'float32', 1);
}

/** Largest |difference| between the model's (first) output before and after a change. */
function maxDiff(a: Tensor, b: Tensor): number {
  if (a.shape.join(',') !== b.shape.join(',')) return Number.NaN;
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

export function growCommand(run: Runner): Command {
  const command = new Command('grow')
    .description('grow: widen a unit group (Net2Net, GradMax, zeros) or deepen after a node')
    .argument('<model.rsm>', 'a saved model')
    .requiredOption('--out <file.rsm>', 'where to save the grown model')
    .option('--group <id>', 'unit group to widen (see rs inspect)')
    .option('--units <n>', 'units to add to --group')
    .option('--method <name>', `${METHODS.join(', ')} (gradmax needs --data)`, 'net2net')
    .option('--deepen <node>', 'insert an identity layer + ReLU after this node (Net2DeeperNet)')
    .option('--split <how>', `net2net: how a unit's outgoing weights are shared with its copies: ${NET2NET_SPLITS.join(', ')} (all exact; even-split copies never diverge under training)`, 'random')
    .option('--noise <std>', 'net2net: noise on the copies (breaks symmetry; not function-preserving)', '0')
    .option('--seed <n>', 'net2net: seed of the copied units', '0')
    .option('--data <name>', 'mnist or spirals: gradmax statistics, and the probe rows for the output check')
    .option('--train-size <n>', 'use only the first n training rows')
    .option('--test-size <n>', 'use only the first n test rows');
  backendOptions(common(command), 'cpu');
  return command.action(
    run(async (context, [path], options) => {
      const method = choice('--method', options.method, METHODS);
      const widening = options.group !== undefined || options.units !== undefined;
      if (!widening && options.deepen === undefined) throw usage('Nothing to grow: give --group and --units, or --deepen <node>.');
      if (widening && (options.group === undefined || options.units === undefined)) throw usage('Widening needs both --group and --units.');
      const count = widening ? number('--units', options.units, { integer: true, min: 1 }) : 0;
      const noise = number('--noise', options.noise, { min: 0 });
      const split = choice('--split', options.split, NET2NET_SPLITS);
      const seed = number('--seed', options.seed, { integer: true, min: 0 });
      if (method === 'gradmax' && widening && options.data === undefined) throw usage('--method gradmax needs --data (its gradient statistics come from training rows).');
      checkOutputPath(context.cwd, options.out);
      await setupBackend(options.backend, options.threads);
      const model = await loadModel(context.cwd, path, options.plugin);
      let data: LoadedData | undefined;
      const owned: Tensor[] = [];
      try {
        if (options.data !== undefined) data = loadData(options.data, inputShapeOf(model), options);
        const probe = probeInput(model, data);
        owned.push(probe);
        const outputBefore = model.apply(probe);
        owned.push(outputBefore);
        const before = model.counts();
        const steps: Record<string, unknown>[] = [];
        if (widening) {
          const sizeBefore = model.group(options.group).size;
          if (method === 'net2net') {
            widen(model, options.group, count, { seed, noise, split, reason: `rs grow --group ${options.group} --units ${count} (net2net, ${split} split)` });
          } else if (method === 'gradmax') {
            const rows = Math.min(256, (data as LoadedData).train.count);
            const x = tf.slice((data as LoadedData).train.x, 0, rows);
            const y = tf.slice((data as LoadedData).train.y, 0, rows);
            try {
              growGradMax(model, options.group, count, { batch: { x, y }, reason: `rs grow --group ${options.group} --units ${count} (gradmax)` });
            } finally {
              tf.dispose([x, y]);
            }
          } else {
            model.edit((tx) => tx.insertUnits(options.group, count), { technique: 'grow', reason: `rs grow --group ${options.group} --units ${count} (zero fan-out)` });
          }
          steps.push({ kind: 'widen', group: options.group, method, units: count, sizeBefore, sizeAfter: model.group(options.group).size });
        }
        if (options.deepen !== undefined) {
          const { nodes } = deepen(model, options.deepen, { reason: `rs grow --deepen ${options.deepen}` });
          steps.push({ kind: 'deepen', after: options.deepen, nodes });
        }
        model.resetOptimizerState();
        const outputAfter = model.apply(probe);
        owned.push(outputAfter);
        const diff = maxDiff(outputBefore, outputAfter);
        const after = model.counts();
        const out = await saveModel(context.cwd, model, options.out);
        context.emitJson({
          command: 'grow',
          in: path,
          out,
          steps,
          before: { params: before.params, nonzeroParams: before.nonzeroParams, flops: before.flops },
          after: { params: after.params, nonzeroParams: after.nonzeroParams, flops: after.flops },
          outputCheck: { rows: probe.shape[0], source: data ? `${data.name} test rows` : 'seeded uniform [0, 1) inputs', maxAbsDiff: diff },
        });
        if (context.json) return;
        for (const s of steps) {
          if (s.kind === 'widen') context.out(`widened ${String(s.group)}: ${String(s.sizeBefore)} -> ${String(s.sizeAfter)} units (${String(s.method)})`);
          else context.out(`deepened after ${String(s.after)}: added ${(s.nodes as string[]).join(', ')}`);
        }
        context.out(`parameters ${change(before.params, after.params)}, FLOPs per sample ${change(before.flops, after.flops)}`);
        context.out(`outputs before vs after on ${int(probe.shape[0])} ${data ? `${data.name} test rows` : 'random inputs'}: max |difference| ${diff.toExponential(2)}`);
        context.out(`saved ${options.out}`);
      } finally {
        tf.dispose(owned);
        model.dispose();
        disposeData(data);
      }
    }),
  );
}
