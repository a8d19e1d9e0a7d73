/* @rs/backend-wasm's own WASM-SIMD kernels, for the spots where tfjs-backend-wasm 4.22 has no
 * fast path: batched matmul (attention's scores and values fall to a scalar loop there), sums
 * over leading axes (a bias gradient: the stock kernel transposes first), and tanh (scalar
 * libm there).
 *
 * The module is built by scripts/build-simd.mjs (clang, wasm32, -msimd128) and imports the
 * tfjs-backend-wasm module's own memory, so that the kernels read and write tensors where they
 * already are: every pointer argument is a tensor's offset in that heap. The module must
 * therefore never touch linear memory of its own: no static data, no C stack (no arrays or
 * address-taken locals); the build script checks both. Single-threaded: the calls run on the
 * thread that runs the kernel.
 */
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name))) void name

typedef float f32;

#define FMA(acc, x, y) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(x, y))

/* The sum of the four lanes. */
static inline f32 hsum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

/* C (m x n, row-major) = op(A) B for one matrix: op(A)(i, p) = A[i * rsA + p * csA] (so a
 * transposed A is a stride, not a copy); B is k x n, row-major with row stride ldb. Register
 * blocks of 4 rows x 8 columns (8 accumulators of 4 lanes); the remaining columns in blocks of 4
 * and then one at a time; the remaining rows one at a time. Each output is summed over p in
 * order, as the reference kernels do. */
static void gemm(const f32 *A, int rsA, int csA, const f32 *B, int ldb, f32 *C, int m, int n, int k) {
  int i = 0;
  for (; i + 4 <= m; i += 4) {
    const f32 *a0 = A + i * rsA, *a1 = a0 + rsA, *a2 = a1 + rsA, *a3 = a2 + rsA;
    f32 *c0 = C + i * n, *c1 = c0 + n, *c2 = c1 + n, *c3 = c2 + n;
    int j = 0;
    for (; j + 8 <= n; j += 8) {
      v128_t s00 = wasm_f32x4_splat(0.0f), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
      const f32 *b = B + j;
      for (int p = 0, o = 0; p < k; p++, o += csA, b += ldb) {
        v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
        v128_t x = wasm_f32x4_splat(a0[o]);
        FMA(s00, x, b0); FMA(s01, x, b1);
        x = wasm_f32x4_splat(a1[o]);
        FMA(s10, x, b0); FMA(s11, x, b1);
        x = wasm_f32x4_splat(a2[o]);
        FMA(s20, x, b0); FMA(s21, x, b1);
        x = wasm_f32x4_splat(a3[o]);
        FMA(s30, x, b0); FMA(s31, x, b1);
      }
      wasm_v128_store(c0 + j, s00); wasm_v128_store(c0 + j + 4, s01);
      wasm_v128_store(c1 + j, s10); wasm_v128_store(c1 + j + 4, s11);
      wasm_v128_store(c2 + j, s20); wasm_v128_store(c2 + j + 4, s21);
      wasm_v128_store(c3 + j, s30); wasm_v128_store(c3 + j + 4, s31);
    }
    for (; j + 4 <= n; j += 4) {
      v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
      const f32 *b = B + j;
      for (int p = 0, o = 0; p < k; p++, o += csA, b += ldb) {
        v128_t b0 = wasm_v128_load(b);
        FMA(s0, wasm_f32x4_splat(a0[o]), b0);
        FMA(s1, wasm_f32x4_splat(a1[o]), b0);
        FMA(s2, wasm_f32x4_splat(a2[o]), b0);
        FMA(s3, wasm_f32x4_splat(a3[o]), b0);
      }
      wasm_v128_store(c0 + j, s0); wasm_v128_store(c1 + j, s1);
      wasm_v128_store(c2 + j, s2); wasm_v128_store(c3 + j, s3);
    }
    for (; j < n; j++) {
      f32 s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
      for (int p = 0, o = 0; p < k; p++, o += csA) {
        f32 bv = B[p * ldb + j];
        s0 += a0[o] * bv; s1 += a1[o] * bv; s2 += a2[o] * bv; s3 += a3[o] * bv;
      }
      c0[j] = s0; c1[j] = s1; c2[j] = s2; c3[j] = s3;
    }
  }
  for (; i < m; i++) {
    const f32 *a = A + i * rsA;
    f32 *c = C + i * n;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
      v128_t s = wasm_f32x4_splat(0.0f);
      const f32 *b = B + j;
      for (int p = 0, o = 0; p < k; p++, o += csA, b += ldb) FMA(s, wasm_f32x4_splat(a[o]), wasm_v128_load(b));
      wasm_v128_store(c + j, s);
    }
    for (; j < n; j++) {
      f32 s = 0.0f;
      for (int p = 0, o = 0; p < k; p++, o += csA) s += a[o] * B[p * ldb + j];
      c[j] = s;
    }
  }
}

/* C[b] = op(A[b]) op(B[b]) for b < batch; C[b] is m x n. A[b] starts at A + b * strideA (m x k,
 * or k x m when transA), B[b] at B + b * strideB (k x n, or n x k when transB); a stride of 0
 * broadcasts one matrix over the batch. A transposed B is packed into `scratch` (k x n floats)
 * first, so that the inner loop reads rows of B. */
EXPORT(rs_bmm)(const f32 *A, const f32 *B, f32 *C, f32 *scratch, int batch, int m, int n, int k, int strideA, int strideB, int transA, int transB) {
  int rsA = transA ? 1 : k, csA = transA ? m : 1;
  const f32 *packed = 0;
  for (int b = 0; b < batch; b++) {
    const f32 *bb = B + b * strideB;
    if (transB) {
      if (!(packed && strideB == 0)) {
        for (int j = 0; j < n; j++) {
          const f32 *row = bb + j * k;
          for (int p = 0; p < k; p++) scratch[p * n + j] = row[p];
        }
        packed = scratch;
      }
      bb = scratch;
    }
    gemm(A + b * strideA, rsA, csA, bb, n, C + b * m * n, m, n, k);
  }
}

/* dst[b] = src[b] transposed, for b < batch; src[b] is rows x cols of 4-byte elements (the bits
 * are moved, never computed on: float32 and int32 alike). Tiles of 64 source rows x 8 source
 * columns, each transposed in blocks of 4 x 4 by lane shuffles, tiles taken along the source rows
 * first. The tile's shape matters more than its size: with square 32 x 32 tiles, the 32
 * destination rows of a tile lie a power-of-two stride apart whenever `rows` is one (1024 here:
 * 4 KiB), so they fall into the same cache set and evict each other; a [1024, 512] transpose took
 * 1.0 ms that way and takes 0.17 ms with 64 x 8 tiles (in this module, 2-core Zen 5), whose 8
 * destination rows are each written 256 contiguous bytes at a time while the 64 source rows'
 * lines stay cached for the next tile. */
#define TR_ROWS 64
#define TR_COLS 8
EXPORT(rs_transpose)(const f32 *src, f32 *dst, int batch, int rows, int cols) {
  for (int b = 0; b < batch; b++) {
    const f32 *s = src + b * rows * cols;
    f32 *d = dst + b * rows * cols;
    for (int i0 = 0; i0 < rows; i0 += TR_ROWS) {
      int iEnd = i0 + TR_ROWS < rows ? i0 + TR_ROWS : rows;
      for (int j0 = 0; j0 < cols; j0 += TR_COLS) {
        int jEnd = j0 + TR_COLS < cols ? j0 + TR_COLS : cols;
        int i = i0;
        for (; i + 4 <= iEnd; i += 4) {
          int j = j0;
          for (; j + 4 <= jEnd; j += 4) {
            const f32 *r = s + i * cols + j;
            v128_t r0 = wasm_v128_load(r), r1 = wasm_v128_load(r + cols), r2 = wasm_v128_load(r + 2 * cols), r3 = wasm_v128_load(r + 3 * cols);
            v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
            v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
            f32 *o = d + j * rows + i;
            wasm_v128_store(o, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
            wasm_v128_store(o + rows, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
            wasm_v128_store(o + 2 * rows, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
            wasm_v128_store(o + 3 * rows, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
          }
          for (; j < jEnd; j++)
            for (int q = 0; q < 4; q++) d[j * rows + i + q] = s[(i + q) * cols + j];
        }
        for (; i < iEnd; i++)
          for (int j = j0; j < jEnd; j++) d[j * rows + i] = s[i * cols + j];
      }
    }
  }
}

/* out[r * m + j] = a[r * m + j] + b[j]: a bias or a mask added to every row (b broadcast over
 * the leading axes of a). */
EXPORT(rs_add_rows)(const f32 *a, const f32 *b, f32 *out, int rows, int m) {
  for (int r = 0; r < rows; r++) {
    const f32 *ar = a + r * m;
    f32 *o = out + r * m;
    int j = 0;
    for (; j + 4 <= m; j += 4) wasm_v128_store(o + j, wasm_f32x4_add(wasm_v128_load(ar + j), wasm_v128_load(b + j)));
    for (; j < m; j++) o[j] = ar[j] + b[j];
  }
}

/* out[j] = sum over i of x[i * cols + j]: a sum over the leading axes (a bias gradient), four
 * columns per vector, rows summed in order. */
EXPORT(rs_sum_leading)(const f32 *x, f32 *out, int rows, int cols) {
  int j = 0;
  for (; j + 16 <= cols; j += 16) {
    v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
    const f32 *r = x + j;
    for (int i = 0; i < rows; i++, r += cols) {
      s0 = wasm_f32x4_add(s0, wasm_v128_load(r));
      s1 = wasm_f32x4_add(s1, wasm_v128_load(r + 4));
      s2 = wasm_f32x4_add(s2, wasm_v128_load(r + 8));
      s3 = wasm_f32x4_add(s3, wasm_v128_load(r + 12));
    }
    wasm_v128_store(out + j, s0); wasm_v128_store(out + j + 4, s1);
    wasm_v128_store(out + j + 8, s2); wasm_v128_store(out + j + 12, s3);
  }
  for (; j + 4 <= cols; j += 4) {
    v128_t s = wasm_f32x4_splat(0.0f);
    for (int i = 0; i < rows; i++) s = wasm_f32x4_add(s, wasm_v128_load(x + i * cols + j));
    wasm_v128_store(out + j, s);
  }
  for (; j < cols; j++) {
    f32 s = 0.0f;
    for (int i = 0; i < rows; i++) s += x[i * cols + j];
    out[j] = s;
  }
}

/* e^x for x clamped to [-87.3, 88] (NaN stays NaN; 88 keeps 2^n finite, so e^x is at most 1.7e38 and e^x * sigmoid stays finite), four lanes at a time: x = n ln2 + r by Cody-Waite
 * reduction, e^r by Cephes' degree-6 polynomial (relative error about 2e-7), 2^n built in the
 * exponent bits. */
static inline v128_t exp_clamped4(v128_t x) {
  v128_t clamped = wasm_f32x4_pmax(wasm_f32x4_splat(-87.3f), wasm_f32x4_pmin(wasm_f32x4_splat(88.0f), x));
  x = wasm_v128_bitselect(clamped, x, wasm_f32x4_eq(x, x)); /* NaN stays NaN */
  v128_t n = wasm_f32x4_floor(wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)), wasm_f32x4_splat(0.5f)));
  v128_t r = wasm_f32x4_add(wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f))), wasm_f32x4_mul(n, wasm_f32x4_splat(2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.9875691500e-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.3981999507e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(8.3334519073e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(4.1665795894e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.6666665459e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(5.0000001201e-1f));
  p = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, r), r), r), wasm_f32x4_splat(1.0f));
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(p, scale);
}

/* tanh(v) as a rational function, odd polynomial of degree 13 over even of degree 6, on
 * [-7.99, 7.99] (the minimax fit that Eigen uses for float; relative error under 4e-7 in float
 * arithmetic, measured against double tanh, small |v| included), +-1 beyond (tanh rounds to
 * within 2.3e-7 of 1 there). No exp and one division: about 40% fewer operations than
 * 1 - 2 / (e^2v + 1), which also loses relative precision near 0. NaN stays NaN, -0 stays -0. */
static inline v128_t tanh4(v128_t v) {
  v128_t limit = wasm_f32x4_splat(7.99f);
  v128_t x = wasm_f32x4_pmax(wasm_f32x4_neg(limit), wasm_f32x4_pmin(limit, v));
  v128_t x2 = wasm_f32x4_mul(x, x);
  v128_t p = wasm_f32x4_splat(-2.76076847742355e-16f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(2.00018790482477e-13f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(-8.60467152213735e-11f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(5.12229709037114e-08f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(1.48572235717979e-05f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(6.37261928875436e-04f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, x2), wasm_f32x4_splat(4.89352455891786e-03f));
  p = wasm_f32x4_mul(p, x);
  v128_t q = wasm_f32x4_splat(1.19825839466702e-06f);
  q = wasm_f32x4_add(wasm_f32x4_mul(q, x2), wasm_f32x4_splat(1.18534705686654e-04f));
  q = wasm_f32x4_add(wasm_f32x4_mul(q, x2), wasm_f32x4_splat(2.26843463243900e-03f));
  q = wasm_f32x4_add(wasm_f32x4_mul(q, x2), wasm_f32x4_splat(4.89352518554385e-03f));
  v128_t t = wasm_f32x4_div(p, q);
  v128_t one = wasm_v128_or(wasm_v128_and(v, wasm_i32x4_splat((int32_t)0x80000000)), wasm_f32x4_splat(1.0f));
  t = wasm_v128_bitselect(one, t, wasm_f32x4_ge(wasm_f32x4_abs(v), limit));
  return wasm_v128_bitselect(t, v, wasm_f32x4_eq(v, v));
}

EXPORT(rs_tanh)(const f32 *x, f32 *y, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, tanh4(wasm_v128_load(x + i)));
  for (; i < n; i++) y[i] = wasm_f32x4_extract_lane(tanh4(wasm_f32x4_splat(x[i])), 0);
}

/* The tail of an element-wise loop (under 4 elements), one lane at a time through the vector code. */
#define TAIL1(EXPR_OF_V) wasm_f32x4_extract_lane(EXPR_OF_V, 0)

/* GELU, tanh form (core's gelu op): 0.5 x (1 + tanh(u)) with u = s (x + 0.044715 x^3), computed
 * as x sigmoid(2u) = x / (1 + e^-2u) (the same function: 0.5 (1 + tanh u) = sigmoid(2u)), so that
 * the tail for negative x keeps its relative precision (1 + tanh u loses it near -1). Gradient:
 * with sig = sigmoid(2u) and 1 - sig = e^-2u sig,
 * dx = dy sig (1 + 2 x (1 - sig) s (1 + 3 * 0.044715 x^2)). */
#define GELU_S 0.7978845608028654f
#define GELU_C 0.044715f

/* e^-2u and sigmoid(2u) for four inputs. */
static inline void gelu_parts(v128_t v, v128_t *e, v128_t *sig) {
  v128_t u = wasm_f32x4_mul(wasm_f32x4_splat(GELU_S), wasm_f32x4_add(v, wasm_f32x4_mul(wasm_f32x4_splat(GELU_C), wasm_f32x4_mul(wasm_f32x4_mul(v, v), v))));
  *e = exp_clamped4(wasm_f32x4_mul(wasm_f32x4_splat(-2.0f), u));
  *sig = wasm_f32x4_div(wasm_f32x4_splat(1.0f), wasm_f32x4_add(wasm_f32x4_splat(1.0f), *e));
}

static inline v128_t gelu4(v128_t v) {
  v128_t e, sig;
  gelu_parts(v, &e, &sig);
  return wasm_f32x4_mul(v, sig);
}

static inline v128_t gelu_grad4(v128_t dy, v128_t v) {
  v128_t e, sig;
  gelu_parts(v, &e, &sig);
  v128_t slope = wasm_f32x4_mul(wasm_f32x4_splat(GELU_S), wasm_f32x4_add(wasm_f32x4_splat(1.0f), wasm_f32x4_mul(wasm_f32x4_splat(3.0f * GELU_C), wasm_f32x4_mul(v, v))));
  v128_t inner = wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_add(v, v), wasm_f32x4_mul(e, sig)), slope);
  return wasm_f32x4_mul(dy, wasm_f32x4_mul(sig, wasm_f32x4_add(wasm_f32x4_splat(1.0f), inner)));
}

EXPORT(rs_gelu)(const f32 *x, f32 *y, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, gelu4(wasm_v128_load(x + i)));
  for (; i < n; i++) y[i] = TAIL1(gelu4(wasm_f32x4_splat(x[i])));
}

EXPORT(rs_gelu_grad)(const f32 *dy, const f32 *x, f32 *dx, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dx + i, gelu_grad4(wasm_v128_load(dy + i), wasm_v128_load(x + i)));
  for (; i < n; i++) dx[i] = TAIL1(gelu_grad4(wasm_f32x4_splat(dy[i]), wasm_f32x4_splat(x[i])));
}

/* One Adam update (core's ADAM_UPDATE_KERNEL), in the order of core's formula:
 * m' = m b1 + g (1 - b1); v' = v b2 + g^2 (1 - b2); p' = (p - p decay) - ((m' / c1) / (sqrt(v' / c2) + eps)) lr. */
static inline void adam4(const f32 *p, const f32 *g, const f32 *m, const f32 *v, f32 *pOut, f32 *mOut, f32 *vOut, int i, int lanes, f32 lr, f32 b1, f32 b2, f32 omb1, f32 omb2, f32 c1, f32 c2, f32 eps, f32 decay) {
  v128_t gi, mi, vi, pi;
  if (lanes == 4) {
    gi = wasm_v128_load(g + i); mi = wasm_v128_load(m + i); vi = wasm_v128_load(v + i); pi = wasm_v128_load(p + i);
  } else {
    gi = wasm_f32x4_splat(g[i]); mi = wasm_f32x4_splat(m[i]); vi = wasm_f32x4_splat(v[i]); pi = wasm_f32x4_splat(p[i]);
  }
  v128_t m1 = wasm_f32x4_add(wasm_f32x4_mul(mi, wasm_f32x4_splat(b1)), wasm_f32x4_mul(gi, wasm_f32x4_splat(omb1)));
  v128_t v1 = wasm_f32x4_add(wasm_f32x4_mul(vi, wasm_f32x4_splat(b2)), wasm_f32x4_mul(wasm_f32x4_mul(gi, gi), wasm_f32x4_splat(omb2)));
  v128_t base = decay > 0.0f ? wasm_f32x4_sub(pi, wasm_f32x4_mul(pi, wasm_f32x4_splat(decay))) : pi;
  v128_t denom = wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_div(v1, wasm_f32x4_splat(c2))), wasm_f32x4_splat(eps));
  v128_t p1 = wasm_f32x4_sub(base, wasm_f32x4_mul(wasm_f32x4_div(wasm_f32x4_div(m1, wasm_f32x4_splat(c1)), denom), wasm_f32x4_splat(lr)));
  if (lanes == 4) {
    wasm_v128_store(mOut + i, m1); wasm_v128_store(vOut + i, v1); wasm_v128_store(pOut + i, p1);
  } else {
    mOut[i] = wasm_f32x4_extract_lane(m1, 0); vOut[i] = wasm_f32x4_extract_lane(v1, 0); pOut[i] = wasm_f32x4_extract_lane(p1, 0);
  }
}

EXPORT(rs_adam)(const f32 *p, const f32 *g, const f32 *m, const f32 *v, f32 *pOut, f32 *mOut, f32 *vOut, int n, f32 lr, f32 b1, f32 b2, f32 omb1, f32 omb2, f32 c1, f32 c2, f32 eps, f32 decay) {
  int i = 0;
  for (; i + 4 <= n; i += 4) adam4(p, g, m, v, pOut, mOut, vOut, i, 4, lr, b1, b2, omb1, omb2, c1, c2, eps, decay);
  for (; i < n; i++) adam4(p, g, m, v, pOut, mOut, vOut, i, 1, lr, b1, b2, omb1, omb2, c1, c2, eps, decay);
}

/* Softmax of each row of x (rows x c) into probs, and each row's max and sum of e^(x - max) into
 * stats[2r], stats[2r + 1] (the caller takes the log: the loss is log(sum) - (x[label] - max)).
 * NaN in a row propagates to its probabilities. */
EXPORT(rs_softmax_rows)(const f32 *x, f32 *probs, f32 *stats, int rows, int c) {
  for (int r = 0; r < rows; r++) {
    const f32 *xr = x + r * c;
    f32 *pr = probs + r * c;
    f32 mx = xr[0];
    for (int j = 1; j < c; j++) mx = xr[j] > mx ? xr[j] : mx;
    v128_t vm = wasm_f32x4_splat(mx), acc = wasm_f32x4_splat(0.0f);
    int j = 0;
    for (; j + 4 <= c; j += 4) {
      v128_t e = exp_clamped4(wasm_f32x4_sub(wasm_v128_load(xr + j), vm));
      wasm_v128_store(pr + j, e);
      acc = wasm_f32x4_add(acc, e);
    }
    f32 s = hsum(acc);
    for (; j < c; j++) {
      f32 e = wasm_f32x4_extract_lane(exp_clamped4(wasm_f32x4_splat(xr[j] - mx)), 0);
      pr[j] = e;
      s += e;
    }
    v128_t inv = wasm_f32x4_splat(1.0f / s);
    for (j = 0; j + 4 <= c; j += 4) wasm_v128_store(pr + j, wasm_f32x4_mul(wasm_v128_load(pr + j), inv));
    for (; j < c; j++) pr[j] *= 1.0f / s;
    stats[2 * r] = mx;
    stats[2 * r + 1] = s;
  }
}

/* The gradient of the mean softmax cross-entropy: out = dy (probs - onehot(label)) / rows; a row
 * whose label is outside [0, c) gets 0. */
EXPORT(rs_softmax_ce_grad)(f32 dy, const f32 *probs, const int32_t *labels, f32 *out, int rows, int c) {
  f32 scale = dy / (f32)rows;
  v128_t vs = wasm_f32x4_splat(scale);
  for (int r = 0; r < rows; r++) {
    const f32 *pr = probs + r * c;
    f32 *o = out + r * c;
    int32_t label = labels[r];
    int inRange = label >= 0 && label < c;
    int j = 0;
    for (; j + 4 <= c; j += 4) wasm_v128_store(o + j, inRange ? wasm_f32x4_mul(wasm_v128_load(pr + j), vs) : wasm_f32x4_splat(0.0f));
    for (; j < c; j++) o[j] = inRange ? pr[j] * scale : 0.0f;
    if (inRange) o[label] -= scale;
  }
}

/* Layer normalisation over rows of d (core's LAYER_NORM_KERNEL), in the order of core's composed
 * form: mean, variance = mean of (x - mean)^2, rstd = 1 / sqrt(variance + eps),
 * y = ((x - mean) rstd) gamma + beta. Each row's mean and rstd are kept for the gradient. */
EXPORT(rs_layer_norm)(const f32 *x, const f32 *gamma, const f32 *beta, f32 *y, f32 *mean, f32 *rstd, int rows, int d, f32 eps) {
  for (int r = 0; r < rows; r++) {
    const f32 *xr = x + r * d;
    f32 *yr = y + r * d;
    v128_t acc = wasm_f32x4_splat(0.0f);
    int j = 0;
    for (; j + 4 <= d; j += 4) acc = wasm_f32x4_add(acc, wasm_v128_load(xr + j));
    f32 s = hsum(acc);
    for (; j < d; j++) s += xr[j];
    f32 mu = s / (f32)d;
    v128_t vmu = wasm_f32x4_splat(mu);
    acc = wasm_f32x4_splat(0.0f);
    for (j = 0; j + 4 <= d; j += 4) {
      v128_t c = wasm_f32x4_sub(wasm_v128_load(xr + j), vmu);
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(c, c));
    }
    f32 q = hsum(acc);
    for (; j < d; j++) q += (xr[j] - mu) * (xr[j] - mu);
    f32 rs = 1.0f / __builtin_sqrtf(q / (f32)d + eps);
    v128_t vrs = wasm_f32x4_splat(rs);
    for (j = 0; j + 4 <= d; j += 4) {
      v128_t n = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), vmu), vrs);
      wasm_v128_store(yr + j, wasm_f32x4_add(wasm_f32x4_mul(n, wasm_v128_load(gamma + j)), wasm_v128_load(beta + j)));
    }
    for (; j < d; j++) yr[j] = ((xr[j] - mu) * rs) * gamma[j] + beta[j];
    mean[r] = mu;
    rstd[r] = rs;
  }
}

/* Its gradient: with xhat = (x - mean) rstd and g = dy gamma, per row
 * dx = rstd (g - mean(g) - xhat mean(g xhat)); dgamma = sum over rows of dy xhat, dbeta = sum of dy. */
EXPORT(rs_layer_norm_grad)(const f32 *dy, const f32 *x, const f32 *gamma, const f32 *mean, const f32 *rstd, f32 *dx, f32 *dgamma, f32 *dbeta, int rows, int d) {
  int j;
  for (j = 0; j < d; j++) dgamma[j] = dbeta[j] = 0.0f;
  for (int r = 0; r < rows; r++) {
    const f32 *xr = x + r * d, *dyr = dy + r * d;
    f32 *dxr = dx + r * d;
    v128_t vmu = wasm_f32x4_splat(mean[r]), vrs = wasm_f32x4_splat(rstd[r]);
    v128_t sg = wasm_f32x4_splat(0.0f), sgx = sg;
    for (j = 0; j + 4 <= d; j += 4) {
      v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), vmu), vrs);
      v128_t dv = wasm_v128_load(dyr + j);
      v128_t g = wasm_f32x4_mul(dv, wasm_v128_load(gamma + j));
      sg = wasm_f32x4_add(sg, g);
      sgx = wasm_f32x4_add(sgx, wasm_f32x4_mul(g, xh));
      wasm_v128_store(dgamma + j, wasm_f32x4_add(wasm_v128_load(dgamma + j), wasm_f32x4_mul(dv, xh)));
      wasm_v128_store(dbeta + j, wasm_f32x4_add(wasm_v128_load(dbeta + j), dv));
    }
    f32 a = hsum(sg), b = hsum(sgx);
    for (; j < d; j++) {
      f32 xh = (xr[j] - mean[r]) * rstd[r], g = dyr[j] * gamma[j];
      a += g;
      b += g * xh;
      dgamma[j] += dyr[j] * xh;
      dbeta[j] += dyr[j];
    }
    a /= (f32)d;
    b /= (f32)d;
    v128_t va = wasm_f32x4_splat(a), vb = wasm_f32x4_splat(b);
    for (j = 0; j + 4 <= d; j += 4) {
      v128_t xh = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), vmu), vrs);
      v128_t g = wasm_f32x4_mul(wasm_v128_load(dyr + j), wasm_v128_load(gamma + j));
      wasm_v128_store(dxr + j, wasm_f32x4_mul(vrs, wasm_f32x4_sub(wasm_f32x4_sub(g, va), wasm_f32x4_mul(xh, vb))));
    }
    for (; j < d; j++) {
      f32 xh = (xr[j] - mean[r]) * rstd[r];
      dxr[j] = rstd[r] * (dyr[j] * gamma[j] - a - xh * b);
    }
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Gradients of convolutions and pooling (NHWC input, HWIO filter): stock tfjs-backend-wasm   */
/* has no filter gradient and a wrong max-pool gradient (both ran as JavaScript), and a scalar  */
/* input gradient. Geometry: N H W C input, KH KW window, OC output channels, OH OW output,     */
/* SH SW strides, PT PL the padding before the first row and column (dilation 1, as tfjs       */
/* takes gradients of undilated convolutions and pools only).                                  */
/* ---------------------------------------------------------------------------------------- */

static void zero(f32 *p, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(p + i, wasm_f32x4_splat(0.0f));
  for (; i < n; i++) p[i] = 0.0f;
}

/* o[0..n) += s * d[0..n). */
static inline void axpy(f32 *o, f32 s, const f32 *d, int n) {
  v128_t v = wasm_f32x4_splat(s);
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(o + i, wasm_f32x4_add(wasm_v128_load(o + i), wasm_f32x4_mul(v, wasm_v128_load(d + i))));
  for (; i < n; i++) o[i] += s * d[i];
}


/* The first n (0 to 4) floats at p in lanes 0..n-1, zeros above: never reads past p[n-1]. */
static inline v128_t load_n(const f32 *p, int n) {
  switch (n) {
    case 4: return wasm_v128_load(p);
    case 3: return wasm_f32x4_replace_lane(wasm_v128_load64_zero(p), 2, p[2]);
    case 2: return wasm_v128_load64_zero(p);
    case 1: return wasm_v128_load32_zero(p);
    default: return wasm_f32x4_splat(0.0f);
  }
}

/* Stores the first n (0 to 4) lanes of v at p: never writes past p[n-1]. */
static inline void store_n(f32 *p, v128_t v, int n) {
  switch (n) {
    case 4: wasm_v128_store(p, v); break;
    case 3: wasm_v128_store64_lane(p, v, 0); p[2] = wasm_f32x4_extract_lane(v, 2); break;
    case 2: wasm_v128_store64_lane(p, v, 0); break;
    case 1: wasm_v128_store32_lane(p, v, 0); break;
    default: break;
  }
}

/* dw[KH, KW, C, OC] for at most 16 output channels (first layers: LeNet-5's have 6 and 16; the
 * JavaScript side sends wider filters to rs_conv_grad_filter_gemm): one filter value (ky, kx,
 * c) at a time, its OC sums held in registers (two for up to 8 channels, four for up to 16)
 * over every output position. With an axpy over the OC channels per position and filter value,
 * LeNet-5's first layer took 3x longer. */
EXPORT(rs_conv_grad_filter)(const f32 *x, const f32 *dy, f32 *dw, int N, int H, int W, int C, int KH, int KW, int OC, int OH, int OW, int SH, int SW, int PT, int PL) {
  const int n0 = OC < 4 ? OC : 4, n1 = OC - 4 < 0 ? 0 : (OC - 4 < 4 ? OC - 4 : 4), n2 = OC - 8 < 0 ? 0 : (OC - 8 < 4 ? OC - 8 : 4), n3 = OC - 12 < 0 ? 0 : OC - 12;
  for (int ky = 0; ky < KH; ky++)
    for (int kx = 0; kx < KW; kx++) {
      /* The output columns whose input column is inside the image. */
      int ox0 = 0, ox1 = OW;
      while (ox0 < OW && ox0 * SW - PL + kx < 0) ox0++;
      while (ox1 > ox0 && (ox1 - 1) * SW - PL + kx >= W) ox1--;
      for (int c = 0; c < C; c++) {
        v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (int n = 0; n < N; n++)
          for (int oy = 0; oy < OH; oy++) {
            int iy = oy * SH - PT + ky;
            if (iy < 0 || iy >= H) continue;
            const f32 *xr = x + ((n * H + iy) * W + (ox0 * SW - PL + kx)) * C + c;
            const f32 *d = dy + ((n * OH + oy) * OW + ox0) * OC;
            if (OC <= 8) {
              for (int ox = ox0; ox < ox1; ox++, xr += SW * C, d += OC) {
                v128_t v = wasm_f32x4_splat(*xr);
                FMA(a0, v, load_n(d, n0));
                FMA(a1, v, load_n(d + 4, n1));
              }
            } else {
              for (int ox = ox0; ox < ox1; ox++, xr += SW * C, d += OC) {
                v128_t v = wasm_f32x4_splat(*xr);
                FMA(a0, v, wasm_v128_load(d));
                FMA(a1, v, wasm_v128_load(d + 4));
                FMA(a2, v, load_n(d + 8, n2));
                FMA(a3, v, load_n(d + 12, n3));
              }
            }
          }
        f32 *o = dw + ((ky * KW + kx) * C + c) * OC;
        store_n(o, a0, n0);
        store_n(o + 4, a1, n1);
        store_n(o + 8, a2, n2);
        store_n(o + 12, a3, n3);
      }
    }
}

/* Copies or adds n floats. */
static inline void copy(f32 *d, const f32 *s, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(d + i, wasm_v128_load(s + i));
  for (; i < n; i++) d[i] = s[i];
}
static inline void add_to(f32 *d, const f32 *s, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(d + i, wasm_f32x4_add(wasm_v128_load(d + i), wasm_v128_load(s + i)));
  for (; i < n; i++) d[i] += s[i];
}

/* Visits every window row of images n0 .. n0+nb-1: `col` (of type COL) points at the KW*C
 * values of window row ky of output position (n, oy, ox) in `cols` (one row of K = KH*KW*C
 * values per output position); the row reads input row iy (outside the image when iy < 0 or
 * >= H) from column ix0, and kernel columns kx0 .. kx1-1 are inside the image. */
#define FOR_EACH_WINDOW_ROW(COL, BODY)                                                    \
  for (int n = n0; n < n0 + nb; n++)                                                      \
    for (int oy = 0; oy < OH; oy++)                                                       \
      for (int ox = 0; ox < OW; ox++) {                                                   \
        COL *row = cols + (((n - n0) * OH + oy) * OW + ox) * KH * KW * C;                 \
        int ix0 = ox * SW - PL, kx0 = ix0 < 0 ? -ix0 : 0, kx1 = W - ix0 < KW ? W - ix0 : KW; \
        for (int ky = 0; ky < KH; ky++) {                                                 \
          int iy = oy * SH - PT + ky;                                                     \
          COL *col = row + ky * KW * C;                                                   \
          BODY                                                                            \
        }                                                                                 \
      }

/* cols (one row of KH*KW*C values per output position of images n0 .. n0+nb-1, zeros outside
 * the image) from x. */
static void im2col(const f32 *x, f32 *cols, int n0, int nb, int H, int W, int C, int KH, int KW, int OH, int OW, int SH, int SW, int PT, int PL) {
  FOR_EACH_WINDOW_ROW(f32, {
    if (iy < 0 || iy >= H || kx0 >= kx1) {
      zero(col, KW * C);
    } else {
      zero(col, kx0 * C);
      copy(col + kx0 * C, x + ((n * H + iy) * W + ix0 + kx0) * C, (kx1 - kx0) * C);
      zero(col + kx1 * C, (KW - kx1) * C);
    }
  })
}

/* dx (images n0 .. n0+nb-1) += the window rows of cols. */
static void col2im_add(const f32 *cols, f32 *dx, int n0, int nb, int H, int W, int C, int KH, int KW, int OH, int OW, int SH, int SW, int PT, int PL) {
  FOR_EACH_WINDOW_ROW(const f32, {
    if (iy >= 0 && iy < H && kx0 < kx1) add_to(dx + ((n * H + iy) * W + ix0 + kx0) * C, col + kx0 * C, (kx1 - kx0) * C);
  })
}

/* Output positions per GEMM of the filter gradient: the GEMM has no blocking of its own over
 * the summed dimension, and a pass over all of a chunk's cols per 4x8 output block (576 passes
 * for a 3x3x32 -> 64 layer) took 49 ms where 256 rows at a time stay in cache. */
#define FILTER_ROWS 256

/* dw[K, OC] = cols^T dy, K = KH*KW*C, over chunks of `chunk` images (cols holds one chunk,
 * part one K x OC product), FILTER_ROWS output positions per GEMM: the module's GEMM reads cols
 * transposed through its strides. */
EXPORT(rs_conv_grad_filter_gemm)(const f32 *x, const f32 *dy, f32 *dw, f32 *cols, f32 *part, int chunk, int N, int H, int W, int C, int KH, int KW, int OC, int OH, int OW, int SH, int SW, int PT, int PL) {
  const int K = KH * KW * C, P = OH * OW;
  int first = 1;
  for (int n0 = 0; n0 < N; n0 += chunk) {
    int nb = n0 + chunk <= N ? chunk : N - n0;
    im2col(x, cols, n0, nb, H, W, C, KH, KW, OH, OW, SH, SW, PT, PL);
    for (int p0 = 0; p0 < nb * P; p0 += FILTER_ROWS) {
      int len = p0 + FILTER_ROWS <= nb * P ? FILTER_ROWS : nb * P - p0;
      gemm(cols + p0 * K, 1, K, dy + (n0 * P + p0) * OC, OC, first ? dw : part, K, OC, len);
      if (!first) add_to(dw, part, K * OC);
      first = 0;
    }
  }
}

/* dx = col2im(dy W^T), over chunks of `chunk` images; wt receives W^T (OC x K), cols one
 * chunk's window gradients. */
EXPORT(rs_conv_grad_input_gemm)(const f32 *dy, const f32 *w, f32 *dx, f32 *wt, f32 *cols, int chunk, int N, int H, int W, int C, int KH, int KW, int OC, int OH, int OW, int SH, int SW, int PT, int PL) {
  const int K = KH * KW * C, P = OH * OW;
  rs_transpose(w, wt, 1, K, OC);
  zero(dx, N * H * W * C);
  for (int n0 = 0; n0 < N; n0 += chunk) {
    int nb = n0 + chunk <= N ? chunk : N - n0;
    gemm(dy + n0 * P * OC, OC, 1, wt, K, cols, nb * P, K, OC);
    col2im_add(cols, dx, n0, nb, H, W, C, KH, KW, OH, OW, SH, SW, PT, PL);
  }
}

/* Pooling gradients, as tfjs-backend-cpu: a max window's dy goes to its first strict maximum
 * among the positions inside the input (none when every value is NaN or -inf); an average
 * window's dy / (KH * KW) to each of its positions inside the input. */
EXPORT(rs_pool_grad)(int isMax, const f32 *dy, const f32 *x, f32 *dx, int N, int H, int W, int C, int KH, int KW, int OH, int OW, int SH, int SW, int PT, int PL) {
  const f32 scale = 1.0f / (f32)(KH * KW);
  zero(dx, N * H * W * C);
  for (int n = 0; n < N; n++)
    for (int oy = 0; oy < OH; oy++) {
      int y0 = oy * SH - PT, y1 = y0 + KH;
      if (y0 < 0) y0 = 0;
      if (y1 > H) y1 = H;
      for (int ox = 0; ox < OW; ox++) {
        int x0 = ox * SW - PL, x1 = x0 + KW;
        if (x0 < 0) x0 = 0;
        if (x1 > W) x1 = W;
        const f32 *d = dy + ((n * OH + oy) * OW + ox) * C;
        if (isMax) {
          for (int c = 0; c < C; c++) {
            f32 best = -__builtin_inff();
            int at = -1;
            for (int iy = y0; iy < y1; iy++)
              for (int ix = x0; ix < x1; ix++) {
                int o = ((n * H + iy) * W + ix) * C + c;
                if (x[o] > best) { best = x[o]; at = o; }
              }
            if (at >= 0) dx[at] += d[c];
          }
        } else {
          for (int iy = y0; iy < y1; iy++)
            for (int ix = x0; ix < x1; ix++) axpy(dx + ((n * H + iy) * W + ix) * C, scale, d, C);
        }
      }
    }
}
