// Setup module of @rs/online's worker process in the online benchmarks: the same backend as the
// benchmark process, @rs/backend-wasm on one thread.
import { selectBackend } from './backends.mjs';

export async function setup() {
  await selectBackend('wasm', { threads: 1 });
}
