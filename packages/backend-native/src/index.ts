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
export { GOMP_SPINCOUNT } from './library';

export interface NativeInstallOptions {
  /** Threads for GEMM and the native kernels (default: all logical cores). */
  threads?: number;
  /**
   * The BLAS to call for GEMM: a library path or name, `false` for the own GEMM. Default: the
   * RS_BLAS environment variable, else the first of OpenBLAS, MKL, BLIS (Accelerate on macOS)
   * that loads, else the own GEMM. A BLAS named here that does not load is an error.
   *
   * When none is named and the BLAS found is an OpenBLAS running kernels without AVX-512 on a
   * CPU with it (OPENBLAS_CORETYPE=Haswell, or a release that does not know the CPU), products
   * of at least 2^19 multiply-adds go to the own GEMM, which uses AVX-512 there, and smaller ones
   * to the BLAS (`capabilities.gemm` is then 'auto').
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
/** The BLAS last loaded ('' when none has): what setGemm('auto') uses for small products. */
let lastBlas = '';

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
  lastBlas = blas;
  const blasCore = String(lib.blasCore() ?? '');
  const gemm: GemmMode = !blas ? 'own' : requested === undefined && ownGemmOutruns(blasCore, Number(lib.gemmWidth())) ? 'auto' : 'blas';
  setNativeState({ lib, useBlas: GEMM_MODES[gemm] });
  tf.registerBackend('native', () => new NativeBackend(), 1);
  const nativeKernels = registerKernels('native');
  installed = {
    name: 'native',
    package: '@rs/backend-native',
    capabilities: { threads, openmp: lib.openmp() === 1, simd: true, blas: blas || 'own', blasCore, gemm, ownGemmBits: Number(lib.gemmWidth()), keepHeap, poolBytes, library: path, nativeKernels },
  };
  registerBackend(installed);
  if (options.activate !== false && !(await tf.setBackend('native'))) throw new RsError('NO_BACKEND', 'the native backend failed to initialise.', { backend: 'native' });
  return installed;
}

/**
 * Switches GEMM between a BLAS (a library path or name), the own SIMD GEMM (`false`), and
 * 'auto': the own GEMM for products of at least 2^19 multiply-adds and the BLAS last loaded for
 * smaller ones (what install() picks where the own GEMM has AVX-512 and the BLAS does not).
 * Returns the BLAS loaded ('own' when none). Throws RsError NO_BACKEND before install(), when
 * the BLAS does not load, or for 'auto' with no BLAS loaded (then GEMM stays on what it ran on).
 *
 * @example
 * setGemm(false); // own GEMM
 * setGemm('libopenblas.so.0');
 * setGemm('auto');
 */
export function setGemm(blas: string | false): string {
  if (!installed) throw new RsError('NO_BACKEND', '@rs/backend-native is not installed; call install() first.', { backend: 'native' });
  const { lib } = native();
  const threads = installed.capabilities?.threads as number;
  const previous = installed.capabilities?.blas as string;
  const auto = blas === 'auto';
  const path = auto ? lastBlas : blas;
  if (auto && !lastBlas) {
    throw new RsError('NO_BACKEND', "@rs/backend-native: setGemm('auto') needs a BLAS loaded; call setGemm(path) first.", { backend: 'native', missing: 'blas' });
  }
  if (path !== false && lib.init(path, threads) !== 1) {
    const why = String(lib.dlerror());
    lib.init(previous === 'own' ? '' : previous, threads);
    throw new RsError('NO_BACKEND', `@rs/backend-native: the BLAS '${path}' did not load or has no cblas_sgemm (${why}).`, { backend: 'native', missing: 'blas', blas: path });
  }
  if (path === false) lib.init('', threads);
  else lastBlas = path;
  const gemm: GemmMode = path === false ? 'own' : auto ? 'auto' : 'blas';
  setNativeState({ lib, useBlas: GEMM_MODES[gemm] });
  installed.capabilities = { ...installed.capabilities, blas: path === false ? 'own' : path, blasCore: String(lib.blasCore() ?? ''), gemm };
  return installed.capabilities.blas as string;
}

/** How GEMM is split between the BLAS and the own GEMM (the `useBlas` mode of the C kernels). */
type GemmMode = 'own' | 'blas' | 'auto';
const GEMM_MODES: Record<GemmMode, number> = { own: 0, blas: 1, auto: 2 };

/** OpenBLAS kernel sets with AVX-512 sgemm (the names openblas_get_corename reports). */
const OPENBLAS_AVX512_CORES = /skylakex|cooperlake|sapphirerapids/i;

/**
 * Whether the own GEMM should take the larger products: it was compiled with AVX-512 and the
 * BLAS is an OpenBLAS whose kernel set has none. Measured on a 2-core AMD Zen 5 with
 * OPENBLAS_CORETYPE=Haswell, 2 threads: 1024^3 in 6.3-7.0 ms (own) against 10.8-11.6 ms
 * (OpenBLAS), [256, 784] x [784, 300] 0.36-0.38 against 0.76 ms, [1024, 128] x [128, 512] 0.47
 * against 1.0 ms; below 2^19 multiply-adds the BLAS was faster ([256, 100] x [100, 10]: 0.011
 * against 0.025 ms).
 */
function ownGemmOutruns(blasCore: string, ownBits: number): boolean {
  return ownBits === 512 && blasCore !== '' && !OPENBLAS_AVX512_CORES.test(blasCore);
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
