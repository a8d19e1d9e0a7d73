/**
 * @rs/backend-native: a TensorFlow.js backend for Node whose hot kernels run as native code: a
 * small C library (native/rsnative.c) compiled with the system compiler when the package is
 * installed and called through koffi, GEMM on a system BLAS found at run time (OpenBLAS, MKL,
 * BLIS, Apple Accelerate) or on the library's own blocked SIMD GEMM, OpenMP threads. Tensors
 * live in the typed arrays of tfjs-backend-cpu's storage, which native code reads and writes in
 * place; every kernel the native library lacks is tfjs-backend-cpu's, so every op and gradient
 * runs. See README for which kernels are native.
 */
import '@tensorflow/tfjs-backend-cpu';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { registerBackend, tf, RsError, type BackendInfo } from '@rs/core';
import { blasCandidates, loadLibrary } from './library';
import { NATIVE_KERNELS, native, registerKernels, setNativeState } from './kernels/index';
import { pool } from './kernels/common';
import { DEFAULT_POOL_BYTES } from './pool';

export { NATIVE_KERNELS };

export interface NativeInstallOptions {
  /** Threads for GEMM and the native kernels (default: all logical cores). */
  threads?: number;
  /**
   * The BLAS to call for GEMM: a library path or name, `false` for the own GEMM. Default: the
   * RS_BLAS environment variable, else the first of OpenBLAS, MKL, BLIS (Accelerate on macOS)
   * that loads, else the own GEMM. A BLAS named here that does not load is an error.
   */
  blas?: string | false;
  /** The compiled kernel library (default: RS_NATIVE_LIBRARY, a prebuilt one, else build/). */
  library?: string;
  /** Make native the active backend (default true). */
  activate?: boolean;
  /**
   * Keep freed tensor memory in the process heap instead of returning it to the system (glibc's
   * M_MMAP_THRESHOLD and M_TRIM_THRESHOLD raised to 1 GiB; default true). Every kernel output is
   * a fresh buffer; returned and re-mapped, each page is faulted in again on first write, which
   * made an element-wise kernel 2.5x slower. The cost: the process keeps its peak heap. This is the
   * setting PyTorch is run with in the benchmarks (MALLOC_MMAP_THRESHOLD_ and
   * MALLOC_TRIM_THRESHOLD_ in its environment).
   */
  keepHeap?: boolean;
  /**
   * Bytes of freed tensor storage kept for reuse by native kernels' outputs (default 256 MiB; 0
   * turns reuse off). A reused array skips allocation, zero-filling and the garbage collection
   * its external memory would trigger. Storage that was read out (`dataSync`, `data`), passed
   * in by the user, or shared with a view is never reused.
   */
  poolBytes?: number;
}

let installed: BackendInfo | undefined;

/**
 * tfjs-backend-cpu's backend with the storage pool's bookkeeping: storage handed out by a read
 * is never reused, and a deleted tensor's storage goes back to the pool.
 */
class NativeBackend extends MathBackendCPU {
  constructor() {
    super();
    // tfjs-backend-cpu's first-use banner recommends tfjs-node; it does not apply here.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  override readSync(dataId: object): ReturnType<MathBackendCPU['readSync']> {
    const values = super.readSync(dataId);
    pool.disown(values);
    return values;
  }

  override async read(dataId: object): ReturnType<MathBackendCPU['read']> {
    const values = await super.read(dataId);
    pool.disown(values);
    return values;
  }

  override disposeData(dataId: object, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const done = super.disposeData(dataId, force);
    if (values !== undefined && !this.data.has(dataId)) pool.give(values);
    return done;
  }

  override dispose(): void {
    pool.clear();
    super.dispose();
  }
}

function resolveThreads(threads: number | undefined, available: number): number {
  const n = threads ?? available;
  if (!Number.isInteger(n) || n < 1) throw new RsError('INVALID_ARGUMENT', `threads must be a positive integer, got ${String(threads)}.`, { threads });
  return n;
}

/**
 * Registers the native backend with TensorFlow.js and @rs/core and (by default) activates it.
 * Throws RsError 'NO_BACKEND' whose `details.missing` names what is missing ('koffi',
 * 'library' when no compiler built it, 'blas' when a named BLAS does not load); then nothing
 * is registered and the other backends are unaffected.
 *
 * @example
 * import { install } from '@rs/backend-native';
 * await install();                   // all cores, system BLAS if present
 * await install({ blas: false });    // own SIMD GEMM
 */
export async function install(options: NativeInstallOptions = {}): Promise<BackendInfo> {
  if (installed) {
    if (options.activate !== false) await tf.setBackend('native');
    return installed;
  }
  const os = await import('node:os');
  const threads = resolveThreads(options.threads, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
  const poolBytes = options.poolBytes ?? DEFAULT_POOL_BYTES;
  if (!Number.isFinite(poolBytes) || poolBytes < 0) throw new RsError('INVALID_ARGUMENT', `poolBytes must be a non-negative number of bytes, got ${String(options.poolBytes)}.`, { poolBytes: options.poolBytes });
  const { lib, path } = await loadLibrary(options.library);
  const requested = options.blas ?? process.env.RS_BLAS;
  let blas = '';
  if (requested === false || requested === '' || requested === 'none') {
    lib.init('', threads);
  } else if (typeof requested === 'string') {
    if (lib.init(requested, threads) !== 1) {
      throw new RsError('NO_BACKEND', `@rs/backend-native: the BLAS '${requested}' did not load or has no cblas_sgemm (${String(lib.dlerror())}). Install it (e.g. 'apt-get install libopenblas0') or pass blas: false for the own GEMM.`, {
        backend: 'native',
        missing: 'blas',
        blas: requested,
      });
    }
    blas = requested;
  } else {
    blas = blasCandidates().find((candidate) => lib.init(candidate, threads) === 1) ?? '';
    if (!blas) lib.init('', threads);
  }
  const keepHeap = options.keepHeap !== false && lib.keepHeap() === 1;
  pool.maxBytes = poolBytes;
  setNativeState({ lib, useBlas: blas ? 1 : 0 });
  tf.registerBackend('native', () => new NativeBackend(), 1);
  const nativeKernels = registerKernels('native');
  installed = {
    name: 'native',
    package: '@rs/backend-native',
    capabilities: { threads, openmp: lib.openmp() === 1, simd: true, blas: blas || 'own', keepHeap, poolBytes, library: path, nativeKernels },
  };
  registerBackend(installed);
  if (options.activate !== false && !(await tf.setBackend('native'))) throw new RsError('NO_BACKEND', 'the native backend failed to initialise.', { backend: 'native' });
  return installed;
}

/**
 * Switches GEMM between a BLAS (a library path or name) and the own SIMD GEMM (`false`), e.g. to
 * compare them. Returns what GEMM runs on now. Throws RsError NO_BACKEND before install() or when
 * the BLAS does not load (then GEMM stays on what it ran on).
 *
 * @example
 * setGemm(false); // own GEMM
 * setGemm('libopenblas.so.0');
 */
export function setGemm(blas: string | false): string {
  if (!installed) throw new RsError('NO_BACKEND', '@rs/backend-native is not installed; call install() first.', { backend: 'native' });
  const { lib } = native();
  const threads = installed.capabilities?.threads as number;
  const previous = installed.capabilities?.blas as string;
  if (blas !== false && lib.init(blas, threads) !== 1) {
    const why = String(lib.dlerror());
    lib.init(previous === 'own' ? '' : previous, threads);
    throw new RsError('NO_BACKEND', `@rs/backend-native: the BLAS '${blas}' did not load or has no cblas_sgemm (${why}).`, { backend: 'native', missing: 'blas', blas });
  }
  if (blas === false) lib.init('', threads);
  setNativeState({ lib, useBlas: blas === false ? 0 : 1 });
  installed.capabilities = { ...installed.capabilities, blas: blas === false ? 'own' : blas };
  return installed.capabilities.blas as string;
}

/** The BLAS GEMM runs on ('own' for the built-in GEMM), or undefined before install(). */
export function blasInUse(): string | undefined {
  return installed?.capabilities?.blas as string | undefined;
}

/** What the storage pool has done since install: arrays reused, arrays allocated for reuse, bytes kept now. */
export function poolStats(): { reused: number; allocated: number; keptBytes: number; maxBytes: number } {
  return { reused: pool.reused, allocated: pool.allocated, keptBytes: pool.keptBytes, maxBytes: pool.maxBytes };
}

/** Backend name, for `useBackend('native')`. */
export const name = 'native';
