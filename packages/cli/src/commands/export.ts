import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command } from 'commander';
import type { Model } from '@rs/core';
import { common, type Runner } from '../command';
import { CliError } from '../errors';
import { int } from '../format';
import { choice, list, number } from '../options';
import { loadModel, resolvePath, setupBackend } from '../runtime';

/** The part of @rs/onnx the CLI uses. */
interface OnnxApi {
  toOnnx(model: Model, options?: { opset?: number; batch?: number; outputs?: string[]; name?: string }): Uint8Array;
}

/** Loaded on first use: @rs/onnx is only needed by `rs export`. */
async function onnx(): Promise<OnnxApi> {
  const module = (await import('@rs/onnx')) as unknown as Partial<OnnxApi>;
  if (typeof module.toOnnx !== 'function') {
    throw new CliError('MISSING_PACKAGE', 'This build of @rs/onnx has no toOnnx(): update @rs/onnx.', { package: '@rs/onnx' });
  }
  return module as OnnxApi;
}

export function exportCommand(run: Runner): Command {
  const command = new Command('export')
    .description('export a saved model to ONNX')
    .argument('<model.rsm>', 'a saved model')
    .requiredOption('--out <file>', 'where to write the exported model')
    .option('--format <name>', 'onnx', 'onnx')
    .option('--opset <n>', 'ONNX opset version (default: the exporter\'s)')
    .option('--batch <n>', 'fixed batch size (default: dynamic)')
    .option('--outputs <ids>', 'graph outputs to export, comma-separated (default: all)')
    .option('--name <name>', 'graph name in the exported file');
  common(command);
  return command.action(
    run(async (context, [path], options) => {
      choice('--format', options.format, ['onnx'] as const);
      const opset = number('--opset', options.opset, { integer: true, min: 1 }, true);
      const batch = number('--batch', options.batch, { integer: true, min: 1 }, true);
      await setupBackend('cpu');
      const model = await loadModel(context.cwd, path, options.plugin);
      try {
        const { toOnnx } = await onnx();
        const exportOptions: Parameters<OnnxApi['toOnnx']>[1] = {};
        if (opset !== undefined) exportOptions.opset = opset;
        if (batch !== undefined) exportOptions.batch = batch;
        if (options.outputs !== undefined) exportOptions.outputs = list(options.outputs);
        if (options.name !== undefined) exportOptions.name = options.name;
        const bytes = toOnnx(model, exportOptions);
        const out = resolvePath(context.cwd, options.out);
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, bytes);
        context.emitJson({ command: 'export', in: path, out, format: 'onnx', bytes: bytes.byteLength, options: exportOptions });
        context.out(`wrote ${options.out} (ONNX, ${int(bytes.byteLength)} bytes${opset !== undefined ? `, opset ${opset}` : ''})`);
      } finally {
        model.dispose();
      }
    }),
  );
}
