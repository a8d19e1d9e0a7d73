// Entry of the worker process (forked by src/worker-pool.ts): it installs a backend through the
// server's setup module, then prepares one change per 'prepare' message (src/prepare.ts) and
// answers with the result. It never writes to the store: only the serving process commits.
import { pathToFileURL } from 'node:url';
import type { OpRegistry } from '@rs/core';
import { prepareChange, serializeError, type PrepareRequest } from './prepare';

/** The first message: where the setup module is (it installs a backend, may return a registry). */
export interface SetupMessage {
  type: 'setup';
  module: string;
}

let registry: OpRegistry | undefined;

async function setup(message: SetupMessage): Promise<void> {
  const url = message.module.startsWith('file:') ? message.module : pathToFileURL(message.module).href;
  const loaded = (await import(url)) as { setup?: () => unknown; default?: () => unknown };
  const run = loaded.setup ?? loaded.default;
  if (typeof run !== 'function') throw new Error(`${message.module} exports no setup() function`);
  const result = await run();
  if (result !== undefined && result !== null) registry = result as OpRegistry;
}

function send(message: unknown): void {
  process.send?.(message);
}

if (process.send !== undefined) {
  let queue = Promise.resolve();
  process.on('message', (message: SetupMessage | PrepareRequest) => {
    queue = queue.then(async () => {
      if (message.type === 'setup') {
        try {
          await setup(message);
          send({ type: 'ready' });
        } catch (error) {
          send({ type: 'setupFailed', error: serializeError(error) });
        }
        return;
      }
      try {
        send(await prepareChange(message, registry, (stage) => send({ type: 'progress', id: message.id, stage })));
      } catch (error) {
        send({ type: 'failed', id: message.id, error: serializeError(error) });
      }
    });
  });
  process.on('disconnect', () => process.exit(0));
}
