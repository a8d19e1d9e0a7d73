#!/usr/bin/env node
// rs-nas-worker: a queue worker process for @rs/nas-queue.
//   rs-nas-worker --queue redis://host:port --evaluator NAME=MODULE [--options JSON] [--queue-name rs-nas] [--lock-ms 30000] [--name ID]
import { isRsError } from '@rs/core';
import { startWorker, type EvaluatorModule } from './worker';

const USAGE = 'usage: rs-nas-worker --queue redis://host:port --evaluator NAME=MODULE [--evaluator ...] [--options JSON] [--queue-name NAME] [--lock-ms MS] [--name ID]';

function parse(argv: string[]): Parameters<typeof startWorker>[0] {
  const evaluators: Record<string, EvaluatorModule> = {};
  let url: string | undefined;
  let queue: string | undefined;
  let lockMs: number | undefined;
  let name: string | undefined;
  let options: unknown;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    i += 1;
    if (flag === '--queue') url = value;
    else if (flag === '--queue-name') queue = value;
    else if (flag === '--lock-ms') lockMs = Number(value);
    else if (flag === '--name') name = value;
    else if (flag === '--options') options = JSON.parse(value) as unknown;
    else if (flag === '--evaluator') {
      const at = value.indexOf('=');
      if (at <= 0) throw new Error(`--evaluator takes NAME=MODULE, got '${value}'`);
      evaluators[value.slice(0, at)] = { module: value.slice(at + 1) };
    } else throw new Error(`unknown option ${flag}`);
  }
  if (!url) throw new Error('--queue redis://host:port is required');
  if (options !== undefined) for (const spec of Object.values(evaluators)) spec.options = options;
  return { url, queue, lockMs, name, evaluators };
}

startWorker(parse(process.argv.slice(2))).then(
  (worker) => {
    console.log(`rs-nas-worker ${worker.name}: ready`);
    const stop = (): void => {
      void worker.close().then(() => process.exit(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  },
  (error: unknown) => {
    console.error(isRsError(error) ? error.message : `${(error as Error).message}\n${USAGE}`);
    process.exit(isRsError(error, 'QUEUE_UNREACHABLE') ? 3 : 2);
  },
);
