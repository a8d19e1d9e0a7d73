import { Command } from 'commander';
import { common, type Runner } from '../command';
import { usage } from '../errors';
import { int } from '../format';
import { checkOutputPath, isOnnxPath, loadModel, saveModel, setupBackend } from '../runtime';

export function importCommand(run: Runner): Command {
  const command = new Command('import')
    .description('import an ONNX model (e.g. exported by PyTorch) and save it as a model file')
    .argument('<model.onnx>', 'an ONNX model')
    .requiredOption('--out <model.rsm>', 'where to save the imported model')
    .option('--fuse-batch-norm', 'fold each BatchNormalization into the convolution before it');
  common(command);
  return command.action(
    run(async (context, [path], options) => {
      if (!isOnnxPath(path)) throw usage(`${path}: rs import reads ONNX files (.onnx).`, { path });
      checkOutputPath(context.cwd, options.out);
      await setupBackend('cpu');
      const model = await loadModel(context.cwd, path, options.plugin, { fuseBatchNorm: options.fuseBatchNorm === true });
      try {
        const counts = model.counts();
        const out = await saveModel(context.cwd, model, options.out);
        const graph = model.graph;
        context.emitJson({ command: 'import', in: path, out, nodes: graph.nodes.length, params: counts.params, flops: counts.flops, inputs: graph.inputs, outputs: graph.outputs, groups: model.groups().filter((g) => !g.frozen).length });
        context.out(`imported ${path}: ${graph.nodes.length} nodes, ${int(counts.params)} parameters, ${int(counts.flops)} FLOPs per sample; inputs ${graph.inputs.map((i) => `${i.id} [${i.shape.map((d) => d ?? '?').join(', ')}]`).join(', ')}`);
        context.out(`wrote ${options.out}`);
      } finally {
        model.dispose();
      }
    }),
  );
}
