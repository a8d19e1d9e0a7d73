// The setup module of @rs/online's worker process under `rs serve`: the same backend and op
// registry as the serving process, from the settings it passes in RS_SERVE_SETUP.
import { createRegistry, setupBackend } from './runtime';

/** Installs the backend and returns the registry (called by @rs/online's worker process). */
export async function setup(): Promise<unknown> {
  const config = JSON.parse(process.env.RS_SERVE_SETUP ?? '{}') as { backend?: string; threads?: string; cwd?: string; plugins?: string[] };
  await setupBackend(config.backend ?? 'wasm', config.threads);
  return createRegistry(config.cwd ?? process.cwd(), config.plugins ?? []);
}
