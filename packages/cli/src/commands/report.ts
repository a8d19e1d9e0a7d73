import { readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { collectReport } from '@rs/report';
import { renderReport } from '@rs/report/node';
import { backendOptions, common, type Runner } from '../command';
import { usage } from '../errors';
import { int } from '../format';
import { disposeData, inputShapeOf, loadData, type LoadedData } from '../data';
import { checkFile, checkOutputPath, loadModel, resolvePath, setupBackend } from '../runtime';

export function reportCommand(run: Runner): Command {
  const command = new Command('report')
    .description('write an HTML report (structure, journal, exit rates, expert load, search)')
    .argument('<model.rsm>', 'a saved model')
    .option('--out <file.html>', 'where to write the HTML page (required unless --json)')
    .option('--title <text>', 'page title')
    .option('--data <name>', 'mnist or spirals: held-out rows to measure exit rates and expert load on')
    .option('--test-size <n>', 'use only the first n test rows')
    .option('--search <checkpoint.json>', 'an @rs/nas search checkpoint or result (rs search --checkpoint) to chart');
  backendOptions(common(command));
  return command.action(
    run(async (context, [path], options) => {
      if (options.out === undefined && !context.json) throw usage('--out <file.html> is required (or --json to print the report data).');
      const out = options.out !== undefined ? checkOutputPath(context.cwd, options.out) : undefined;
      let search: unknown;
      if (options.search !== undefined) {
        const file = resolvePath(context.cwd, options.search);
        checkFile(file, 'Search checkpoint');
        try {
          search = JSON.parse(readFileSync(file, 'utf8'));
        } catch (cause) {
          throw usage(`--search ${options.search} is not valid JSON (${(cause as Error).message}).`);
        }
      }
      await setupBackend(options.backend, options.threads);
      const model = await loadModel(context.cwd, path, options.plugin);
      let data: LoadedData | undefined;
      try {
        if (options.data !== undefined) data = loadData(options.data, inputShapeOf(model), { testSize: options.testSize });
        const report = collectReport(model, {
          ...(options.title !== undefined ? { title: options.title } : {}),
          ...(data ? { data: { x: data.test.x, y: data.test.labels } } : {}),
          ...(search !== undefined ? { search } : {}),
        });
        let html: string | undefined;
        if (out !== undefined) {
          html = renderReport(report);
          writeFileSync(out, html);
          context.out(`wrote ${options.out} (${int(Buffer.byteLength(html))} bytes)`);
        }
        context.emitJson(report);
      } finally {
        model.dispose();
        disposeData(data);
      }
    }),
  );
}
