// The functions tfjs-backend-wasm's BackendWasm calls on its Emscripten module (`module.tfjs`),
// attached to a module this package started itself (the Node thread loader, the inference
// runtime) as the stock loader does to its own.

/** An Emscripten module of tfjs-backend-wasm. */
export type EmscriptenModule = Record<string, any> & { cwrap: (...args: unknown[]) => unknown };

/** Adds `module.tfjs`, the API BackendWasm expects; returns the module. */
export function attachTfjsApi(module: EmscriptenModule): EmscriptenModule {
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  return module;
}
