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

/* e^x for x clamped to [-87.3, 88.7], four lanes at a time: x = n ln2 + r by Cody-Waite
 * reduction, e^r by Cephes' degree-6 polynomial (relative error about 2e-7), 2^n built in the
 * exponent bits. */
static inline v128_t exp_clamped4(v128_t x) {
  x = wasm_f32x4_pmax(wasm_f32x4_splat(-87.3f), wasm_f32x4_pmin(wasm_f32x4_splat(88.7f), x));
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

/* tanh(v) = 1 - 2 / (e^2v + 1) for |v| >= 0.25 (absolute error about 1e-7, so relative error
 * under 5e-7 there; exactly +-1 where it saturates); below, where that form would lose the
 * relative precision of small results, the odd Taylor polynomial to v^7 (truncation error under
 * 1e-7 relative). NaN stays NaN. */
static inline v128_t tanh4(v128_t v) {
  v128_t e = exp_clamped4(wasm_f32x4_add(v, v));
  v128_t big = wasm_f32x4_sub(wasm_f32x4_splat(1.0f), wasm_f32x4_div(wasm_f32x4_splat(2.0f), wasm_f32x4_add(e, wasm_f32x4_splat(1.0f))));
  v128_t v2 = wasm_f32x4_mul(v, v);
  v128_t q = wasm_f32x4_add(wasm_f32x4_mul(v2, wasm_f32x4_splat(-17.0f / 315.0f)), wasm_f32x4_splat(2.0f / 15.0f));
  q = wasm_f32x4_add(wasm_f32x4_mul(v2, q), wasm_f32x4_splat(-1.0f / 3.0f));
  v128_t small = wasm_f32x4_mul(v, wasm_f32x4_add(wasm_f32x4_splat(1.0f), wasm_f32x4_mul(v2, q))); /* v (1 + ...): keeps -0 */
  v128_t t = wasm_v128_bitselect(small, big, wasm_f32x4_lt(wasm_f32x4_abs(v), wasm_f32x4_splat(0.25f)));
  return wasm_v128_bitselect(t, v, wasm_f32x4_eq(v, v));
}

EXPORT(rs_tanh)(const f32 *x, f32 *y, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(y + i, tanh4(wasm_v128_load(x + i)));
  for (; i < n; i++) y[i] = wasm_f32x4_extract_lane(tanh4(wasm_f32x4_splat(x[i])), 0);
}
