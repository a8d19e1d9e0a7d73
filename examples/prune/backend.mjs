// Backend choice shared by the pruning scripts: `--backend cpu|wasm|native`.
import { useBackend } from '@rs/core';
import { install as installCpu } from '@rs/backend-cpu';

let wasm;

/**
 * Installs the backend: `wasm` (@rs/backend-wasm), `native` (@rs/backend-native: needs its
 * compiled library) or `cpu` (@rs/backend-cpu, the reference). Without a choice: wasm when
 * @rs/backend-wasm can be imported, else cpu.
 */
export async function selectBackend(requested) {
  await installCpu({ activate: false });
  if (requested !== undefined && requested !== 'wasm' && requested !== 'cpu' && requested !== 'native') throw new Error(`--backend must be cpu, wasm or native, got ${requested}`);
  if (requested === 'native') {
    const native = await import('@rs/backend-native');
    await native.install();
    return 'native';
  }
  if (requested !== 'cpu') {
    try {
      wasm = await import('@rs/backend-wasm');
      await wasm.install({ activate: false });
      await useBackend('wasm');
      return 'wasm';
    } catch (error) {
      if (requested === 'wasm') throw error;
      console.log(`@rs/backend-wasm is not available (${error.message.split('\n')[0]}); using cpu`);
    }
  }
  await useBackend('cpu');
  return 'cpu';
}

/** Shuts the wasm backend's worker threads down so the process can exit. */
export function releaseBackend() {
  wasm?.shutdown?.();
}
