import { Command } from 'commander';
import { tf, type Tensor } from '@rs/core';
import { startWorker } from '@rs/nas-queue';
import { backendOptions, common, type Runner } from '../command';
import { number } from '../options';
import { setupBackend } from '../runtime';
import { createSearchEvaluator } from './search-evaluators';

/**
 * `rs worker --queue redis://host:port`: evaluates the trials that `rs search --queue` enqueues
 * (NAS-Bench-201 lookups, MNIST MLP training with the search's settings), one at a time, until
 * SIGINT or SIGTERM. Start as many as there are cores or machines.
 */
export function workerCommand(run: Runner): Command {
  const command = new Command('worker')
    .description('evaluate the trials of `rs search --queue` from a Redis job queue, until interrupted')
    .requiredOption('--queue <redis-url>', 'the Redis server of the queue (redis://host:port[/db])')
    .option('--queue-name <name>', 'the queue name (rs search --queue-name)', 'rs-nas')
    .option('--lock-ms <ms>', 'a job held by a worker that died goes to another worker after this long', '30000');
  backendOptions(common(command));
  return command.action(
    run(async (context, _args, options) => {
      const lockMs = number('--lock-ms', options.lockMs, { integer: true, min: 200 });
      await setupBackend(options.backend, options.threads);
      const tensors: Tensor[] = [];
      const worker = await startWorker({ url: String(options.queue), queue: String(options.queueName), lockMs, evaluators: (name) => createSearchEvaluator(name, tensors).evaluator });
      context.note(`rs worker ${worker.name}: taking trials from ${String(options.queue)} (queue ${String(options.queueName)}); stop with Ctrl-C`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await worker.close();
      tf.dispose(tensors);
      context.emitJson({ command: 'worker', name: worker.name, completed: worker.completed });
      if (!context.json) context.out(`rs worker ${worker.name}: ${worker.completed} trials evaluated`);
    }),
  );
}
