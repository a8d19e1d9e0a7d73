import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { RsError } from '@rs/core';
import { onnxSupport, toOnnx, type OnnxExportOptions } from '@rs/onnx';
import { common, type Runner } from '../command';
import { usage } from '../errors';
import { int, table } from '../format';
import { choice, list, number } from '../options';
import { checkOutputPath, loadModel, setupBackend } from '../runtime';

/** The opsets `toOnnx` writes (@rs/onnx: 17 to 21). */
export const ONNX_OPSETS = [17, 18, 19, 20, 21] as const;

export function exportCommand(run: Runner): Command {
  const command = new Command('export')
    .description('export a saved model to ONNX')
    .argument('<model.rsm>', 'a saved model')
    .option('--out <file.onnx>', 'where to write the exported model (required unless --check)')
    .option('--format <name>', 'onnx', 'onnx')
    .option('--opset <n>', `ONNX opset: ${ONNX_OPSETS.join(', ')}`, '17')
    .option('--batch <n>', 'fixed batch size (default: a dynamic batch dimension)')
    .option('--outputs <ids>', 'node ids to export as outputs, comma-separated (default: the model\'s outputs)')
    .option('--name <name>', 'graph name in the exported file')
    .option('--check', 'only report which nodes cannot be exported (exit 1 if any)');
  common(command);
  return command.action(
    run(async (context, [path], options) => {
      choice('--format', options.format, ['onnx'] as const);
      const opset = Number(choice('--opset', String(options.opset).trim(), ONNX_OPSETS.map(String)));
      const batch = number('--batch', options.batch, { integer: true, min: 1 }, true);
      if (options.out === undefined && !options.check) throw usage('--out <file.onnx> is required (or --check to only check support).');
      // Refused before loading anything: the directory must exist (nothing is created).
      const out = options.out !== undefined && !options.check ? checkOutputPath(context.cwd, options.out) : undefined;
      const exportOptions: OnnxExportOptions = { opset, batch: batch ?? 'dynamic' };
      if (options.outputs !== undefined) exportOptions.outputs = list(options.outputs);
      if (options.name !== undefined) exportOptions.name = options.name;
      await setupBackend('cpu');
      const model = await loadModel(context.cwd, path, options.plugin);
      try {
        if (options.check) {
          const support = onnxSupport(model, exportOptions);
          context.emitJson({ command: 'export', in: path, format: 'onnx', check: true, ...support });
          if (support.supported) context.out(`${path}: every node can be exported to ONNX (opset ${opset})`);
          else for (const line of table(['node', 'op', 'why not'], support.problems.map((p) => [p.node, p.op, p.reason]))) context.out(line);
          if (!support.supported) {
            throw new RsError('UNSUPPORTED_EXPORT', `${support.problems.length} node(s) of ${path} cannot be exported to ONNX: ${support.problems.map((p) => `${p.node} (${p.op})`).join(', ')}.`, { problems: support.problems });
          }
          return;
        }
        const bytes = toOnnx(model, exportOptions);
        writeFileSync(out as string, bytes);
        context.emitJson({ command: 'export', in: path, out, format: 'onnx', bytes: bytes.byteLength, opset, batch: exportOptions.batch, outputs: exportOptions.outputs ?? model.graph.outputs });
        context.out(`wrote ${options.out}: ONNX opset ${opset}, ${int(bytes.byteLength)} bytes, outputs ${(exportOptions.outputs ?? model.graph.outputs).join(', ')}, batch ${String(exportOptions.batch)}`);
      } finally {
        model.dispose();
      }
    }),
  );
}
