// Winograd F(4x4, 3x3) over nhwc f32 (see cpu_winograd.h for why). Work is split into blocks of `tb` output
// tiles. Each thread takes whole blocks and, per block, keeps everything in its L2:
//   1. input transform   V[p][t][c] = (B^T d B)[p] of the 6x6 input tile d of each tile t (p = 0..35),
//   2. 36 small GEMMs    M[p][t][k] = sum_c V[p][t][c] * U[p][c][k],
//   3. output transform  y tile = A^T M A (4x4), plus the epilogue (bias, accumulate, ReLU), stored into nhwc.
// The transforms run on 8 channels at a time (one AVX2 register), the GEMM is a 6x16 register-blocked
// micro-kernel.
// Layers with many channels (ResNet-18's 256 and 512) run the same three stages layer-wide instead: the 36 GEMMs
// of a block would each stream the whole U[p] (C x K floats, 1 MiB at 512 x 512; 36 MiB in all, beyond L2 and
// L3) for a handful of tiles. There stage 1 transforms every tile, stage 2 is 36 large GEMMs (oneDNN's sgemm,
// cache-blocked; one position per thread), stage 3 transforms every tile back.
// Only functions marked MINIDL_AVX2 use AVX2 instructions, and they run only after
// the ISA dispatch (cpu_isa.h) says the CPU has AVX2 and FMA and MINIDL_CPU_ISA allows them (the library itself is
// built for baseline x86-64).
#include "backends/cpu/cpu_winograd.h"

#include <dnnl.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "backends/cpu/cpu_isa.h"
#include "core/env.h"
#include "core/error.h"
#include "core/threads.h"
#include "tensor/tensor.h"

#define MINIDL_AVX2 __attribute__((target("avx2,fma")))

namespace minidl::cpu {
namespace {

std::atomic<int> g_override{-1};             // -1: follow MINIDL_CPU_CONV; 0 / 1: set_winograd_enabled
std::atomic<int> g_layer_wide_override{-1};  // -1: by size / MINIDL_WINOGRAD_LAYERWIDE; 0 / 1: set_winograd_layer_wide

// AVX2 + FMA present and allowed by MINIDL_CPU_ISA (cpu_isa.h).
bool cpu_has_avx2_fma() { return isa_enabled(CpuIsa::Avx2); }

bool env_allows_winograd() {
  static const int allowed = [] {
    const auto v = env_string("MINIDL_CPU_CONV");
    if (!v || *v == "auto" || *v == "winograd") return 1;
    if (*v == "direct") return 0;
    return -1;
  }();
  MINIDL_CHECK(allowed >= 0, "MINIDL_CPU_CONV must be 'auto', 'winograd' or 'direct', got '",
               env_string("MINIDL_CPU_CONV").value_or(""), "'");
  return allowed == 1;
}

// Tiles per block: V and M of one block (36 * tb * (C + K) floats) fit in about 320 KiB, well inside the
// 512 KiB - 1 MiB L2 of current x86 cores, leaving room for the weights U[p] of the GEMM being run. A multiple of
// the micro-kernel's 6 rows. Backward-weights asks for twice the budget: every block reads and writes the whole
// accumulator dU (36 * C * K floats), so longer blocks amortise it.
int64_t block_tiles(int64_t in_c, int64_t out_c, int64_t budget_bytes = 320 * 1024) {
  const int64_t tb = budget_bytes / 4 / (36 * (in_c + out_c));
  return std::clamp<int64_t>(tb / 6 * 6, 6, 96);
}

float* thread_scratch(size_t floats) {
  static thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

// ---------------------------------------------------------------- the three stages (AVX2 + FMA)

// r = B^T d for one column of six vectors, B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
// 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
MINIDL_AVX2 inline void bt6(const __m256* d, __m256* r) {
  const __m256 two = _mm256_set1_ps(2.f), four = _mm256_set1_ps(4.f), five = _mm256_set1_ps(5.f);
  const __m256 t0 = _mm256_fnmadd_ps(four, d[2], d[4]);  // d4 - 4 d2
  const __m256 t1 = _mm256_fnmadd_ps(four, d[1], d[3]);  // d3 - 4 d1
  const __m256 t2 = _mm256_sub_ps(d[4], d[2]);
  const __m256 t3 = _mm256_mul_ps(two, _mm256_sub_ps(d[3], d[1]));
  r[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));
  r[1] = _mm256_add_ps(t0, t1);
  r[2] = _mm256_sub_ps(t0, t1);
  r[3] = _mm256_add_ps(t2, t3);
  r[4] = _mm256_sub_ps(t2, t3);
  r[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));
}

// o = A^T m for six vectors, A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
MINIDL_AVX2 inline void at6(const __m256* m, __m256* o) {
  const __m256 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
  const __m256 s34 = _mm256_add_ps(m[3], m[4]), d34 = _mm256_sub_ps(m[3], m[4]);
  o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
  o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.f), d34, d12);
  o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.f), s34, s12);
  o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.f), d34, d12), m[5]);
}

struct Geometry {
  int64_t C = 0, K = 0, H = 0, W = 0, P = 0, Q = 0, pad_h = 0, pad_w = 0;
  int64_t tiles_h = 0, tiles_w = 0, tiles_per_image = 0, tb = 0;
  int64_t vstride = 0, mstride = 0;  // floats between positions p of V and of M: tb * C (K) plus one cache line, so
                                     // the 36 positions of a tile do not all fall into the same L1 set
};

// out[(i * 6 + j) * pstride] = (T x T^T)[i][j] for the N x N tile x[i][j] = src[i * N + j][c .. c + 8) and a 1-D
// transform T from N values to 6 (B^T of the input, N = 6; A of the output gradient, N = 4): columns, then rows.
template <int N, void (*Transform)(const __m256*, __m256*)>
MINIDL_AVX2 inline void transform_2d(const float* const* src, int64_t c, float* out, int64_t pstride) {
  __m256 tmp[6 * N];  // tmp[j * 6 + i] = (T x)[i][j]
  for (int j = 0; j < N; ++j) {
    __m256 d[N];
    for (int i = 0; i < N; ++i) d[i] = _mm256_loadu_ps(src[i * N + j] + c);
    Transform(d, tmp + j * 6);
  }
  for (int i = 0; i < 6; ++i) {
    __m256 row[N], r[6];
    for (int j = 0; j < N; ++j) row[j] = tmp[j * 6 + i];
    Transform(row, r);
    for (int j = 0; j < 6; ++j) _mm256_storeu_ps(out + (i * 6 + j) * pstride, r[j]);
  }
}

// Stage 1 for tiles [t0, t0 + nt) into V[p][t - t0][c] (position stride g.vstride). Each tile first gets a
// table of its 36 source pixels, where a pixel outside the image points at `zeros` (C floats of 0): the
// transform itself then has no bounds checks and no index arithmetic.
MINIDL_AVX2 void input_transform(float* V, const float* in, const float* zeros, const Geometry& g, int64_t t0,
                                 int64_t nt) {
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t tile = t0 + t, n = tile / g.tiles_per_image, rem = tile % g.tiles_per_image;
    const int64_t ih0 = rem / g.tiles_w * 4 - g.pad_h, iw0 = rem % g.tiles_w * 4 - g.pad_w;
    const float* img = in + n * g.H * g.W * g.C;
    const float* src[36];
    for (int i = 0; i < 6; ++i) {
      const bool row_ok = ih0 + i >= 0 && ih0 + i < g.H;
      for (int j = 0; j < 6; ++j) {
        const bool ok = row_ok && iw0 + j >= 0 && iw0 + j < g.W;
        src[i * 6 + j] = ok ? img + ((ih0 + i) * g.W + iw0 + j) * g.C : zeros;
      }
    }
    float* v = V + t * g.C;
    for (int64_t c = 0; c < g.C; c += 8) transform_2d<6, bt6>(src, c, v + c, g.vstride);
  }
}

// The one GEMM micro-kernel: m[ROWS][8 * COLS] (+)= sum over i < n of v_i[r] * u_i[0 .. 8 * COLS), where
// v_i[r] = v[r * v_row + i * v_iter] and u_i = u + i * u_iter; m's rows are m_row apart. The forward's
// M[p] = V[p] U[p] walks the input channels (v_row = C, v_iter = 1); backward-weights' dU[p] += V[p]^T Z[p] walks
// the tiles (v_row = 1, v_iter = C) and accumulates. The accumulators are named variables, not an array: GCC
// keeps an array of __m256 in memory and stores all of it on every iteration.
template <int ROWS, int COLS, bool ACC>
MINIDL_AVX2 inline void gemm_micro(const float* v, int64_t v_row, int64_t v_iter, const float* u, int64_t u_iter,
                                   float* m, int64_t m_row, int64_t n) {
  static_assert(ROWS >= 1 && ROWS <= 6 && (COLS == 1 || COLS == 2));
  const __m256 zero = _mm256_setzero_ps();
  __m256 c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero;
  __m256 c30 = zero, c31 = zero, c40 = zero, c41 = zero, c50 = zero, c51 = zero;
#define MINIDL_WINO_LOAD(r)                                                \
  if constexpr (ACC && ROWS > r) {                                         \
    c##r##0 = _mm256_loadu_ps(m + r * m_row);                              \
    if constexpr (COLS == 2) c##r##1 = _mm256_loadu_ps(m + r * m_row + 8); \
  }
  MINIDL_WINO_LOAD(0)
  MINIDL_WINO_LOAD(1)
  MINIDL_WINO_LOAD(2)
  MINIDL_WINO_LOAD(3)
  MINIDL_WINO_LOAD(4)
  MINIDL_WINO_LOAD(5)
#undef MINIDL_WINO_LOAD
  for (int64_t i = 0; i < n; ++i) {
    const float* vi = v + i * v_iter;
    const __m256 u0 = _mm256_loadu_ps(u + i * u_iter);
    const __m256 u1 = COLS == 2 ? _mm256_loadu_ps(u + i * u_iter + 8) : zero;
#define MINIDL_WINO_ROW(r)                                              \
  if constexpr (ROWS > r) {                                             \
    const __m256 a = _mm256_broadcast_ss(vi + r * v_row);               \
    c##r##0 = _mm256_fmadd_ps(a, u0, c##r##0);                          \
    if constexpr (COLS == 2) c##r##1 = _mm256_fmadd_ps(a, u1, c##r##1); \
  }
    MINIDL_WINO_ROW(0)
    MINIDL_WINO_ROW(1)
    MINIDL_WINO_ROW(2)
    MINIDL_WINO_ROW(3)
    MINIDL_WINO_ROW(4)
    MINIDL_WINO_ROW(5)
#undef MINIDL_WINO_ROW
  }
#define MINIDL_WINO_STORE(r)                                               \
  if constexpr (ROWS > r) {                                                \
    _mm256_storeu_ps(m + r * m_row, c##r##0);                              \
    if constexpr (COLS == 2) _mm256_storeu_ps(m + r * m_row + 8, c##r##1); \
  }
  MINIDL_WINO_STORE(0)
  MINIDL_WINO_STORE(1)
  MINIDL_WINO_STORE(2)
  MINIDL_WINO_STORE(3)
  MINIDL_WINO_STORE(4)
  MINIDL_WINO_STORE(5)
#undef MINIDL_WINO_STORE
}

// All columns (cols, a multiple of 8) of ROWS rows of m.
template <int ROWS, bool ACC>
MINIDL_AVX2 inline void gemm_rows(const float* v, int64_t v_row, int64_t v_iter, const float* u, int64_t u_iter,
                                  float* m, int64_t m_row, int64_t n, int64_t cols) {
  int64_t k = 0;
  for (; k + 16 <= cols; k += 16) gemm_micro<ROWS, 2, ACC>(v, v_row, v_iter, u + k, u_iter, m + k, m_row, n);
  if (k < cols) gemm_micro<ROWS, 1, ACC>(v, v_row, v_iter, u + k, u_iter, m + k, m_row, n);
}

// All `rows` rows of m, six at a time; row r of v starts at v + r * v_row.
template <bool ACC>
MINIDL_AVX2 void gemm(const float* v, int64_t v_row, int64_t v_iter, const float* u, int64_t u_iter, float* m,
                      int64_t m_row, int64_t n, int64_t rows, int64_t cols) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6)
    gemm_rows<6, ACC>(v + r * v_row, v_row, v_iter, u, u_iter, m + r * m_row, m_row, n, cols);
  const float* vr = v + r * v_row;
  float* mr = m + r * m_row;
  switch (rows - r) {
    case 5: gemm_rows<5, ACC>(vr, v_row, v_iter, u, u_iter, mr, m_row, n, cols); break;
    case 4: gemm_rows<4, ACC>(vr, v_row, v_iter, u, u_iter, mr, m_row, n, cols); break;
    case 3: gemm_rows<3, ACC>(vr, v_row, v_iter, u, u_iter, mr, m_row, n, cols); break;
    case 2: gemm_rows<2, ACC>(vr, v_row, v_iter, u, u_iter, mr, m_row, n, cols); break;
    case 1: gemm_rows<1, ACC>(vr, v_row, v_iter, u, u_iter, mr, m_row, n, cols); break;
    default: break;
  }
}

// Stage 2 for the nt tiles of a block: M[p] (nt x K) = V[p] (nt x C) U[p] (C x K).
MINIDL_AVX2 void batched_gemm(float* M, const float* V, const float* U, const Geometry& g, int64_t nt) {
  for (int p = 0; p < 36; ++p)
    gemm<false>(V + p * g.vstride, g.C, 1, U + p * g.C * g.K, g.K, M + p * g.mstride, g.K, g.C, nt, g.K);
}

// Backward-weights, stage 2: dU[p] (C x K) += V[p]^T (C x nt) Z[p] (nt x K).
MINIDL_AVX2 void batched_gemm_accumulate_weights(float* dU, const float* V, const float* Z, const Geometry& g,
                                                 int64_t nt) {
  for (int p = 0; p < 36; ++p)
    gemm<true>(V + p * g.vstride, 1, g.C, Z + p * g.mstride, g.K, dU + p * g.C * g.K, g.K, nt, g.C, g.K);
}

// z = A e for four vectors, A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1] (A^T of the output
// transform, transposed: backward-weights carries the output gradient back through it).
MINIDL_AVX2 inline void a4(const __m256* e, __m256* z) {
  const __m256 s02 = _mm256_add_ps(e[0], e[2]), s13 = _mm256_add_ps(e[1], e[3]);
  const __m256 t02 = _mm256_fmadd_ps(_mm256_set1_ps(4.f), e[2], e[0]);
  const __m256 t13 = _mm256_mul_ps(_mm256_set1_ps(2.f), _mm256_fmadd_ps(_mm256_set1_ps(4.f), e[3], e[1]));
  z[0] = e[0];
  z[1] = _mm256_add_ps(s02, s13);
  z[2] = _mm256_sub_ps(s02, s13);
  z[3] = _mm256_add_ps(t02, t13);
  z[4] = _mm256_sub_ps(t02, t13);
  z[5] = e[3];
}

// Backward-weights, stage 1b: Z[p][t][k] = (A e A^T)[p] of each tile's 4x4 output gradient e (zero outside the
// output), position stride g.mstride.
MINIDL_AVX2 void gradient_transform(float* Z, const float* gy, const float* zeros, const Geometry& g, int64_t t0,
                                    int64_t nt) {
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t tile = t0 + t, n = tile / g.tiles_per_image, rem = tile % g.tiles_per_image;
    const int64_t oh0 = rem / g.tiles_w * 4, ow0 = rem % g.tiles_w * 4;
    const float* img = gy + n * g.P * g.Q * g.K;
    const float* src[16];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j)
        src[i * 4 + j] = oh0 + i < g.P && ow0 + j < g.Q ? img + ((oh0 + i) * g.Q + ow0 + j) * g.K : zeros;
    float* z = Z + t * g.K;
    for (int64_t k = 0; k < g.K; k += 8) transform_2d<4, a4>(src, k, z + k, g.mstride);
  }
}

MINIDL_AVX2 void run_block_backward_weights(float* dU, const float* x, const float* gy, const Geometry& g, int64_t t0,
                                            int64_t nt, float* V, float* Z, const float* zeros) {
  input_transform(V, x, zeros, g, t0, nt);
  gradient_transform(Z, gy, zeros, g, t0, nt);
  batched_gemm_accumulate_weights(dU, V, Z, g, nt);
}

// Stage 3 for tiles [t0, t0 + nt): out tile = A^T M A, then the epilogue, stored where it lies inside out.
MINIDL_AVX2 void output_transform(float* out, const float* M, const Geometry& g, const WinogradEpilogue& e, int64_t t0,
                                  int64_t nt) {
  const __m256 zero = _mm256_setzero_ps();
  const int64_t pstride = g.mstride;
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t tile = t0 + t, n = tile / g.tiles_per_image, rem = tile % g.tiles_per_image;
    const int64_t oh0 = rem / g.tiles_w * 4, ow0 = rem % g.tiles_w * 4;
    const int64_t rows = std::min<int64_t>(4, g.P - oh0), cols = std::min<int64_t>(4, g.Q - ow0);
    float* img = out + n * g.P * g.Q * g.K;
    for (int64_t k = 0; k < g.K; k += 8) {
      const float* m = M + t * g.K + k;
      __m256 tmp[24];  // tmp[j * 4 + i] = (A^T m)[i][j]
      for (int j = 0; j < 6; ++j) {
        __m256 col[6];
        for (int i = 0; i < 6; ++i) col[i] = _mm256_loadu_ps(m + (i * 6 + j) * pstride);
        at6(col, tmp + j * 4);
      }
      const __m256 bias = e.bias ? _mm256_loadu_ps(e.bias + k) : zero;
      for (int64_t i = 0; i < rows; ++i) {
        __m256 row[6], o[4];
        for (int j = 0; j < 6; ++j) row[j] = tmp[j * 4 + i];
        at6(row, o);
        float* dst = img + ((oh0 + i) * g.Q + ow0) * g.K + k;
        for (int64_t j = 0; j < cols; ++j) {
          __m256 val = _mm256_add_ps(o[j], bias);
          if (e.accumulate) val = _mm256_add_ps(val, _mm256_loadu_ps(dst + j * g.K));
          if (e.relu) val = _mm256_max_ps(val, zero);
          _mm256_storeu_ps(dst + j * g.K, val);
        }
      }
    }
  }
}

MINIDL_AVX2 void run_block(float* out, const float* in, const float* U, const Geometry& g, const WinogradEpilogue& e,
                           int64_t t0, int64_t nt, float* V, float* M, const float* zeros) {
  input_transform(V, in, zeros, g, t0, nt);
  batched_gemm(M, V, U, g, nt);
  output_transform(out, M, g, e, t0, nt);
}

// The filter transform G of F(4x4, 3x3), shared by the weight transform (G g G^T) and by backward-weights'
// way back (G^T dU G).
constexpr float kG[6][3] = {{1.f / 4, 0, 0},
                            {-1.f / 6, -1.f / 6, -1.f / 6},
                            {-1.f / 6, 1.f / 6, -1.f / 6},
                            {1.f / 24, 1.f / 12, 1.f / 6},
                            {1.f / 24, -1.f / 12, 1.f / 6},
                            {0, 0, 1}};

// U[p][ic][oc] = (G g G^T)[p] for every filter (G = kG). One input channel ic per iteration, the loops innermost over
// the output channels oc so they vectorise and the 36 rows of U are written contiguously.
MINIDL_AVX2 void transform_weights_avx2(float* u, const float* w, int64_t K, int64_t C, bool flip) {
  const int64_t in_c = flip ? K : C, out_c = flip ? C : K;
  const int nthreads = static_cast<int>(std::min<int64_t>(get_num_threads(), in_c));
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<float> buf(static_cast<size_t>(27 * out_c));
    float* g = buf.data();               // g[r * 3 + s][oc]
    float* gg = buf.data() + 9 * out_c;  // gg[i * 3 + s][oc] = (G g)[i][s]
#pragma omp for schedule(static)
    for (int64_t ic = 0; ic < in_c; ++ic) {
      for (int64_t oc = 0; oc < out_c; ++oc) {
        // forward: filter (k = oc, c = ic); backward-data: (k = ic, c = oc) rotated by 180 degrees
        const float* f = flip ? w + (ic * C + oc) * 9 : w + (oc * C + ic) * 9;
        for (int rs = 0; rs < 9; ++rs) g[rs * out_c + oc] = f[flip ? 8 - rs : rs];
      }
      for (int i = 0; i < 6; ++i)
        for (int s = 0; s < 3; ++s) {
          float* dst = gg + (i * 3 + s) * out_c;
          const float *g0 = g + s * out_c, *g1 = g + (3 + s) * out_c, *g2 = g + (6 + s) * out_c;
          for (int64_t oc = 0; oc < out_c; ++oc) dst[oc] = kG[i][0] * g0[oc] + kG[i][1] * g1[oc] + kG[i][2] * g2[oc];
        }
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j) {
          float* dst = u + ((i * 6 + j) * in_c + ic) * out_c;
          const float *a0 = gg + (i * 3) * out_c, *a1 = a0 + out_c, *a2 = a1 + out_c;
          for (int64_t oc = 0; oc < out_c; ++oc) dst[oc] = a0[oc] * kG[j][0] + a1[oc] * kG[j][1] + a2[oc] * kG[j][2];
        }
    }
  }
}

}  // namespace

bool winograd_enabled() {
  const int o = g_override.load(std::memory_order_relaxed);
  return cpu_has_avx2_fma() && (o >= 0 ? o == 1 : env_allows_winograd());
}

void set_winograd_enabled(bool on) { g_override.store(on ? 1 : 0, std::memory_order_relaxed); }
void clear_winograd_override() { g_override.store(-1, std::memory_order_relaxed); }

void set_winograd_layer_wide(std::optional<bool> on) {
  g_layer_wide_override.store(on ? (*on ? 1 : 0) : -1, std::memory_order_relaxed);
}

bool winograd_fits(int64_t in_c, int64_t out_c) {
  return in_c > 0 && out_c > 0 && in_c % 8 == 0 && out_c % 8 == 0 && winograd_enabled();
}

void winograd_transform_weights(float* u, const float* w, int64_t K, int64_t C, bool flip) {
  if (cpu_has_avx2_fma()) {
    transform_weights_avx2(u, w, K, C, flip);
    return;
  }
  MINIDL_FAIL("winograd_transform_weights: this CPU lacks AVX2/FMA");
}

namespace {

Geometry make_geometry(const WinogradShape& s, int64_t budget_bytes) {
  Geometry g;
  g.C = s.in_c, g.K = s.out_c, g.H = s.in_h, g.W = s.in_w, g.P = s.out_h, g.Q = s.out_w;
  g.pad_h = s.pad_h, g.pad_w = s.pad_w;
  g.tiles_h = (s.out_h + 3) / 4;
  g.tiles_w = (s.out_w + 3) / 4;
  g.tiles_per_image = g.tiles_h * g.tiles_w;
  g.tb = block_tiles(g.C, g.K, budget_bytes);
  g.vstride = g.tb * g.C + 16;
  g.mstride = g.tb * g.K + 16;
  return g;
}

void check_shape(const char* op, const WinogradShape& s) {
  MINIDL_CHECK(cpu_has_avx2_fma(), op, ": this CPU lacks AVX2/FMA");
  MINIDL_CHECK(s.in_c % 8 == 0 && s.out_c % 8 == 0 && s.in_c > 0 && s.out_c > 0, op,
               ": channel counts must be positive multiples of 8, got ", s.in_c, " -> ", s.out_c);
}

// Per-thread scratch of one block: V, M (or Z) and a row of zeros for the pixels outside the image.
struct BlockScratch {
  float *V, *M, *zeros;
  explicit BlockScratch(const Geometry& g) {
    V = thread_scratch(static_cast<size_t>(36 * (g.vstride + g.mstride) + std::max(g.C, g.K)));
    M = V + 36 * g.vstride;
    zeros = M + 36 * g.mstride;
    std::fill(zeros, zeros + std::max(g.C, g.K), 0.f);
  }
};

// gw[k][c][r][s] = (G^T dU[.][c][k] G)[r][s]: the weight gradient from the Winograd-domain one, vectorised over k.
MINIDL_AVX2 void weights_from_winograd_domain(float* gw, const float* dU, int64_t K, int64_t C) {
  const int nthreads = static_cast<int>(std::min<int64_t>(get_num_threads(), C));
#pragma omp parallel num_threads(nthreads)
  {
    std::vector<float> buf(static_cast<size_t>(27 * K));
    float* t = buf.data();           // t[i * 3 + s][k] = sum_j dU[i * 6 + j][c][k] kG[j][s]
    float* o = buf.data() + 18 * K;  // o[r * 3 + s][k]
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      for (int i = 0; i < 6; ++i)
        for (int s = 0; s < 3; ++s) {
          float* dst = t + (i * 3 + s) * K;
          std::fill(dst, dst + K, 0.f);
          for (int j = 0; j < 6; ++j) {
            if (kG[j][s] == 0.f) continue;
            const float* src = dU + ((i * 6 + j) * C + c) * K;
            for (int64_t k = 0; k < K; ++k) dst[k] += src[k] * kG[j][s];
          }
        }
      for (int r = 0; r < 3; ++r)
        for (int s = 0; s < 3; ++s) {
          float* dst = o + (r * 3 + s) * K;
          std::fill(dst, dst + K, 0.f);
          for (int i = 0; i < 6; ++i) {
            if (kG[i][r] == 0.f) continue;
            const float* src = t + (i * 3 + s) * K;
            for (int64_t k = 0; k < K; ++k) dst[k] += kG[i][r] * src[k];
          }
        }
      for (int64_t k = 0; k < K; ++k)
        for (int rs = 0; rs < 9; ++rs) gw[(k * C + c) * 9 + rs] = o[rs * K + k];
    }
  }
}

// Whether a layer runs the layer-wide stages: U (36 C K floats) well beyond what blocks of tiles can reuse from
// the caches. From bench/kernels BM_Conv (batch 32, one thread, Zen 3): at 128 x 128 @28x28 neither wins in all
// three directions (forward 43.9 / 41.6 ms blocked / layer-wide, backward-data 60.9 / 36.0, backward-weights
// 42.1 / 45.5), at 256 x 256 @14x14 layer-wide wins each (e.g. forward 75.9 / 40.5), at 512 x 512 @7x7 by 4-5x.
// MINIDL_WINOGRAD_LAYERWIDE=0 / 1 forces the choice (tests compare the two).
bool layer_wide(int64_t C, int64_t K) {
  static const int forced = [] {
    const std::string v = env_string("MINIDL_WINOGRAD_LAYERWIDE").value_or("");
    if (v.empty()) return -1;
    MINIDL_CHECK(v == "0" || v == "1", "MINIDL_WINOGRAD_LAYERWIDE must be 0 or 1, got '", v, "'");
    return v == "1" ? 1 : 0;
  }();
  const int f = g_layer_wide_override.load(std::memory_order_relaxed);
  if (f >= 0) return f == 1;
  if (forced >= 0) return forced == 1;
  return C * K >= 256 * 256;
}

// Float scratch for the layer-wide stages from the caching allocator (a fresh 20-40 MiB block per call would be
// new pages, faulted in and zeroed by the kernel on every convolution; every element is written before it is read).
struct Scratch {
  Tensor t;
  explicit Scratch(int64_t n) : t(empty({n}, TensorOptions{}.dtype(DType::f32))) {}
  float* get() const { return t.data<float>(); }
};

// Runs f(t0, nt) over all tiles in blocks of g.tb, parallel over blocks.
template <typename F>
void for_tile_blocks(const Geometry& g, int64_t tiles, F&& f) {
  const int64_t blocks = (tiles + g.tb - 1) / g.tb;
  const int nthreads = static_cast<int>(std::min<int64_t>(get_num_threads(), blocks));
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t t0 = blk * g.tb;
    f(t0, std::min(g.tb, tiles - t0));
  }
}

// The 36 GEMMs of stage 2, one position per thread (oneDNN's sgemm runs single-threaded inside the region):
// C[p] (m x n) = op(A[p]) B[p], with op(A) = A (m x k, row stride lda) or A^T (A is k x m). Returns the first
// failing status (0: all succeeded); never throws inside the region.
int batched_sgemm(bool trans_a, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda, int64_t a_stride,
                  const float* B, int64_t b_stride, float* C, int64_t c_stride) {
  std::atomic<int> status{0};
  const int nthreads = static_cast<int>(std::min<int64_t>(get_num_threads(), 36));
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
  for (int p = 0; p < 36; ++p) {
    const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', 'N', m, n, k, 1.0f, A + p * a_stride, lda,
                                        B + p * b_stride, n, 0.0f, C + p * c_stride, n);
    if (st != dnnl_success) status.store(static_cast<int>(st), std::memory_order_relaxed);
  }
  return status.load();
}

// The geometry of the layer-wide stages: V[p][t][c] and M[p][t][k] (or Z) over all tiles of the batch.
Geometry layer_wide_geometry(const WinogradShape& s, int64_t budget_bytes) {
  Geometry g = make_geometry(s, budget_bytes);
  const int64_t tiles = s.n * g.tiles_per_image;
  g.vstride = tiles * g.C;
  g.mstride = tiles * g.K;
  return g;
}

// The forward through the layer-wide stages.
void conv3x3_layer_wide(float* out, const float* in, const float* u, const WinogradShape& s,
                        const WinogradEpilogue& e) {
  const Geometry g = layer_wide_geometry(s, 320 * 1024);
  const int64_t tiles = s.n * g.tiles_per_image;
  const Scratch V(36 * g.vstride), M(36 * g.mstride);
  const std::vector<float> zeros(static_cast<size_t>(g.C), 0.f);
  for_tile_blocks(g, tiles,
                  [&](int64_t t0, int64_t nt) { input_transform(V.get() + t0 * g.C, in, zeros.data(), g, t0, nt); });
  const int st = batched_sgemm(false, tiles, g.K, g.C, V.get(), g.C, g.vstride, u, g.C * g.K, M.get(), g.mstride);
  MINIDL_CHECK(st == 0, "winograd_conv3x3: oneDNN sgemm failed with status ", st);
  for_tile_blocks(g, tiles, [&](int64_t t0, int64_t nt) { output_transform(out, M.get() + t0 * g.K, g, e, t0, nt); });
}

// Backward-weights through the layer-wide stages: dU[p] (C x K) = V[p]^T Z[p].
void backward_weights_layer_wide(float* dU, const float* x, const float* gy, const WinogradShape& s) {
  const Geometry g = layer_wide_geometry(s, 640 * 1024);
  const int64_t tiles = s.n * g.tiles_per_image;
  const Scratch V(36 * g.vstride), Z(36 * g.mstride);
  const std::vector<float> zeros(static_cast<size_t>(std::max(g.C, g.K)), 0.f);
  for_tile_blocks(g, tiles, [&](int64_t t0, int64_t nt) {
    input_transform(V.get() + t0 * g.C, x, zeros.data(), g, t0, nt);
    gradient_transform(Z.get() + t0 * g.K, gy, zeros.data(), g, t0, nt);
  });
  const int st = batched_sgemm(true, g.C, g.K, tiles, V.get(), g.C, g.vstride, Z.get(), g.mstride, dU, g.C * g.K);
  MINIDL_CHECK(st == 0, "winograd_conv3x3_backward_weights: oneDNN sgemm failed with status ", st);
}

}  // namespace

void winograd_conv3x3(float* out, const float* in, const float* u, const WinogradShape& s, const WinogradEpilogue& e) {
  check_shape("winograd_conv3x3", s);
  if (s.n == 0 || s.out_h <= 0 || s.out_w <= 0) return;
  if (layer_wide(s.in_c, s.out_c)) return conv3x3_layer_wide(out, in, u, s, e);
  const Geometry g = make_geometry(s, 320 * 1024);
  const int64_t tiles = s.n * g.tiles_per_image, blocks = (tiles + g.tb - 1) / g.tb;
  const int nthreads = static_cast<int>(std::min<int64_t>(get_num_threads(), blocks));
#pragma omp parallel num_threads(nthreads)
  {
    const BlockScratch b(g);
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t t0 = blk * g.tb;
      run_block(out, in, u, g, e, t0, std::min(g.tb, tiles - t0), b.V, b.M, b.zeros);
    }
  }
}

void winograd_conv3x3_backward_weights(float* gw, const float* x, const float* gy, const WinogradShape& s) {
  check_shape("winograd_conv3x3_backward_weights", s);
  const int64_t C = s.in_c, K = s.out_c, usize = 36 * C * K;
  if (s.n == 0 || s.out_h <= 0 || s.out_w <= 0) {
    std::fill(gw, gw + K * C * 9, 0.f);
    return;
  }
  if (layer_wide(C, K)) {
    const Scratch dU(usize);
    backward_weights_layer_wide(dU.get(), x, gy, s);
    weights_from_winograd_domain(gw, dU.get(), K, C);
    return;
  }
  const Geometry g = make_geometry(s, 640 * 1024);
  const int64_t tiles = s.n * g.tiles_per_image, blocks = (tiles + g.tb - 1) / g.tb;
  const int nthreads = static_cast<int>(std::min<int64_t>(get_num_threads(), blocks));
  std::vector<float> acc(static_cast<size_t>(nthreads * usize), 0.f);  // one dU per thread
#pragma omp parallel num_threads(nthreads)
  {
    const BlockScratch b(g);
    float* dU = acc.data() + omp_get_thread_num() * usize;
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t t0 = blk * g.tb;
      run_block_backward_weights(dU, x, gy, g, t0, std::min(g.tb, tiles - t0), b.V, b.M, b.zeros);
    }
  }
  for (int t = 1; t < nthreads; ++t) {
    const float* src = acc.data() + t * usize;
    for (int64_t i = 0; i < usize; ++i) acc[static_cast<size_t>(i)] += src[i];
  }
  weights_from_winograd_domain(gw, acc.data(), K, C);
}

}  // namespace minidl::cpu
