import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { OnlineServer, listen, type OnlineEvent, type PolicySpec } from '@rs/online';
import { backendOptions, common, type Runner } from '../command';
import { number } from '../options';
import { createRegistry, loadModel, resolvePath, setupBackend } from '../runtime';

/**
 * `rs serve model.rsm --dir served`: serves a model over HTTP with @rs/online (POST /predict,
 * POST /feedback, GET /health, GET /metrics), reorganizing it with the given policies, until
 * SIGINT or SIGTERM. A --dir that already holds versions resumes from the last accepted one.
 */
export function serveCommand(run: Runner): Command {
  const command = new Command('serve')
    .description('serve a model over HTTP and let it reorganize itself under live traffic (@rs/online), until interrupted')
    .argument('<model.rsm>', 'the initial model (ignored when --dir already holds versions)')
    .requiredOption('--dir <dir>', 'the store: every accepted version, the event journal, the version served')
    .option('--port <port>', 'HTTP port (0: any free port)', '8080')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--policies <list>', 'policies asked in order at each change (built-in names)', 'growOnNeed,pruneInactive,refresh')
    .option('--change-every <n>', 'prepare a change after this many labelled requests', '500');
  backendOptions(common(command));
  return command.action(
    run(async (context, [path], options) => {
      const port = number('--port', options.port, { integer: true, min: 0 });
      const changeEvery = number('--change-every', options.changeEvery, { integer: true, min: 1 });
      const policies = String(options.policies).split(',').filter((p) => p !== '') as PolicySpec[];
      const plugins = (options.plugin as string[] | undefined) ?? [];
      const backend = await setupBackend(options.backend, options.threads);
      const registry = await createRegistry(context.cwd, plugins);
      const model = await loadModel(context.cwd, path, plugins);
      // The worker process reads its backend and plugins from here (serve-setup.ts).
      process.env.RS_SERVE_SETUP = JSON.stringify({ backend, threads: options.threads, cwd: context.cwd, plugins });
      const onEvent = (e: OnlineEvent) => context.note(`rs serve: ${e.kind}${e.version !== undefined ? ` v${e.version}` : ''}, serving v${e.serving}${e.reason ? `: ${e.reason}` : ''}${e.error ? `: [${e.error.code}] ${e.error.message}` : ''}`);
      let server: OnlineServer;
      try {
        server = await OnlineServer.open(model, { dir: resolvePath(context.cwd, String(options.dir)), registry, policies, changeEvery, worker: { setup: fileURLToPath(new URL('./serve-setup.js', import.meta.url)) }, onEvent });
      } finally {
        model.dispose();
      }
      const http = await listen(server, { port, host: String(options.host) });
      context.out(`rs serve: version ${server.version} on http://${String(options.host)}:${http.port} (POST /predict, POST /feedback, GET /health, GET /metrics); stop with Ctrl-C`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await http.close();
      const version = server.version;
      const counters = { ...server.counters };
      await server.close();
      context.emitJson({ command: 'serve', version, ...counters });
      if (!context.json) context.out(`rs serve: stopped serving version ${version} (${counters.swaps} swaps, ${counters.rollbacks} rollbacks)`);
    }),
  );
}
