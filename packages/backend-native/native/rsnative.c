/*
 * rsnative: the kernels of @rs/backend-native, a plain C library called from JavaScript through
 * koffi. Row-major float32 throughout. GEMM goes to a system BLAS found at run time with dlopen
 * (OpenBLAS, MKL, BLIS, Apple Accelerate: any library exporting cblas_sgemm); without one, to
 * the blocked SIMD GEMM below. The other kernels run on OpenMP threads where the work pays for
 * them. Every function is synchronous and keeps no pointer it is given.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef void (*sgemm_fn)(int order, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc);
typedef void (*set_threads_fn)(int);

static sgemm_fn blas_sgemm = 0;
static char blas_path[512] = "";
static char blas_core[64] = "";
static int n_threads = 1;

/* Work below which a loop runs on one thread: waking the team (sleeping threads, see the
 * GOMP_SPINCOUNT note in src/library.ts) costs more. A row sum of 131k elements took 0.78 ms on
 * two threads and 0.05 ms on one. */
#define PAR_MIN 32768
/* Element-wise loops are memory-bound: one thread nearly saturates memory, and waking the team
 * costs more than it gains on shared cores below this size. */
#define PAR_MIN_EW 1048576
/* Element-wise loops with real arithmetic per element (exp, division, square root). */
#define PAR_MIN_COMPUTE 131072
/* Runs the for statement given as the last argument on the OpenMP team when COND holds, and as
 * plain code otherwise: a region entered with `if (0)` still cost 1.2 us here (libgomp sets up a
 * team of one for it), more than a small kernel's work. PRAGMA is the region's directive. */
#define PAR_FOR(PRAGMA, COND, ...) \
  do {                             \
    if (COND) {                    \
      _Pragma(PRAGMA) __VA_ARGS__  \
    } else {                       \
      __VA_ARGS__                  \
    }                              \
  } while (0)

/* Element-wise loops run as blocks of EW_BLOCK elements: threads take blocks (when PARALLEL
 * holds) and each block is a plain `omp simd` loop over i. Inside `omp parallel for simd`,
 * GCC 12 left several loops on their scalar path (tanh 3.6 ms instead of 0.4 ms for 512k
 * elements, sqrt 0.8 instead of 0.1). */
#define EW_BLOCK 4096
#define EW_BLOCKS(PARALLEL, ...)                                                  \
  do {                                                                            \
    int64_t blocks_ = (n + EW_BLOCK - 1) / EW_BLOCK;                              \
    PAR_FOR("omp parallel for", (PARALLEL),                                       \
    for (int64_t b_ = 0; b_ < blocks_; b_++) {                                    \
      int64_t end_ = (b_ + 1) * EW_BLOCK < n ? (b_ + 1) * EW_BLOCK : n;           \
      _Pragma("omp simd")                                                         \
      for (int64_t i = b_ * EW_BLOCK; i < end_; i++) { __VA_ARGS__ }              \
    });                                                                           \
  } while (0)

enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };

int rs_openmp(void) {
#ifdef _OPENMP
  return 1;
#else
  return 0;
#endif
}

/* Loads the BLAS at `path` (or, when path is empty, none) and sets the thread count of the BLAS
 * and of OpenMP. Returns 1 when cblas_sgemm was found. */
int rs_init(const char *path, int threads) {
  n_threads = threads > 0 ? threads : 1;
#ifdef _OPENMP
  omp_set_num_threads(n_threads);
#endif
  blas_sgemm = 0;
  blas_path[0] = 0;
  blas_core[0] = 0;
  if (!path || !path[0]) return 0;
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) return 0;
  sgemm_fn f = (sgemm_fn)dlsym(h, "cblas_sgemm");
  if (!f) return 0;
  const char *setters[] = {"openblas_set_num_threads", "MKL_Set_Num_Threads", "bli_thread_set_num_threads"};
  for (int i = 0; i < 3; i++) {
    set_threads_fn s = (set_threads_fn)dlsym(h, setters[i]);
    if (s) s(n_threads);
  }
  blas_sgemm = f;
  strncpy(blas_path, path, sizeof blas_path - 1);
  blas_core[0] = 0;
  const char *(*corename)(void) = (const char *(*)(void))dlsym(h, "openblas_get_corename");
  if (corename && corename()) strncpy(blas_core, corename(), sizeof blas_core - 1);
  return 1;
}

/* The kernel set OpenBLAS runs ("" for another BLAS or none). */
const char *rs_blas_core(void) { return blas_core; }

const char *rs_dlerror(void) {
  const char *e = dlerror();
  return e ? e : "";
}

/* ---------------------------------------------------------------------------------------- */
/* Own GEMM: C = A' B' (+ C when accumulate), A' = A or A^T, B' = B or B^T. A' is M x K, B' is */
/* K x N. B' is packed into column panels of NR = 2 vectors, A' into row panels of MR, and an   */
/* MR x NR register kernel accumulates with fused multiply-adds: 12 x 32 with AVX-512 (24 of   */
/* the 32 vector registers), 6 x 16 with AVX2 + FMA (12 of 16), 4 x 8 in portable vector C      */
/* (16-byte vectors) elsewhere. FMA is written as an intrinsic: in ISO C mode (-std=c11) GCC does not contract    */
/* a * b + c, so the portable form ran as separate multiplies and adds.                         */
/* ---------------------------------------------------------------------------------------- */
#if defined(__x86_64__) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
#include <immintrin.h>
#endif
#if defined(__x86_64__) && defined(__AVX512F__)
typedef __m512 vf;
#define VL 16
#define MR 12
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VSET1 _mm512_set1_ps
#define VZERO _mm512_setzero_ps
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD _mm512_add_ps
/* p[0 .. n - 1] += v[0 .. n - 1], 0 < n <= 16: a masked load and store touch no other element. */
#define VMASK_ADD(p, v, n)                                                        \
  do {                                                                            \
    __mmask16 m_ = (__mmask16)((1u << (n)) - 1u);                                 \
    _mm512_mask_storeu_ps((p), m_, _mm512_add_ps(_mm512_maskz_loadu_ps(m_, (p)), (v))); \
  } while (0)
#elif defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
typedef __m256 vf;
#define VL 8
#define MR 6
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VSET1 _mm256_set1_ps
#define VZERO _mm256_setzero_ps
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD _mm256_add_ps
#else
/* 16-byte vectors: SSE2 (the x86-64 baseline) and NEON have them natively. */
typedef float vf __attribute__((vector_size(16)));
#define VL 4
#define MR 4
static inline vf vload_(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
static inline void vstore_(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf vset1_(float x) { vf v = {0}; return v + x; }
#define VLOAD vload_
#define VSTORE vstore_
#define VSET1 vset1_
#define VZERO() ((vf){0})
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VADD(a, b) ((a) + (b))
#endif
#define NR (2 * VL)
#define KC 256
/* Rows of A' per block: a multiple of MR; the packed block (MC x KC) stays in L2. */
#define MC (MR * 8)
/* Own-GEMM products below this many multiply-adds run on one thread: waking the sleeping team
 * cost more than the second thread gave. Measured on 2 threads against 1: [256, 150] x
 * [150, 50] 0.050 against 0.034 ms, [128, 128] x [128, 128] 0.047 against 0.026, and from about
 * 4M on the threads win ([256, 300] x [300, 100]: 0.089 against 0.110). */
#define GEMM_PAR_MIN (1 << 22)
/* In the 'auto' mode, products below this many multiply-adds go to the BLAS: its set-up is
 * lighter ([256, 100] x [100, 10]: 0.011 ms against the own GEMM's 0.025). */
#define OWN_GEMM_MIN (1 << 19)

#if MR == 12
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#elif MR == 6
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#else
#define ROWS(X) X(0) X(1) X(2) X(3)
#endif

static inline float at(const float *X, int trans, int ld, int r, int c) { return trans ? X[(size_t)c * ld + r] : X[(size_t)r * ld + c]; }

/* C[mr x nr] += the accumulators c<i>0, c<i>1 of a kernel: whole vectors for a full tile, through
 * a buffer at the edges. */
#define ADD_ROW(i) { float *cr = C + (size_t)(i) * ldc; VSTORE(cr, VADD(VLOAD(cr), c##i##0)); VSTORE(cr + VL, VADD(VLOAD(cr + VL), c##i##1)); }
#define KEEP_ROW(i) VSTORE(tmp + (i) * NR, c##i##0); VSTORE(tmp + (i) * NR + VL, c##i##1);
#if defined(VMASK_ADD)
/* Rows of a tile with nr < NR columns: whole vectors, then one masked load and store. */
#define ADD_ROW_MASKED(i) { float *cr = C + (size_t)(i) * ldc; \
    if (nr > VL) { VSTORE(cr, VADD(VLOAD(cr), c##i##0)); VMASK_ADD(cr + VL, c##i##1, nr - VL); } \
    else VMASK_ADD(cr, c##i##0, nr); }
#define TILE_EDGE_MASKED() if (mr == MR && nr < NR) { ROWS(ADD_ROW_MASKED) } else
#else
#define TILE_EDGE_MASKED()
#endif
#define TILE_ADD_TO_C()                                                      \
  do {                                                                       \
    if (mr == MR && nr == NR) {                                              \
      ROWS(ADD_ROW)                                                          \
    } else TILE_EDGE_MASKED() {                                              \
      float tmp[MR * NR];                                                    \
      ROWS(KEEP_ROW)                                                         \
      for (int i = 0; i < mr; i++)                                           \
        for (int j = 0; j < nr; j++) C[(size_t)i * ldc + j] += tmp[i * NR + j]; \
    }                                                                        \
  } while (0)

/* C[mr x nr] += a (kc x MR, packed) b (kc x NR, packed). */
static void gemm_kernel(int kc, const float *restrict a, const float *restrict b, float *C, int ldc, int mr, int nr) {
#define DECL(i) vf c##i##0 = VZERO(), c##i##1 = VZERO();
  ROWS(DECL)
#undef DECL
  for (int p = 0; p < kc; p++) {
    vf b0 = VLOAD(b + p * NR), b1 = VLOAD(b + p * NR + VL);
    const float *ap = a + p * MR;
#define STEP(i) { vf ai = VSET1(ap[i]); c##i##0 = VFMA(ai, b0, c##i##0); c##i##1 = VFMA(ai, b1, c##i##1); }
    ROWS(STEP)
#undef STEP
  }
  TILE_ADD_TO_C();
}

/* The same tile with A' read in place, row i of the tile at a + i * lda (A not transposed): no
 * packing of A, whose scalar interleaving cost about 15% of a [256, 784] x [784, 150] product's
 * thread time. Rows from mr on repeat the last valid row (never read past A); their sums are
 * dropped. */
static void gemm_kernel_rows(int kc, const float *a, int lda, const float *restrict b, float *C, int ldc, int mr, int nr) {
#define ROWPTR(i) const float *restrict r##i = a + (size_t)((i) < mr ? (i) : mr - 1) * lda;
  ROWS(ROWPTR)
#undef ROWPTR
#define DECL(i) vf c##i##0 = VZERO(), c##i##1 = VZERO();
  ROWS(DECL)
#undef DECL
  for (int p = 0; p < kc; p++) {
    vf b0 = VLOAD(b + p * NR), b1 = VLOAD(b + p * NR + VL);
#define STEP(i) { vf ai = VSET1(r##i[p]); c##i##0 = VFMA(ai, b0, c##i##0); c##i##1 = VFMA(ai, b1, c##i##1); }
    ROWS(STEP)
#undef STEP
  }
  TILE_ADD_TO_C();
}

/* Rows 0 .. kc - 1 of the K block starting at k0 of B', panels jp0 .. jp1 - 1: panel jp goes to
 * dst + jp * pstride (kc x NR, zero beyond column N). A row-major B is read along its rows. */
static void pack_b_block(const float *B, int transB, int ldb, int N, int jp0, int jp1, int k0, int kc, float *dst, size_t pstride) {
  int full = N / NR < jp1 ? N / NR : jp1;
  if (!transB) {
    for (int p = 0; p < kc; p++) {
      const float *src = B + (size_t)(k0 + p) * ldb;
      int jp = jp0;
      for (; jp < full; jp++) {
        float *d = dst + jp * pstride + (size_t)p * NR;
        VSTORE(d, VLOAD(src + jp * NR));
        VSTORE(d + VL, VLOAD(src + jp * NR + VL));
      }
      for (; jp < jp1; jp++) {
        float *d = dst + jp * pstride + (size_t)p * NR;
        int w = N - jp * NR;
        for (int j = 0; j < NR; j++) d[j] = j < w ? src[jp * NR + j] : 0.0f;
      }
    }
  } else {
    for (int jp = jp0; jp < jp1; jp++) {
      int c0 = jp * NR, w = N - c0 < NR ? N - c0 : NR;
      float *d = dst + jp * pstride;
      for (int j = 0; j < NR; j++) {
        const float *col = B + (size_t)(c0 + j) * ldb + k0;
        for (int p = 0; p < kc; p++) d[(size_t)p * NR + j] = j < w ? col[p] : 0.0f;
      }
    }
  }
}

/* Rows i0 .. i0 + mc - 1 of A' = A^T (A stored K x M, leading dimension lda), columns k0 ..
 * k0 + kc - 1, as row panels of MR (zero-padded). A non-transposed A is not packed: the kernel
 * reads it in place (gemm_kernel_rows). */
static void pack_a_transposed(const float *A, int lda, int i0, int mc, int k0, int kc, float *dst) {
  for (int ir = 0; ir < mc; ir += MR) {
    int mr = mc - ir < MR ? mc - ir : MR;
    float *a = dst + (size_t)ir * kc;
    for (int p = 0; p < kc; p++) {
      const float *col = A + (size_t)(k0 + p) * lda + i0 + ir;
      for (int i = 0; i < MR; i++) a[p * MR + i] = i < mr ? col[i] : 0.0f;
    }
  }
}

static void own_gemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate, int parallel) {
  if (!accumulate)
    for (int i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, sizeof(float) * N);
  if (K == 0 || M == 0 || N == 0) return;
  int npanels = (N + NR - 1) / NR;
  int use_threads = parallel && n_threads > 1 && (size_t)M * N * K > GEMM_PAR_MIN;
  /* Work items: row blocks, each over every column panel (its packed rows serve all of them),
   * about 8 per thread, split evenly among the threads ([256, 784] x [784, 300] in 3 blocks of
   * 96 rows, times 3 column groups, left one thread 10% busier and packed each row block three
   * times). Where the rows give too few blocks, column panels are grouped into items as well. */
  int microrows = (M + MR - 1) / MR;
  int mc = MC, panels_per = npanels;
  if (use_threads) {
    int per = microrows / (8 * n_threads);
    if (per < 1) per = 1;
    mc = MR * per < MC ? MR * per : MC;
    int blocks = (M + mc - 1) / mc;
    if (blocks < 4 * n_threads) {
      int groups = (4 * n_threads + blocks - 1) / blocks;
      panels_per = (npanels + groups - 1) / groups;
    }
  }
  int nblocks = (M + mc - 1) / mc, nchunks = (npanels + panels_per - 1) / panels_per;
  /* K in equal blocks of at most KC (784 = 4 x 196, not 3 x 256 + 16). */
  int kblocks = (K + KC - 1) / KC, kstep = (K + kblocks - 1) / kblocks;
  /* Each thread packs the panels of B' it uses into memory of its own (K block by K block, as
   * its items need them) and takes its items in a fixed order, so that from one call to the
   * next the same core writes the same packed panels and rows of C. Panels packed by one
   * thread and read by another, rewritten on the next call, made packing five times slower on
   * 2 threads than on one (each write first took the line back from the other core's cache):
   * 60 us for half of a [784, 300] B against 22 us for all of it on one thread. */
  size_t pstride = (size_t)kstep * NR;
  /* The threads' buffers, allocated here: where the packed B' copies do not fit, one thread
   * runs the product with one copy; only when that fails too does the process stop. */
  size_t bfloats = (size_t)kblocks * npanels * pstride, afloats = (size_t)MC * KC;
  int team = use_threads ? n_threads : 1;
  float *buffers = aligned_alloc(64, sizeof(float) * (size_t)team * (bfloats + afloats));
  if (!buffers && team > 1) {
    team = 1;
    use_threads = 0;
    buffers = aligned_alloc(64, sizeof(float) * (bfloats + afloats));
  }
  unsigned char *flags = calloc((size_t)team * kblocks * nchunks, 1);
  if (!buffers || !flags) {
    fputs("rsnative: out of memory for a GEMM's packing buffers\n", stderr);
    abort();
  }
#pragma omp parallel if (use_threads) num_threads(team)
  {
#ifdef _OPENMP
    int me = omp_get_thread_num();
#else
    int me = 0;
#endif
    float *bp = buffers + (size_t)me * (bfloats + afloats), *ap = bp + bfloats;
    unsigned char *packed = flags + (size_t)me * kblocks * nchunks;
#pragma omp for schedule(static)
    for (int item = 0; item < nblocks * nchunks; item++) {
      int ib = item / nchunks, ch = item % nchunks;
      int i0 = ib * mc, rows = M - i0 < mc ? M - i0 : mc;
      int jp0 = ch * panels_per, jp1 = jp0 + panels_per < npanels ? jp0 + panels_per : npanels;
      for (int kb = 0; kb < kblocks; kb++) {
        int k0 = kb * kstep, kc = K - k0 < kstep ? K - k0 : kstep;
        float *bk = bp + (size_t)kb * npanels * pstride;
        if (!packed[kb * nchunks + ch]) {
          pack_b_block(B, transB, ldb, N, jp0, jp1, k0, kc, bk, pstride);
          packed[kb * nchunks + ch] = 1;
        }
        if (transA) pack_a_transposed(A, lda, i0, rows, k0, kc, ap);
        for (int jp = jp0; jp < jp1; jp++) {
          int nr = N - jp * NR < NR ? N - jp * NR : NR;
          const float *b = bk + (size_t)jp * pstride;
          for (int ir = 0; ir < rows; ir += MR) {
            int mr = rows - ir < MR ? rows - ir : MR;
            float *c = C + (size_t)(i0 + ir) * ldc + jp * NR;
            if (transA) gemm_kernel(kc, ap + (size_t)ir * kc, b, c, ldc, mr, nr);
            else gemm_kernel_rows(kc, A + (size_t)(i0 + ir) * lda + k0, lda, b, c, ldc, mr, nr);
          }
        }
      }
    }
  }
  free(flags);
  free(buffers);
}

/* Which GEMM runs a product, by the `useBlas` mode every GEMM-calling kernel takes: 0 the own
 * GEMM; 1 the BLAS; 2 the own GEMM, except products under GEMM_PAR_MIN multiply-adds, which the
 * BLAS runs on one thread with less set-up (install() picks mode 2 where the own GEMM has
 * AVX-512 and the BLAS only AVX2 kernels; see src/index.ts). */
static int on_blas(int useBlas, int M, int N, int K) {
  if (!blas_sgemm || K <= 0) return 0;
  return useBlas == 1 || (useBlas == 2 && (size_t)M * N * K < OWN_GEMM_MIN);
}

/* Vector width of the own GEMM in bits: 512 (AVX-512), 256 (AVX2 + FMA) or 0 (portable C). */
int rs_gemm_width(void) {
#if defined(__x86_64__) && defined(__AVX512F__)
  return 512;
#elif defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
  return 256;
#else
  return 0;
#endif
}

/* One row times a matrix, C[1, N] = a[1, K] B' (batch-1 inference): memory-bound, one pass over
 * B. For a row-major B, blocks of GEMV_VECS vectors of columns, each a register accumulator
 * updated along B's rows: independent accumulators keep the FMA units busy (a block of 32
 * columns in one accumulator chain waited on each FMA's latency: LeNet's 784 x 300 took 21 us
 * per call, 14 us this way). A transposed B is one dot product per row. Single-threaded below
 * GEMV_PAR_MIN elements of B: waking the OpenMP threads cost more than they saved for LeNet's
 * 784 x 300. */
#define GEMV_PAR_MIN (1 << 22)
#define GEMV_VECS 8
static void gemv_row(int transB, int N, int K, const float *a, const float *B, float *C, int parallel) {
  if (!transB) {
    const int JB = GEMV_VECS * VL;
    int vecs = N / VL, blocks = (vecs + GEMV_VECS - 1) / GEMV_VECS;
PAR_FOR("omp parallel for schedule(static)", parallel && (size_t)N * K > GEMV_PAR_MIN,
    for (int jb = 0; jb < blocks; jb++) {
      int j0 = jb * JB, nv = vecs - jb * GEMV_VECS < GEMV_VECS ? vecs - jb * GEMV_VECS : GEMV_VECS;
      vf acc[GEMV_VECS];
      for (int v = 0; v < GEMV_VECS; v++) acc[v] = VZERO();
      if (nv == GEMV_VECS) {
        for (int k = 0; k < K; k++) {
          vf x = VSET1(a[k]);
          const float *row = B + (size_t)k * N + j0;
          for (int v = 0; v < GEMV_VECS; v++) acc[v] = VFMA(x, VLOAD(row + v * VL), acc[v]);
        }
      } else {
        for (int k = 0; k < K; k++) {
          vf x = VSET1(a[k]);
          const float *row = B + (size_t)k * N + j0;
          for (int v = 0; v < nv; v++) acc[v] = VFMA(x, VLOAD(row + v * VL), acc[v]);
        }
      }
      for (int v = 0; v < nv; v++) VSTORE(C + j0 + v * VL, acc[v]);
    });
    /* The last N % VL columns. */
    int j1 = vecs * VL, rest = N - j1;
    if (rest > 0) {
      float acc[VL];
      for (int j = 0; j < rest; j++) acc[j] = 0.0f;
      for (int k = 0; k < K; k++) {
        const float *row = B + (size_t)k * N + j1;
        float x = a[k];
        for (int j = 0; j < rest; j++) acc[j] += x * row[j];
      }
      for (int j = 0; j < rest; j++) C[j1 + j] = acc[j];
    }
  } else {
PAR_FOR("omp parallel for schedule(static)", parallel && (size_t)N * K > GEMV_PAR_MIN,
    for (int j = 0; j < N; j++) {
      const float *row = B + (size_t)j * K;
      float s = 0.0f;
_Pragma("omp simd reduction(+ : s)")
      for (int k = 0; k < K; k++) s += a[k] * row[k];
      C[j] = s;
    });
  }
}

static void gemm(int transA, int transB, int M, int N, int K, const float *A, const float *B, float *C, int parallel, int useBlas) {
  int lda = transA ? M : K, ldb = transB ? K : N;
  if (M == 0 || N == 0) return;
  if (M == 1 && K > 0) {
    gemv_row(transB, N, K, A, B, C, parallel);
    return;
  }
  if (on_blas(useBlas, M, N, K)) {
    blas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
  } else {
    own_gemm(transA, transB, M, N, K, A, lda, B, ldb, C, N, 0, parallel);
  }
}

/* Batched C[b] = A'[b] B'[b]; a batch count of 1 broadcasts (batchA or batchB may be 1). */
void rs_matmul(const float *A, const float *B, float *C, int batchA, int batchB, int M, int N, int K, int transA, int transB, int useBlas) {
  int batch = batchA > batchB ? batchA : batchB;
  size_t sa = (size_t)M * K, sb = (size_t)K * N, sc = (size_t)M * N;
  if (batch == 1) {
    gemm(transA, transB, M, N, K, A, B, C, 1, useBlas);
    return;
  }
  /* Many small products (attention): one product per thread, each single-threaded. */
  int small = (size_t)M * N * K < 262144;
  if (small) {
PAR_FOR("omp parallel for schedule(static)", (size_t)batch * M * N * K > PAR_MIN,
    for (int b = 0; b < batch; b++)
      own_gemm(transA, transB, M, N, K, A + (batchA == 1 ? 0 : b * sa), transA ? M : K, B + (batchB == 1 ? 0 : b * sb), transB ? K : N, C + b * sc, N, 0, 0););
  } else {
    for (int b = 0; b < batch; b++) gemm(transA, transB, M, N, K, A + (batchA == 1 ? 0 : b * sa), B + (batchB == 1 ? 0 : b * sb), C + b * sc, 1, useBlas);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Element-wise kernels. An operand is addressed by mode: 0 full (index i), 1 scalar, 2 tiled   */
/* (index i % size: its shape is the output's trailing dims), 3 repeated (index i / rep: its     */
/* shape is the output's leading dims followed by ones).                                         */
/* ---------------------------------------------------------------------------------------- */
static inline size_t idx(int mode, size_t i, size_t size, size_t rep) {
  switch (mode) {
    case 0: return i;
    case 1: return 0;
    case 2: return i % size;
    default: return i / rep;
  }
}

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MAX, OP_MIN, OP_SQDIFF, OP_POW };

/* One loop per addressing pair that training produces (full with full, scalar, bias rows,
 * per-row values), each with the operation fixed so that it vectorises; anything else (two
 * broadcast operands) takes the indexed loop. */
#define BIN_LOOPS(EXPR)                                                                        \
  if (modeA == 0 && modeB == 0) {                                                              \
    for (int64_t i = 0; i < n; i++) { float x = a[i], y = b[i]; out[i] = EXPR; }             \
  } else if (modeA == 0 && modeB == 1) {                                                       \
    const float y = b[0];                                                                      \
    for (int64_t i = 0; i < n; i++) { float x = a[i]; out[i] = EXPR; }                        \
  } else if (modeA == 1 && modeB == 0) {                                                       \
    const float x = a[0];                                                                      \
    for (int64_t i = 0; i < n; i++) { float y = b[i]; out[i] = EXPR; }                        \
  } else if (modeA == 0 && modeB == 2) {                                                       \
    for (int64_t r = 0; r < n; r += sizeB)                                                     \
      for (int64_t j = 0; j < sizeB; j++) { float x = a[r + j], y = b[j]; out[r + j] = EXPR; } \
  } else if (modeA == 2 && modeB == 0) {                                                       \
    for (int64_t r = 0; r < n; r += sizeA)                                                     \
      for (int64_t j = 0; j < sizeA; j++) { float x = a[j], y = b[r + j]; out[r + j] = EXPR; } \
  } else if (modeA == 0 && modeB == 3) {                                                       \
    for (int64_t r = 0; r < n; r += repB) {                                                    \
      const float y = b[r / repB];                                                             \
      for (int64_t j = 0; j < repB; j++) { float x = a[r + j]; out[r + j] = EXPR; }           \
    }                                                                                          \
  } else if (modeA == 3 && modeB == 0) {                                                       \
    for (int64_t r = 0; r < n; r += repA) {                                                    \
      const float x = a[r / repA];                                                             \
      for (int64_t j = 0; j < repA; j++) { float y = b[r + j]; out[r + j] = EXPR; }           \
    }                                                                                          \
  } else {                                                                                     \
    for (int64_t i = 0; i < n; i++) {                                                          \
      float x = a[idx(modeA, i, sizeA, repA)], y = b[idx(modeB, i, sizeB, repB)];              \
      out[i] = EXPR;                                                                           \
    }                                                                                          \
  }                                                                                            \
  return;

void rs_binary(int op, const float *a, int modeA, int64_t sizeA, int64_t repA, const float *b, int modeB, int64_t sizeB, int64_t repB, float *out, int64_t n) {
  switch (op) {
    case OP_ADD: BIN_LOOPS(x + y)
    case OP_SUB: BIN_LOOPS(x - y)
    case OP_MUL: BIN_LOOPS(x * y)
    case OP_DIV: BIN_LOOPS(x / y)
    case OP_MAX: BIN_LOOPS((isnan(x) || isnan(y)) ? NAN : (x > y ? x : y))
    case OP_MIN: BIN_LOOPS((isnan(x) || isnan(y)) ? NAN : (x < y ? x : y))
    case OP_SQDIFF: BIN_LOOPS((x - y) * (x - y))
    case OP_POW: BIN_LOOPS(powf(x, y))
    default: return;
  }
}

/* Select: out = cond ? t : e, all of the same size. */
void rs_select(const uint8_t *cond, const float *t, const float *e, float *out, int64_t n) {
  EW_BLOCKS(n > PAR_MIN_EW, out[i] = cond[i] ? t[i] : e[i];);
}

/* e^x without a library call, so that the loops around it vectorise (glibc's expf is scalar
 * unless the whole file is built with -ffast-math): Cody-Waite reduction x = n ln2 + r and
 * Cephes' degree-6 polynomial for e^r (relative error about 2e-7). x is clamped to
 * [-87.3, 88.7], the normal float range: callers are the saturating functions below, for which
 * that changes nothing; exp itself keeps expf (overflow to inf, underflow to 0). */
static inline float exp_clamped(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.7f ? 88.7f : x;
  float n = floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

static inline float tanh_exp(float u) { return 1.0f - 2.0f / (exp_clamped(2.0f * u) + 1.0f); }

enum { U_RELU, U_SQRT, U_SQUARE, U_EXP, U_LOG, U_NEG, U_TANH, U_SIGMOID, U_ABS, U_RSQRT, U_RELU6, U_RECIPROCAL };

/* Unary kernels, each an EW_BLOCKS loop. Transcendental ops are compute-bound and go parallel
 * from PAR_MIN_COMPUTE elements, the rest (memory-bound) from PAR_MIN_EW. */
void rs_unary(int op, const float *x, float *y, int64_t n) {
#define UN(OPCODE, PAR_MIN, EXPR) case OPCODE: EW_BLOCKS(n > PAR_MIN, float v = x[i]; y[i] = EXPR;); return;
  switch (op) {
    UN(U_RELU, PAR_MIN_EW, v < 0.0f ? 0.0f : v)
    UN(U_SQRT, PAR_MIN_EW, sqrtf(v))
    UN(U_SQUARE, PAR_MIN_EW, v * v)
    /* e^v by exp_clamped, with expf's ends: inf above 88.72, 0 below -87.3 (true values there are
     * under 1.2e-38), NaN stays NaN. */
    UN(U_EXP, PAR_MIN_COMPUTE, isnan(v) ? v : (v > 88.72283f ? INFINITY : (v < -87.3f ? 0.0f : exp_clamped(v))))
    UN(U_LOG, PAR_MIN_COMPUTE, logf(v))
    UN(U_NEG, PAR_MIN_EW, -v)
    /* tanh through exp_clamped (vectorised), not tanhf (scalar): 1 - 2 / (e^2v + 1); absolute
     * error ~1e-7 near 0, exact saturation at +-1 for large |v|. */
    UN(U_TANH, PAR_MIN_COMPUTE, isnan(v) ? v : tanh_exp(v))
    UN(U_SIGMOID, PAR_MIN_COMPUTE, isnan(v) ? v : 1.0f / (1.0f + exp_clamped(-v)))
    UN(U_ABS, PAR_MIN_EW, fabsf(v))
    UN(U_RSQRT, PAR_MIN_EW, 1.0f / sqrtf(v))
    UN(U_RELU6, PAR_MIN_EW, v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v))
    UN(U_RECIPROCAL, PAR_MIN_EW, 1.0f / v)
    default: return;
  }
#undef UN
}

/* Step: 1 where x > 0, alpha elsewhere, NaN stays NaN. */
void rs_step(const float *x, float *y, int64_t n, float alpha) {
  EW_BLOCKS(n > PAR_MIN_EW, float v = x[i]; y[i] = isnan(v) ? v : (v > 0.0f ? 1.0f : alpha););
}

/* GELU, tanh form (core's gelu op): y = 0.5 x (1 + tanh(s (x + 0.044715 x^3))), and its gradient
 * dx = dy (0.5 (1 + t) + 0.5 x (1 - t^2) s (1 + 3 * 0.044715 x^2)). tanh through exp, as above. */
#define GELU_S 0.7978845608028654f
#define GELU_C 0.044715f

void rs_gelu(const float *x, float *y, int64_t n) {
  EW_BLOCKS(n > PAR_MIN_COMPUTE, float v = x[i]; float t = tanh_exp(GELU_S * (v + GELU_C * v * v * v)); y[i] = 0.5f * v * (1.0f + t););
}

void rs_gelu_grad(const float *dy, const float *x, float *dx, int64_t n) {
  EW_BLOCKS(n > PAR_MIN_COMPUTE, float v = x[i]; float t = tanh_exp(GELU_S * (v + GELU_C * v * v * v));
            dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * GELU_S * (1.0f + 3.0f * GELU_C * v * v)););
}

/* Activations of the fused matmul, in tfjs' numbering of ours (see kernels/matmul.ts). */
enum { ACT_LINEAR, ACT_RELU, ACT_RELU6, ACT_SIGMOID, ACT_ELU, ACT_LEAKY };

/* One row of bias + activation: a plain simd loop per activation (no per-element modulo or
 * switch: with them the loop ran scalar, 0.8 ms for a 256 x 300 output). */
static void bias_act_row(float *c, int N, const float *bias, int biasMode, int act, float alpha) {
  float b0 = biasMode == 1 ? bias[0] : 0.0f;
#define ROW(EXPR) _Pragma("omp simd") for (int j = 0; j < N; j++) { float v = c[j] + (biasMode == 2 ? bias[j] : b0); c[j] = EXPR; } break;
  switch (act) {
    case ACT_RELU: ROW(v < 0.0f ? 0.0f : v)
    case ACT_RELU6: ROW(v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v))
    case ACT_SIGMOID: ROW(isnan(v) ? v : 1.0f / (1.0f + exp_clamped(-v)))
    case ACT_ELU: ROW(v > 0.0f ? v : expf(v) - 1.0f)
    case ACT_LEAKY: ROW(v < 0.0f ? alpha * v : v)
    default: ROW(v)
  }
#undef ROW
}

static void bias_act(float *C, int64_t rows, int N, const float *bias, int biasMode, int act, float alpha) {
  int64_t n = rows * N;
PAR_FOR("omp parallel for", n > PAR_MIN_COMPUTE,
  for (int64_t r = 0; r < rows; r++) bias_act_row(C + r * N, N, bias, biasMode, act, alpha););
}

/* act(A' B' + bias): biasMode 0 none, 1 scalar, 2 one value per output column. */
void rs_fused_matmul(const float *A, const float *B, float *C, int batchA, int batchB, int M, int N, int K, int transA, int transB, const float *bias, int biasMode, int act, float alpha, int useBlas) {
  rs_matmul(A, B, C, batchA, batchB, M, N, K, transA, transB, useBlas);
  int batch = batchA > batchB ? batchA : batchB;
  if (biasMode != 0 || act != ACT_LINEAR) bias_act(C, (int64_t)batch * M, N, bias, biasMode, act, alpha);
}

/* Softmax of one row of n values into y; returns the row's max m and sets *sum to the sum of
 * e^(x - m). exp_clamped: x - m <= 0, so the clamp only turns e^-88 and below (0 next to the
 * row's 1) into 1e-38. */
static inline float softmax_row(const float *x, float *y, int n, float *sum) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int j = 0; j < n; j++) {
    float e = exp_clamped(x[j] - m);
    y[j] = e;
    s += e;
  }
  float inv = 1.0f / s;
#pragma omp simd
  for (int j = 0; j < n; j++) y[j] *= inv;
  *sum = s;
  return m;
}

/* Row-wise softmax over the last dimension (size n) of `rows` rows. */
void rs_softmax(const float *x, float *y, int64_t rows, int n) {
PAR_FOR("omp parallel for", rows * n > PAR_MIN_COMPUTE,
  for (int64_t r = 0; r < rows; r++) {
    float s;
    softmax_row(x + r * n, y + r * n, n, &s);
  });
}

/* Softmax cross-entropy with class ids (core's SOFTMAX_CE_KERNEL): probs = softmax of each row
 * of x [rows, c]; returns the mean over rows of -log probs[label] = log(sum e^(x - m)) - (x[label] - m),
 * a row whose label is outside [0, c) adding 0. rows = 0 gives NaN, as a mean over nothing. */
double rs_softmax_ce(const float *x, const int32_t *labels, float *probs, int64_t rows, int c) {
  double total = 0.0;
PAR_FOR("omp parallel for reduction(+ : total)", rows * c > PAR_MIN_COMPUTE,
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * c;
    float s;
    float m = softmax_row(xr, probs + r * c, c, &s);
    int32_t label = labels[r];
    if (label >= 0 && label < c) total += (double)logf(s) - (double)(xr[label] - m);
  });
  return total / (double)rows;
}

/* Its gradient: out = dy (probs - onehot(label)) / rows; a row whose label is outside [0, c) gets 0. */
void rs_softmax_ce_grad(float dy, const float *probs, const int32_t *labels, float *out, int64_t rows, int c) {
  float scale = dy / (float)rows;
PAR_FOR("omp parallel for", rows * c > PAR_MIN_COMPUTE,
  for (int64_t r = 0; r < rows; r++) {
    const float *pr = probs + r * c;
    float *o = out + r * c;
    int32_t label = labels[r];
    if (label < 0 || label >= c) {
      for (int j = 0; j < c; j++) o[j] = 0.0f;
      continue;
    }
_Pragma("omp simd")
    for (int j = 0; j < c; j++) o[j] = pr[j] * scale;
    o[label] -= scale;
  });
}

/* Sum of x viewed as [outer, inner]: over inner (axisInner=1, out has outer values) or over
 * outer (axisInner=0, out has inner values). Double accumulators, like a pairwise sum. */
void rs_sum(const float *x, float *out, int64_t outer, int64_t inner, int axisInner) {
  if (axisInner) {
PAR_FOR("omp parallel for", outer * inner > PAR_MIN_EW,
    for (int64_t r = 0; r < outer; r++) {
      double s = 0.0;
      const float *xr = x + r * inner;
_Pragma("omp simd reduction(+ : s)")
      for (int64_t j = 0; j < inner; j++) s += xr[j];
      out[r] = (float)s;
    });
  } else {
    int64_t chunk = 256;
    int64_t nchunks = (inner + chunk - 1) / chunk;
PAR_FOR("omp parallel for", outer * inner > PAR_MIN_EW,
    for (int64_t c = 0; c < nchunks; c++) {
      int64_t j0 = c * chunk, j1 = j0 + chunk < inner ? j0 + chunk : inner;
      double acc[256];
      for (int64_t j = j0; j < j1; j++) acc[j - j0] = 0.0;
      for (int64_t r = 0; r < outer; r++) {
        const float *xr = x + r * inner;
        for (int64_t j = j0; j < j1; j++) acc[j - j0] += xr[j];
      }
      for (int64_t j = j0; j < j1; j++) out[j] = (float)acc[j - j0];
    });
  }
}

/* One Adam update (core's ADAM_UPDATE_KERNEL), in the order of core's formula:
 * m' = m b1 + g (1-b1); v' = v b2 + g^2 (1-b2); p' = (p - p decay) - ((m'/c1) / (sqrt(v'/c2) + eps)) lr. */
void rs_adam(const float *p, const float *g, const float *m, const float *v, float *pOut, float *mOut, float *vOut, int64_t n, float lr, float b1, float b2, float omb1, float omb2, float c1, float c2, float eps, float decay) {
  EW_BLOCKS(n > PAR_MIN_COMPUTE, float gi = g[i]; float mi = m[i] * b1 + gi * omb1; float vi = v[i] * b2 + (gi * gi) * omb2;
            mOut[i] = mi; vOut[i] = vi; float pi = p[i]; float base = decay > 0.0f ? pi - pi * decay : pi;
            pOut[i] = base - ((mi / c1) / (sqrtf(vi / c2) + eps)) * lr;);
}

/* out[seg[i], :] += x[i, :] for ids in [0, numSegments); out must be zeroed by the caller. */
void rs_segment_sum(const float *x, const int32_t *seg, float *out, int64_t n, int64_t inner, int numSegments) {
  for (int64_t i = 0; i < n; i++) {
    int32_t s = seg[i];
    if (s < 0 || s >= numSegments) continue;
    float *o = out + (int64_t)s * inner;
    const float *xi = x + i * inner;
    for (int64_t j = 0; j < inner; j++) o[j] += xi[j];
  }
}

/* out[o, j, :] = x[o, idx[j], :] (indices already checked to be in range). 4-byte elements. */
void rs_gather(const void *x, const int32_t *idx, void *out, int64_t outer, int64_t axisDim, int64_t n, int64_t inner) {
  const uint32_t *xs = (const uint32_t *)x;
  uint32_t *os = (uint32_t *)out;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < n; j++) memcpy(os + (o * n + j) * inner, xs + (o * axisDim + idx[j]) * inner, sizeof(uint32_t) * inner);
}

/* General transpose of a tensor of 4-byte elements, rank <= 8: out[i] = x[sum_k c_k stride_k]
 * where c is the output index and stride_k the input stride of the axis perm[k]. The innermost
 * output axis is walked with a fixed input stride. */
void rs_transpose(const void *x, void *out, const int32_t *shape, const int32_t *perm, int rank) {
  const uint32_t *xs = (const uint32_t *)x;
  uint32_t *os = (uint32_t *)out;
  int64_t inStride[8], stride[8] = {0}, dims[8] = {0}, total = 1;
  if (rank < 1 || rank > 8) return;
  inStride[rank - 1] = 1;
  for (int k = rank - 2; k >= 0; k--) inStride[k] = inStride[k + 1] * shape[k + 1];
  for (int k = 0; k < rank; k++) { dims[k] = shape[perm[k]]; stride[k] = inStride[perm[k]]; total *= dims[k]; }
  if (total == 0) return;
  int64_t last = dims[rank - 1], ls = stride[rank - 1], rows = total / last;
PAR_FOR("omp parallel for", total > PAR_MIN_EW,
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, base = 0;
    for (int k = rank - 2; k >= 0; k--) { base += (rem % dims[k]) * stride[k]; rem /= dims[k]; }
    uint32_t *o = os + r * last;
    for (int64_t j = 0; j < last; j++) o[j] = xs[base + j * ls];
  });
}

/* Keeps freed large blocks in the heap instead of returning them to the kernel (glibc): tensor
 * buffers (allocated by Node with calloc) are then reused instead of being mapped and faulted
 * in afresh on every kernel. The same setting as MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_
 * in the environment, applied at run time. Returns 1 where supported. */
int rs_keep_heap(void) {
#ifdef __GLIBC__
  return mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
#else
  return 0;
#endif
}

const char *rs_blas_path(void) { return blas_path; }
int rs_threads(void) { return n_threads; }

/* Layer normalisation over rows of d (core's LAYER_NORM_KERNEL), in the order of core's composed
 * form: mean, variance = mean of (x - mean)^2, rstd = 1 / sqrt(variance + eps),
 * y = ((x - mean) rstd) gamma + beta; each row's mean and rstd are kept for the gradient. Rows in
 * parallel. */
void rs_layer_norm(const float *x, const float *gamma, const float *beta, float *y, float *mean, float *rstd, int64_t rows, int d, float eps) {
PAR_FOR("omp parallel for", rows * d > PAR_MIN_COMPUTE,
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d;
    float *yr = y + r * d;
    float s = 0.0f;
_Pragma("omp simd reduction(+ : s)")
    for (int j = 0; j < d; j++) s += xr[j];
    float mu = s / (float)d, q = 0.0f;
_Pragma("omp simd reduction(+ : q)")
    for (int j = 0; j < d; j++) q += (xr[j] - mu) * (xr[j] - mu);
    float rs = 1.0f / sqrtf(q / (float)d + eps);
_Pragma("omp simd")
    for (int j = 0; j < d; j++) yr[j] = ((xr[j] - mu) * rs) * gamma[j] + beta[j];
    mean[r] = mu;
    rstd[r] = rs;
  });
}

/* Its gradient: with xhat = (x - mean) rstd and g = dy gamma, per row
 * dx = rstd (g - mean(g) - xhat mean(g xhat)) (rows in parallel); dgamma = sum over rows of
 * dy xhat and dbeta = sum of dy (columns in parallel, rows summed in order). */
void rs_layer_norm_grad(const float *dy, const float *x, const float *gamma, const float *mean, const float *rstd, float *dx, float *dgamma, float *dbeta, int64_t rows, int d) {
PAR_FOR("omp parallel for", rows * d > PAR_MIN_COMPUTE,
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * d, *dyr = dy + r * d;
    float *dxr = dx + r * d;
    float mu = mean[r], rs = rstd[r], a = 0.0f, b = 0.0f;
_Pragma("omp simd reduction(+ : a, b)")
    for (int j = 0; j < d; j++) {
      float g = dyr[j] * gamma[j];
      a += g;
      b += g * ((xr[j] - mu) * rs);
    }
    a /= (float)d;
    b /= (float)d;
_Pragma("omp simd")
    for (int j = 0; j < d; j++) dxr[j] = rs * (dyr[j] * gamma[j] - a - ((xr[j] - mu) * rs) * b);
  });
PAR_FOR("omp parallel for", rows * d > PAR_MIN_COMPUTE,
  for (int j = 0; j < d; j++) {
    float sg = 0.0f, sb = 0.0f;
    for (int64_t r = 0; r < rows; r++) {
      float v = dy[r * d + j];
      sg += v * ((x[r * d + j] - mean[r]) * rstd[r]);
      sb += v;
    }
    dgamma[j] = sg;
    dbeta[j] = sb;
  });
}

/* ---------------------------------------------------------------------------------------- */
/* Convolution and pooling, NHWC input, HWIO filter, NHWC output. Convolutions are im2col +    */
/* GEMM: the windows of a chunk of images are laid out as rows of K = KH*KW*C values, so the    */
/* forward pass is cols x W, the filter gradient cols^T x dy (summed over chunks), the input    */
/* gradient dy x W^T scattered back (col2im). A 1x1 convolution with stride 1 and no padding    */
/* uses the input itself as cols. Geometry `g`: N H W C KH KW OC OH OW SH SW PT PL DH DW.       */
/* ---------------------------------------------------------------------------------------- */
enum { G_N, G_H, G_W, G_C, G_KH, G_KW, G_OC, G_OH, G_OW, G_SH, G_SW, G_PT, G_PL, G_DH, G_DW };
/* Floats of one chunk's cols buffer (16 MiB): bounds memory for large batches. */
#define COLS_MAX (1 << 22)

static int conv_is_pointwise(const int32_t *g) {
  return g[G_KH] == 1 && g[G_KW] == 1 && g[G_SH] == 1 && g[G_SW] == 1 && g[G_PT] == 0 && g[G_PL] == 0;
}

static int64_t conv_chunk(const int32_t *g) {
  int64_t per = (int64_t)g[G_OH] * g[G_OW] * g[G_KH] * g[G_KW] * g[G_C];
  int64_t nb = per > 0 ? COLS_MAX / per : g[G_N];
  if (nb < 1) nb = 1;
  return nb < g[G_N] ? nb : g[G_N];
}

/* The valid kernel columns [*k0, *k1) of output column ox (the input columns they reach are
 * inside the image). */
static inline void window_cols(const int32_t *g, int ox, int *k0, int *k1) {
  const int W = g[G_W], KW = g[G_KW], DW = g[G_DW], start = ox * g[G_SW] - g[G_PL];
  int a = 0, b = KW;
  while (a < KW && start + a * DW < 0) a++;
  while (b > a && start + (b - 1) * DW >= W) b--;
  *k0 = a;
  *k1 = b;
}

/* Each row of cols is one output position's window, KH x KW x C values. Without dilation a
 * window row is KW*C contiguous input values: one copy per kernel row (a copy per value cost
 * more than the GEMM for LeNet's 1-channel first layer). */
static void im2col(const float *x, float *cols, const int32_t *g, int64_t n0, int64_t nb) {
  const int H = g[G_H], W = g[G_W], C = g[G_C], KH = g[G_KH], KW = g[G_KW], OH = g[G_OH], OW = g[G_OW], DW = g[G_DW];
  const int64_t K = (int64_t)KH * KW * C, P = (int64_t)OH * OW, rows = nb * P;
PAR_FOR("omp parallel for schedule(static)", rows * K > PAR_MIN,
  for (int64_t r = 0; r < rows; r++) {
    int64_t n = n0 + r / P;
    int p = (int)(r % P), oy = p / OW, ox = p % OW;
    int k0, k1;
    window_cols(g, ox, &k0, &k1);
    int ix0 = ox * g[G_SW] - g[G_PL];
    float *dst = cols + r * K;
    for (int ky = 0; ky < KH; ky++) {
      int iy = oy * g[G_SH] - g[G_PT] + ky * g[G_DH];
      float *d = dst + (int64_t)ky * KW * C;
      if (iy < 0 || iy >= H || k0 >= k1) {
        memset(d, 0, sizeof(float) * KW * C);
        continue;
      }
      const float *src = x + ((n * H) + iy) * W * C;
      if (k0 > 0) memset(d, 0, sizeof(float) * k0 * C);
      if (DW == 1) memcpy(d + (int64_t)k0 * C, src + (int64_t)(ix0 + k0) * C, sizeof(float) * (k1 - k0) * C);
      else
        for (int kx = k0; kx < k1; kx++) memcpy(d + (int64_t)kx * C, src + (int64_t)(ix0 + kx * DW) * C, sizeof(float) * C);
      if (k1 < KW) memset(d + (int64_t)k1 * C, 0, sizeof(float) * (KW - k1) * C);
    }
  });
}

/* dx[n0 .. n0+nb) += the windows of dcols, image by image (images in parallel). Gradients are
 * taken of undilated convolutions only, so a window row is KW*C contiguous values. */
static void col2im(const float *dcols, float *dx, const int32_t *g, int64_t n0, int64_t nb) {
  const int H = g[G_H], W = g[G_W], C = g[G_C], KH = g[G_KH], KW = g[G_KW], OH = g[G_OH], OW = g[G_OW];
  const int64_t K = (int64_t)KH * KW * C, P = (int64_t)OH * OW;
PAR_FOR("omp parallel for schedule(static)", nb > 1 && nb * P * K > PAR_MIN,
  for (int64_t i = 0; i < nb; i++) {
    float *img = dx + (n0 + i) * H * W * C;
    for (int64_t p = 0; p < P; p++) {
      const float *src = dcols + (i * P + p) * K;
      int oy = (int)(p / OW), ox = (int)(p % OW);
      int k0, k1;
      window_cols(g, ox, &k0, &k1);
      int ix0 = ox * g[G_SW] - g[G_PL];
      int64_t len = (int64_t)(k1 - k0) * C;
      for (int ky = 0; ky < KH; ky++) {
        int iy = oy * g[G_SH] - g[G_PT] + ky;
        if (iy < 0 || iy >= H || len <= 0) continue;
        float *d = img + ((int64_t)iy * W + ix0 + k0) * C;
        const float *s = src + ((int64_t)ky * KW + k0) * C;
_Pragma("omp simd")
        for (int64_t c = 0; c < len; c++) d[c] += s[c];
      }
    }
  });
}

/* C (M x N, row-major, ldc N) += A' B'. */
static void gemm_acc(int transA, int transB, int M, int N, int K, const float *A, const float *B, float *C, int useBlas) {
  int lda = transA ? M : K, ldb = transB ? K : N;
  if (M == 0 || N == 0 || K == 0) return;
  if (on_blas(useBlas, M, N, K))
    blas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, N);
  else
    own_gemm(transA, transB, M, N, K, A, lda, B, ldb, C, N, 1, 1);
}

/* ---------------------------------------------------------------------------------------- */
/* One input channel (a grayscale first layer): direct convolution, no im2col. With C = 1 a     */
/* window row is KW values, so im2col copied 5-value pieces (LeNet-5: 0.95 ms of 1.65 for the  */
/* first layer) and the GEMM had 6 columns in a 32-wide tile (0.7 ms). Here output positions   */
/* along a row are the vector lanes and the filters 8 register accumulators: 0.1-0.2 ms.       */
/* ---------------------------------------------------------------------------------------- */
#define C1_OCG 8
/* Rows of a padded window per image row: KH rows of (round up(OW, VL) + KW) values. */
static int conv_c1_ok(const int32_t *g, int forFilter) {
  int64_t pw = ((int64_t)g[G_OW] + VL - 1) / VL * VL + g[G_KW];
  return g[G_C] == 1 && g[G_SW] == 1 && g[G_DH] == 1 && g[G_DW] == 1 && (!forFilter || g[G_SH] == 1) && (int64_t)g[G_KH] * pw <= 16384;
}

/* The KH input rows under output row oy of image n, zero-padded: pad[ky * pw + c] is input column
 * c - PL of row oy * SH - PT + ky (0 outside the image). */
static void c1_window_rows(const float *x, const int32_t *g, int64_t n, int oy, float *pad, int pw) {
  const int H = g[G_H], W = g[G_W], KH = g[G_KH], PL = g[G_PL];
  for (int ky = 0; ky < KH; ky++) {
    int iy = oy * g[G_SH] - g[G_PT] + ky;
    float *d = pad + (int64_t)ky * pw;
    if (iy < 0 || iy >= H) {
      for (int c = 0; c < pw; c++) d[c] = 0.0f;
      continue;
    }
    const float *src = x + (n * H + iy) * W;
    for (int c = 0; c < pw; c++) {
      int ix = c - PL;
      d[c] = ix >= 0 && ix < W ? src[ix] : 0.0f;
    }
  }
}

static void conv2d_c1(const float *x, const float *w, float *y, const int32_t *g) {
  const int KH = g[G_KH], KW = g[G_KW], OH = g[G_OH], OW = g[G_OW], OC = g[G_OC];
  const int64_t N = g[G_N], rows = N * OH;
  const int pw = (OW + VL - 1) / VL * VL + KW, ocp = (OC + C1_OCG - 1) / C1_OCG * C1_OCG;
  /* Filters regrouped as [KH * KW][ocp], zero beyond OC. */
  float *wk = calloc((size_t)KH * KW * ocp, sizeof(float));
  if (!wk) abort();
  for (int t = 0; t < KH * KW; t++)
    for (int oc = 0; oc < OC; oc++) wk[(size_t)t * ocp + oc] = w[(size_t)t * OC + oc];
PAR_FOR("omp parallel for schedule(static)", rows * OW * KH * KW * OC > PAR_MIN,
  for (int64_t r = 0; r < rows; r++) {
    float pad[KH * pw];
    float tmp[C1_OCG * VL];
    c1_window_rows(x, g, r / OH, (int)(r % OH), pad, pw);
    float *yr = y + r * OW * OC;
    for (int ox0 = 0; ox0 < OW; ox0 += VL) {
      int lanes = OW - ox0 < VL ? OW - ox0 : VL;
      for (int og = 0; og < OC; og += C1_OCG) {
        vf acc[C1_OCG];
        for (int q = 0; q < C1_OCG; q++) acc[q] = VZERO();
        for (int ky = 0; ky < KH; ky++)
          for (int kx = 0; kx < KW; kx++) {
            vf xv = VLOAD(pad + (int64_t)ky * pw + ox0 + kx);
            const float *wv = wk + (size_t)(ky * KW + kx) * ocp + og;
            for (int q = 0; q < C1_OCG; q++) acc[q] = VFMA(xv, VSET1(wv[q]), acc[q]);
          }
        for (int q = 0; q < C1_OCG; q++) VSTORE(tmp + q * VL, acc[q]);
        int nq = OC - og < C1_OCG ? OC - og : C1_OCG;
        for (int l = 0; l < lanes; l++)
          for (int q = 0; q < nq; q++) yr[(int64_t)(ox0 + l) * OC + og + q] = tmp[q * VL + l];
      }
    }
  });
  free(wk);
}

/* dw[ky, kx, 0, oc] = sum over images and output positions of x under (ky, kx) times dy[oc]:
 * the rows (image, output row) are shared among threads, each summing vector partials of every
 * filter value into its own buffer; lanes and threads are added at the end. */
static void conv2d_c1_grad_filter(const float *x, const float *dy, float *dw, const int32_t *g) {
  const int KH = g[G_KH], KW = g[G_KW], OH = g[G_OH], OW = g[G_OW], OC = g[G_OC];
  const int64_t N = g[G_N], rows = N * OH, taps = (int64_t)KH * KW * OC;
  const int pw = (OW + VL - 1) / VL * VL + KW, owr = (OW + VL - 1) / VL * VL;
  int teams = rows * OW * taps > PAR_MIN && n_threads > 1 ? n_threads : 1;
  float *parts = aligned_alloc(64, sizeof(float) * (size_t)teams * taps * VL);
  if (!parts) abort();
  memset(parts, 0, sizeof(float) * (size_t)teams * taps * VL);
  int64_t share = (rows + teams - 1) / teams;
PAR_FOR("omp parallel for schedule(static) num_threads(teams)", teams > 1,
  for (int t = 0; t < teams; t++) {
    float pad[KH * pw];
    float dyt[OC * owr];
    float *mine = parts + (size_t)t * taps * VL;
    int64_t r1 = (t + 1) * share < rows ? (t + 1) * share : rows;
    for (int64_t r = t * share; r < r1; r++) {
      c1_window_rows(x, g, r / OH, (int)(r % OH), pad, pw);
      /* This row of dy as [OC][owr], zero beyond OW. */
      const float *dr = dy + r * OW * OC;
      for (int oc = 0; oc < OC; oc++)
        for (int ox = 0; ox < owr; ox++) dyt[oc * owr + ox] = ox < OW ? dr[(int64_t)ox * OC + oc] : 0.0f;
      for (int ky = 0; ky < KH; ky++)
        for (int kx = 0; kx < KW; kx++) {
          const float *xr = pad + (int64_t)ky * pw + kx;
          float *acc = mine + (size_t)((ky * KW + kx) * OC) * VL;
          for (int oc = 0; oc < OC; oc++) {
            vf s = VLOAD(acc + oc * VL);
            for (int ox0 = 0; ox0 < owr; ox0 += VL) s = VFMA(VLOAD(xr + ox0), VLOAD(dyt + oc * owr + ox0), s);
            VSTORE(acc + oc * VL, s);
          }
        }
    }
  });
  for (int64_t i = 0; i < taps; i++) {
    float v = 0.0f;
    for (int t = 0; t < teams; t++)
      for (int l = 0; l < VL; l++) v += parts[((size_t)t * taps + i) * VL + l];
    dw[i] = v;
  }
  free(parts);
}

/* y = act(conv(x, w) + bias). Returns 0 when the cols buffer could not be allocated. */
int rs_conv2d(const float *x, const float *w, float *y, const int32_t *g, const float *bias, int biasMode, int act, float alpha, int useBlas) {
  const int64_t N = g[G_N], K = (int64_t)g[G_KH] * g[G_KW] * g[G_C], P = (int64_t)g[G_OH] * g[G_OW], OC = g[G_OC];
  if (N * P * OC == 0) return 1;
  if (K == 0) { memset(y, 0, sizeof(float) * N * P * OC); }
  else if (conv_is_pointwise(g)) {
    gemm(0, 0, (int)(N * P), (int)OC, (int)K, x, w, y, 1, useBlas);
  } else if (conv_c1_ok(g, 0)) {
    conv2d_c1(x, w, y, g);
  } else {
    int64_t nb = conv_chunk(g);
    float *cols = malloc(sizeof(float) * nb * P * K);
    if (!cols) return 0;
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
      int64_t cnt = n0 + nb <= N ? nb : N - n0;
      im2col(x, cols, g, n0, cnt);
      gemm(0, 0, (int)(cnt * P), (int)OC, (int)K, cols, w, y + n0 * P * OC, 1, useBlas);
    }
    free(cols);
  }
  if (biasMode != 0 || act != ACT_LINEAR) bias_act(y, N * P, (int)OC, bias, biasMode, act, alpha);
  return 1;
}

/* dw = sum over images of cols^T dy. */
int rs_conv2d_grad_filter(const float *x, const float *dy, float *dw, const int32_t *g, int useBlas) {
  const int64_t N = g[G_N], K = (int64_t)g[G_KH] * g[G_KW] * g[G_C], P = (int64_t)g[G_OH] * g[G_OW], OC = g[G_OC];
  if (K * OC == 0) return 1;
  if (N * P == 0) { memset(dw, 0, sizeof(float) * K * OC); return 1; }
  if (conv_is_pointwise(g)) {
    gemm(1, 0, (int)K, (int)OC, (int)(N * P), x, dy, dw, 1, useBlas);
    return 1;
  }
  if (conv_c1_ok(g, 1)) {
    conv2d_c1_grad_filter(x, dy, dw, g);
    return 1;
  }
  int64_t nb = conv_chunk(g);
  /* A small filter (K x OC) summed over many rows: GEMM parallelises over the output, which is
   * too small to split, so the images are split over threads instead, each summing its share
   * into its own copy of dw (single-threaded GEMMs inside the parallel region). With one team,
   * the GEMMs sum straight into dw and use the threads themselves. */
  int teams = (n_threads > 1 && K * OC <= 4096 && N >= n_threads && N * P * K > PAR_MIN) ? n_threads : 1;
  int64_t share = (N + teams - 1) / teams;
  if (share < nb) nb = share;
  float *parts = teams > 1 ? malloc(sizeof(float) * teams * K * OC) : dw;
  float *cols = malloc(sizeof(float) * teams * nb * P * K);
  int ok = parts && cols;
  if (ok) {
    memset(parts, 0, sizeof(float) * teams * K * OC);
#pragma omp parallel for schedule(static) num_threads(teams) if (teams > 1)
    for (int t = 0; t < teams; t++) {
      float *mine = cols + (int64_t)t * nb * P * K;
      int64_t end = (t + 1) * share < N ? (t + 1) * share : N;
      for (int64_t n0 = t * share; n0 < end; n0 += nb) {
        int64_t cnt = n0 + nb <= end ? nb : end - n0;
        im2col(x, mine, g, n0, cnt);
        gemm_acc(1, 0, (int)K, (int)OC, (int)(cnt * P), mine, dy + n0 * P * OC, parts + (int64_t)t * K * OC, useBlas);
      }
    }
    if (teams > 1)
      for (int64_t i = 0; i < K * OC; i++) {
        float v = 0.0f;
        for (int t = 0; t < teams; t++) v += parts[(int64_t)t * K * OC + i];
        dw[i] = v;
      }
  }
  if (parts != dw) free(parts);
  free(cols);
  return ok;
}

/* dx = col2im(dy W^T). */
int rs_conv2d_grad_input(const float *dy, const float *w, float *dx, const int32_t *g, int useBlas) {
  const int64_t N = g[G_N], K = (int64_t)g[G_KH] * g[G_KW] * g[G_C], P = (int64_t)g[G_OH] * g[G_OW], OC = g[G_OC];
  const int64_t HWC = (int64_t)g[G_H] * g[G_W] * g[G_C];
  if (N * HWC == 0) return 1;
  if (conv_is_pointwise(g) && OC > 0) {
    gemm(0, 1, (int)(N * P), (int)K, (int)OC, dy, w, dx, 1, useBlas);
    return 1;
  }
  memset(dx, 0, sizeof(float) * N * HWC);
  if (P * K * OC == 0) return 1;
  int64_t nb = conv_chunk(g);
  float *dcols = malloc(sizeof(float) * nb * P * K);
  if (!dcols) return 0;
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    int64_t cnt = n0 + nb <= N ? nb : N - n0;
    gemm(0, 1, (int)(cnt * P), (int)K, (int)OC, dy + n0 * P * OC, w, dcols, 1, useBlas);
    col2im(dcols, dx, g, n0, cnt);
  }
  free(dcols);
  return 1;
}

/* Pooling geometry `g`: N H W C KH KW OH OW SH SW PT PL (dilation 1). As tfjs-backend-cpu: max
 * over the window's positions inside the input (-inf when none), the first strict maximum
 * taking the gradient; average over the positions inside the input, its gradient dy / (KH*KW)
 * to every position of the window inside the input. */
enum { Q_N, Q_H, Q_W, Q_C, Q_KH, Q_KW, Q_OH, Q_OW, Q_SH, Q_SW, Q_PT, Q_PL };

/* The part [*a, *b) of the window start .. start+len-1 inside 0 .. limit-1. */
static inline void clip_span(int start, int len, int limit, int *a, int *b) {
  *a = start < 0 ? 0 : start;
  *b = start + len > limit ? limit : start + len;
}

void rs_pool(int isMax, const float *x, float *y, const int32_t *g) {
  const int H = g[Q_H], W = g[Q_W], C = g[Q_C], OH = g[Q_OH], OW = g[Q_OW];
  const int64_t rows = (int64_t)g[Q_N] * OH;
PAR_FOR("omp parallel for schedule(static)", rows * OW * C * g[Q_KH] * g[Q_KW] > PAR_MIN,
  for (int64_t r = 0; r < rows; r++) {
    int64_t n = r / OH;
    int oy = (int)(r % OH), y0, y1;
    clip_span(oy * g[Q_SH] - g[Q_PT], g[Q_KH], H, &y0, &y1);
    for (int ox = 0; ox < OW; ox++) {
      int x0, x1;
      clip_span(ox * g[Q_SW] - g[Q_PL], g[Q_KW], W, &x0, &x1);
      float *out = y + ((r * OW) + ox) * C;
      int count = (y1 - y0) * (x1 - x0);
      for (int c = 0; c < C; c++) out[c] = isMax ? -INFINITY : 0.0f;
      for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
          const float *src = x + ((n * H + iy) * W + ix) * C;
          if (isMax) {
_Pragma("omp simd")
            for (int c = 0; c < C; c++) out[c] = src[c] > out[c] ? src[c] : out[c];
          } else {
_Pragma("omp simd")
            for (int c = 0; c < C; c++) out[c] += src[c];
          }
        }
      if (!isMax) {
        for (int c = 0; c < C; c++) out[c] = count > 0 ? out[c] / (float)count : NAN;
      }
    }
  });
}

void rs_pool_grad(int isMax, const float *dy, const float *x, float *dx, const int32_t *g) {
  const int H = g[Q_H], W = g[Q_W], C = g[Q_C], OH = g[Q_OH], OW = g[Q_OW];
  const int64_t N = g[Q_N], HWC = (int64_t)H * W * C;
  const float scale = 1.0f / (float)(g[Q_KH] * g[Q_KW]);
  memset(dx, 0, sizeof(float) * N * HWC);
PAR_FOR("omp parallel for schedule(static)", N > 1 && N * OH * OW * C * g[Q_KH] * g[Q_KW] > PAR_MIN,
  for (int64_t n = 0; n < N; n++) {
    float *img = dx + n * HWC;
    const float *xin = x ? x + n * HWC : 0;
    for (int oy = 0; oy < OH; oy++) {
      int y0, y1;
      clip_span(oy * g[Q_SH] - g[Q_PT], g[Q_KH], H, &y0, &y1);
      for (int ox = 0; ox < OW; ox++) {
        int x0, x1;
        clip_span(ox * g[Q_SW] - g[Q_PL], g[Q_KW], W, &x0, &x1);
        const float *d = dy + ((n * OH + oy) * OW + ox) * C;
        if (isMax) {
          for (int c = 0; c < C; c++) {
            float best = -INFINITY;
            int64_t at = -1;
            for (int iy = y0; iy < y1; iy++)
              for (int ix = x0; ix < x1; ix++) {
                int64_t o = ((int64_t)iy * W + ix) * C + c;
                if (xin[o] > best) { best = xin[o]; at = o; }
              }
            if (at >= 0) img[at] += d[c];
          }
        } else {
          for (int iy = y0; iy < y1; iy++)
            for (int ix = x0; ix < x1; ix++) {
              float *o = img + ((int64_t)iy * W + ix) * C;
_Pragma("omp simd")
              for (int c = 0; c < C; c++) o[c] += d[c] * scale;
            }
        }
      }
    }
  });
}

/* ---------------------------------------------------------------------------------------- */
/* Attention (core's ATTENTION_KERNEL): q, k, v, out are [N, T, H*D] with head h in columns     */
/* h*D .. h*D+D-1 of each row (the projections' layout, so no head transposes); probs is        */
/* [N, H, T, T]. Each (sample, head) pair runs on one thread; row i sees positions 0 .. i       */
/* (causal) or all of them, the others get probability 0.                                      */
/* ---------------------------------------------------------------------------------------- */
static inline float dot_f(const float *a, const float *b, int n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static inline void axpy_f(float *y, float a, const float *x, int n) {
#pragma omp simd
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}

void rs_attention(const float *q, const float *k, const float *v, float *out, float *probs, int N, int T, int H, int D, int causal, float scale) {
  const int64_t W = (int64_t)H * D, pairs = (int64_t)N * H;
PAR_FOR("omp parallel for schedule(static)", pairs > 1 && pairs * T * T * D > PAR_MIN,
  for (int64_t pr = 0; pr < pairs; pr++) {
    const int64_t n = pr / H, h = pr % H, base = n * T * W + h * D;
    float *P = probs + pr * T * T;
    for (int i = 0; i < T; i++) {
      const float *qi = q + base + i * W;
      float *row = P + (int64_t)i * T, *o = out + base + i * W;
      int seen = causal ? i + 1 : T;
      float mx = -INFINITY;
      for (int j = 0; j < seen; j++) {
        row[j] = scale * dot_f(qi, k + base + j * W, D);
        if (row[j] > mx) mx = row[j];
      }
      float sum = 0.0f;
_Pragma("omp simd reduction(+ : sum)")
      for (int j = 0; j < seen; j++) {
        row[j] = exp_clamped(row[j] - mx);
        sum += row[j];
      }
      float inv = 1.0f / sum;
      for (int j = 0; j < seen; j++) row[j] *= inv;
      for (int j = seen; j < T; j++) row[j] = 0.0f;
      for (int c = 0; c < D; c++) o[c] = 0.0f;
      for (int j = 0; j < seen; j++) axpy_f(o, row[j], v + base + j * W, D);
    }
  });
}

/* dv = P^T dy; dP = dy v^T; dS = P (dP - rowsum(P dP)); dq = scale dS k; dk = scale dS^T q. */
int rs_attention_grad(const float *dy, const float *q, const float *k, const float *v, const float *probs, float *dq, float *dk, float *dv, int N, int T, int H, int D, float scale) {
  const int64_t W = (int64_t)H * D, pairs = (int64_t)N * H;
  int teams = pairs > 1 && pairs * T * T * D > PAR_MIN ? n_threads : 1;
  float *scratch = malloc(sizeof(float) * (size_t)teams * (T > 0 ? T : 1));
  if (!scratch) return 0;
#pragma omp parallel for schedule(static) num_threads(teams) if (teams > 1)
  for (int64_t pr = 0; pr < pairs; pr++) {
#ifdef _OPENMP
    float *dp = scratch + (int64_t)omp_get_thread_num() * T;
#else
    float *dp = scratch;
#endif
    const int64_t n = pr / H, h = pr % H, base = n * T * W + h * D;
    const float *P = probs + pr * T * T;
    for (int i = 0; i < T; i++) {
      for (int c = 0; c < D; c++) dq[base + i * W + c] = dk[base + i * W + c] = dv[base + i * W + c] = 0.0f;
    }
    for (int i = 0; i < T; i++) {
      const float *row = P + (int64_t)i * T, *gi = dy + base + i * W, *qi = q + base + i * W;
      float *dqi = dq + base + i * W;
      /* Positions with probability 0 (masked) contribute nothing: the causal prefix is where
       * the mass is, and the loop stops after the last nonzero. */
      int seen = T;
      while (seen > 0 && row[seen - 1] == 0.0f) seen--;
      float s = 0.0f;
      for (int j = 0; j < seen; j++) {
        dp[j] = dot_f(gi, v + base + j * W, D);
        s += row[j] * dp[j];
      }
      for (int j = 0; j < seen; j++) {
        float p = row[j], ds = scale * p * (dp[j] - s);
        axpy_f(dv + base + j * W, p, gi, D);
        axpy_f(dqi, ds, k + base + j * W, D);
        axpy_f(dk + base + j * W, ds, qi, D);
      }
    }
  }
  free(scratch);
  return 1;
}
