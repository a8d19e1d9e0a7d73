import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Command } from 'commander';
import type { Model, Tensor } from '@rs/core';
import { backendOptions, common, type Runner } from '../command';
import { CliError, usage } from '../errors';
import { int } from '../format';
import { disposeData, inputShapeOf, loadData, type LoadedData } from '../data';
import { checkFile, loadModel, resolvePath, setupBackend } from '../runtime';

/** The part of @rs/report the CLI uses. */
interface ReportApi {
  collectReport(model: Model, options?: { title?: string; data?: { x: Tensor; y?: Int32Array | number[] }; search?: unknown }): unknown;
  renderReport(data: unknown): string;
}

/** Loaded on first use; `renderReport` may live in the `@rs/report/node` entry. */
async function reportApi(): Promise<ReportApi> {
  const main = (await import('@rs/report')) as unknown as Partial<ReportApi>;
  let render = main.renderReport;
  if (typeof render !== 'function') {
    try {
      const node = (await import(/* @vite-ignore */ '@rs/report/node' as string)) as Partial<ReportApi>;
      render = node.renderReport;
    } catch {
      render = undefined;
    }
  }
  if (typeof main.collectReport !== 'function' || typeof render !== 'function') {
    throw new CliError('MISSING_PACKAGE', 'This build of @rs/report has no collectReport()/renderReport(): update @rs/report.', { package: '@rs/report' });
  }
  return { collectReport: main.collectReport, renderReport: render };
}

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
      const api = await reportApi();
      await setupBackend(options.backend, options.threads);
      const model = await loadModel(context.cwd, path, options.plugin);
      let data: LoadedData | undefined;
      try {
        if (options.data !== undefined) data = loadData(options.data, inputShapeOf(model), { testSize: options.testSize });
        const report = api.collectReport(model, {
          ...(options.title !== undefined ? { title: options.title } : {}),
          ...(data ? { data: { x: data.test.x, y: data.test.labels } } : {}),
          ...(search !== undefined ? { search } : {}),
        });
        let html: string | undefined;
        if (options.out !== undefined) {
          html = api.renderReport(report);
          const out = resolvePath(context.cwd, options.out);
          mkdirSync(dirname(out), { recursive: true });
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
