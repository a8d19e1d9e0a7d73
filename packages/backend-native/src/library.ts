/**
 * Finds, loads and binds the compiled kernel library (native/rsnative.c) through koffi, and the
 * system BLAS it calls. Every failure becomes an RsError 'NO_BACKEND' whose `details.missing`
 * names what is missing: 'koffi', 'library' (not built: no compiler) or, when a BLAS was
 * explicitly required, 'blas'.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RsError } from '@rs/core';

/** OpenMP spins before an idle thread sleeps (libgomp), unless the user set a wait policy. */
export const GOMP_SPINCOUNT = 30000;

type Fn = (...args: any[]) => any;

/** The bound functions of librsnative. Pointers are Float32Arrays, passed without a copy. */
export interface NativeLib {
  init: Fn;
  dlerror: Fn;
  openmp: Fn;
  blasPath: Fn;
  blasCore: Fn;
  gemmWidth: Fn;
  matmul: Fn;
  fusedMatmul: Fn;
  binary: Fn;
  unary: Fn;
  step: Fn;
  softmax: Fn;
  sum: Fn;
  adam: Fn;
  gelu: Fn;
  softmaxCe: Fn;
  softmaxCeGrad: Fn;
  geluGrad: Fn;
  layerNorm: Fn;
  layerNormGrad: Fn;
  conv2d: Fn;
  conv2dGradInput: Fn;
  conv2dGradFilter: Fn;
  pool: Fn;
  poolGrad: Fn;
  attention: Fn;
  attentionGrad: Fn;
  keepHeap: Fn;
  select: Fn;
  segmentSum: Fn;
  gather: Fn;
  transpose: Fn;
}

/** Where the package's files are: one level above src/ (sources) or dist/ (build). */
function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..');
}

const EXT = process.platform === 'darwin' ? 'dylib' : process.platform === 'win32' ? 'dll' : 'so';

/**
 * Candidate library files, in order: an explicit path, a prebuilt binary shipped for this
 * platform (prebuilds/<platform>-<arch>/), the one built at install (build/).
 */
export function libraryCandidates(explicit?: string): string[] {
  const root = packageRoot();
  const env = process.env.RS_NATIVE_LIBRARY;
  const chosen = explicit ?? env;
  if (chosen) return [chosen];
  return [join(root, 'prebuilds', `${process.platform}-${process.arch}`, `librsnative.${EXT}`), join(root, 'build', `librsnative.${EXT}`)];
}

/** The BLAS libraries tried, in order, when none is named. */
export function blasCandidates(): string[] {
  if (process.platform === 'darwin') return ['/System/Library/Frameworks/Accelerate.framework/Accelerate', 'libopenblas.dylib'];
  if (process.platform === 'win32') return ['libopenblas.dll', 'mkl_rt.2.dll'];
  return ['libopenblas.so.0', 'libopenblas.so', 'libmkl_rt.so.2', 'libmkl_rt.so', 'libblis.so.4', 'libblis.so'];
}

function buildMessage(): string {
  const status = join(packageRoot(), 'build', 'status.json');
  if (!existsSync(status)) return 'the package build step (node scripts/build-native.mjs) has not run';
  try {
    return (JSON.parse(readFileSync(status, 'utf8')) as { message: string }).message;
  } catch {
    return 'build/status.json is unreadable';
  }
}

/** Loads koffi and the kernel library; throws RsError NO_BACKEND naming what is missing. */
export async function loadLibrary(explicit?: string): Promise<{ lib: NativeLib; path: string }> {
  let koffi: { load: (path: string) => { func: (decl: string) => Fn } };
  try {
    const mod = (await import('koffi')) as { default?: unknown };
    koffi = (mod.default ?? mod) as typeof koffi;
  } catch (error) {
    throw new RsError('NO_BACKEND', `@rs/backend-native needs the 'koffi' package (a C FFI shipped with its binaries in npm), which failed to load: ${(error as Error).message}`, {
      backend: 'native',
      missing: 'koffi',
    });
  }
  const candidates = libraryCandidates(explicit);
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    const how = explicit ?? process.env.RS_NATIVE_LIBRARY
      ? 'the path given (library option or RS_NATIVE_LIBRARY) does not exist'
      : `it is built at install with the system C compiler, and that step said: ${buildMessage()}. Install a C compiler (e.g. 'apt-get install gcc') and run 'pnpm --filter @rs/backend-native build:native'`;
    throw new RsError('NO_BACKEND', `@rs/backend-native: the compiled kernel library is missing (looked for ${candidates.join(', ')}); ${how}.`, {
      backend: 'native',
      missing: 'library',
      candidates,
    });
  }
  // How long OpenMP's idle threads spin before they sleep. libgomp's default, about 300,000
  // spins (5.7 ms of a core here after every parallel region), costs dearly whenever the cores
  // are shared (another process, or OpenBLAS and the kernels taking turns): an earlier
  // measurement on a loaded 2-core machine had a LeNet step at 220 ms with spinning threads and
  // 13 ms with sleeping ones. Sleeping at once
  // (OMP_WAIT_POLICY=passive, this backend's earlier setting) makes every region wake its team
  // through the kernel: [256, 300] x [300, 100] took 81 us in Node against 60 us with a short
  // spin. 30,000 spins (about 0.5 ms) keep a team awake from one kernel to the next and give
  // the cores back soon after: on an idle 2-core machine a batch-256 LeNet-300-100 inference
  // 0.51 -> 0.47 ms and a training step 3.2 -> 2.8 ms; with two busy processes on the same
  // cores, the step took 7.0-7.3 ms against 6.1-7.9 ms sleeping at once. libgomp reads
  // GOMP_SPINCOUNT once, when it loads with this library; LLVM's libomp (a clang build) reads
  // KMP_BLOCKTIME instead, and keeps sleeping at once. A value the user set is kept.
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined && process.env.KMP_BLOCKTIME === undefined) {
    process.env.GOMP_SPINCOUNT = String(GOMP_SPINCOUNT);
    process.env.KMP_BLOCKTIME = '0';
  }
  let handle: { func: (decl: string) => Fn };
  try {
    handle = koffi.load(path);
  } catch (error) {
    throw new RsError('NO_BACKEND', `@rs/backend-native: could not load ${path}: ${(error as Error).message}. Rebuild it with 'pnpm --filter @rs/backend-native build:native'.`, {
      backend: 'native',
      missing: 'library',
      candidates,
    });
  }
  const f = (decl: string): Fn => {
    try {
      return handle.func(decl);
    } catch (error) {
      throw new RsError('NO_BACKEND', `@rs/backend-native: ${path} is out of date (${(error as Error).message}); rebuild it with 'pnpm --filter @rs/backend-native build:native'.`, {
        backend: 'native',
        missing: 'library',
        candidates,
      });
    }
  };
  const lib: NativeLib = {
    init: f('int rs_init(const char *path, int threads)'),
    dlerror: f('const char *rs_dlerror(void)'),
    openmp: f('int rs_openmp(void)'),
    blasPath: f('const char *rs_blas_path(void)'),
    blasCore: f('const char *rs_blas_core(void)'),
    gemmWidth: f('int rs_gemm_width(void)'),
    matmul: f('void rs_matmul(const float *A, const float *B, float *C, int batchA, int batchB, int M, int N, int K, int transA, int transB, int useBlas)'),
    fusedMatmul: f(
      'void rs_fused_matmul(const float *A, const float *B, float *C, int batchA, int batchB, int M, int N, int K, int transA, int transB, const float *bias, int biasMode, int act, float alpha, int useBlas)',
    ),
    binary: f('void rs_binary(int op, const float *a, int modeA, int64_t sizeA, int64_t repA, const float *b, int modeB, int64_t sizeB, int64_t repB, float *out, int64_t n)'),
    unary: f('void rs_unary(int op, const float *x, float *y, int64_t n)'),
    step: f('void rs_step(const float *x, float *y, int64_t n, float alpha)'),
    softmax: f('void rs_softmax(const float *x, float *y, int64_t rows, int n)'),
    sum: f('void rs_sum(const float *x, float *out, int64_t outer, int64_t inner, int axisInner)'),
    segmentSum: f('void rs_segment_sum(const float *x, const int32_t *seg, float *out, int64_t n, int64_t inner, int numSegments)'),
    gather: f('void rs_gather(const void *x, const int32_t *idx, void *out, int64_t outer, int64_t axisDim, int64_t n, int64_t inner)'),
    transpose: f('void rs_transpose(const void *x, void *out, const int32_t *shape, const int32_t *perm, int rank)'),
    select: f('void rs_select(const uint8_t *cond, const float *t, const float *e, float *out, int64_t n)'),
    gelu: f('void rs_gelu(const float *x, float *y, int64_t n)'),
    softmaxCe: f('double rs_softmax_ce(const float *x, const int32_t *labels, float *probs, int64_t rows, int c)'),
    softmaxCeGrad: f('void rs_softmax_ce_grad(float dy, const float *probs, const int32_t *labels, float *out, int64_t rows, int c)'),
    geluGrad: f('void rs_gelu_grad(const float *dy, const float *x, float *dx, int64_t n)'),
    layerNorm: f('void rs_layer_norm(const float *x, const float *gamma, const float *beta, float *y, float *mean, float *rstd, int64_t rows, int d, float eps)'),
    layerNormGrad: f('void rs_layer_norm_grad(const float *dy, const float *x, const float *gamma, const float *mean, const float *rstd, float *dx, float *dgamma, float *dbeta, int64_t rows, int d)'),
    conv2d: f('int rs_conv2d(const float *x, const float *w, float *y, const int32_t *g, const float *bias, int biasMode, int act, float alpha, int useBlas)'),
    conv2dGradInput: f('int rs_conv2d_grad_input(const float *dy, const float *w, float *dx, const int32_t *g, int useBlas)'),
    conv2dGradFilter: f('int rs_conv2d_grad_filter(const float *x, const float *dy, float *dw, const int32_t *g, int useBlas)'),
    pool: f('void rs_pool(int isMax, const float *x, float *y, const int32_t *g)'),
    poolGrad: f('void rs_pool_grad(int isMax, const float *dy, const float *x, float *dx, const int32_t *g)'),
    attention: f('void rs_attention(const float *q, const float *k, const float *v, float *out, float *probs, int N, int T, int H, int D, int causal, float scale)'),
    attentionGrad: f('int rs_attention_grad(const float *dy, const float *q, const float *k, const float *v, const float *probs, float *dq, float *dk, float *dv, int N, int T, int H, int D, float scale)'),
    keepHeap: f('int rs_keep_heap(void)'),
    adam: f(
      'void rs_adam(const float *p, const float *g, const float *m, const float *v, float *pOut, float *mOut, float *vOut, int64_t n, float lr, float b1, float b2, float omb1, float omb2, float c1, float c2, float eps, float decay)',
    ),
  };
  return { lib, path };
}
