// Winograd F(4x4, 3x3) over nhwc f32 (see cpu_winograd.h for why). Work is split into blocks of `tb` output
// tiles. Each thread takes whole blocks and, per block, keeps everything in its L2:
//   1. input transform   V[p][t][c] = (B^T d B)[p] of the 6x6 input tile d of each tile t (p = 0..35),
//   2. 36 small GEMMs    M[p][t][k] = sum_c V[p][t][c] * U[p][c][k],
//      (V and M stored tile-major, V[t][p][c], where that is faster: see forward_block_layout)
//   3. output transform  y tile = A^T M A (4x4), plus the epilogue (bias, accumulate, ReLU), stored into nhwc.
// The stages exist for two vector widths (cpu_winograd_kernels.inc, included twice): ymm (AVX2 + FMA; transforms on 8
// channels at a time, a 6x16 register-blocked GEMM micro-kernel) and zmm (AVX-512, for channel counts that are
// multiples of 16; 16 channels, a 12x32 micro-kernel). They compute the same bits.
// Layers with many channels (ResNet-18's 256 and 512) run the same three stages layer-wide instead: the 36 GEMMs
// of a block would each stream the whole U[p] (C x K floats, 1 MiB at 512 x 512; 36 MiB in all, beyond L2 and
// L3) for a handful of tiles. There stage 1 transforms every tile, stage 2 is 36 large GEMMs (oneDNN's sgemm,
// cache-blocked; one position per thread), stage 3 transforms every tile back.
// Only functions marked MINIDL_AVX2 / MINIDL_AVX512 use AVX2 / AVX-512 instructions, and they run only after the
// ISA dispatch (cpu_isa.h) says the CPU has them and MINIDL_CPU_ISA allows them (the library itself is built for
// baseline x86-64).
#include "backends/cpu/cpu_winograd.h"

#include <dnnl.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "backends/cpu/cpu_isa.h"
#include "core/env.h"
#include "core/error.h"
#include "core/threads.h"
#include "tensor/tensor.h"

#define MINIDL_AVX2 __attribute__((target("avx2,fma")))
#define MINIDL_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma")))

namespace minidl::cpu {
namespace {

std::atomic<int> g_override{-1};             // -1: follow MINIDL_CPU_CONV; 0 / 1: set_winograd_enabled
std::atomic<int> g_layer_wide_override{-1};  // -1: by size / MINIDL_WINOGRAD_LAYERWIDE; 0 / 1: set_winograd_layer_wide
std::atomic<int> g_tile_major_override{-1};  // -1: by channel counts; 0 / 1: set_winograd_tile_major

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

struct Geometry {
  int64_t C = 0, K = 0, H = 0, W = 0, P = 0, Q = 0, pad_h = 0, pad_w = 0;
  int64_t tiles_h = 0, tiles_w = 0, tiles_per_image = 0, tb = 0;
  int64_t vstride = 0, mstride = 0;  // floats between positions p of V and of M (Z)
  int64_t vtile = 0, mtile = 0;      // floats between consecutive tiles of V and of M (Z)
};

// ---------------------------------------------------------------- the three stages, once per vector width

// The stage functions of one vector width (cpu_winograd_kernels.inc), as the drivers below call them.
struct StageKernels {
  void (*input_transform)(float*, const float*, const float*, const Geometry&, int64_t, int64_t);
  void (*gradient_transform)(float*, const float*, const float*, const Geometry&, int64_t, int64_t);
  void (*output_transform)(float*, const float*, const Geometry&, const WinogradEpilogue&, int64_t, int64_t);
  void (*run_block)(float*, const float*, const float*, const Geometry&, const WinogradEpilogue&, int64_t, int64_t,
                    float*, float*, const float*);
  void (*run_block_backward_weights)(float*, const float*, const float*, const Geometry&, int64_t, int64_t, float*,
                                     float*, const float*);
};

// 8 channels per ymm register, 6 x 16 GEMM micro-kernel (12 accumulators of the 16 registers).
namespace ymm {
#define MINIDL_WINO_TARGET MINIDL_AVX2
using VF = __m256;
constexpr int64_t kLanes = 8;
constexpr int kMaxRows = 6;
using kConstRowStrides = std::integer_sequence<int64_t>;  // 6 row offsets fit the general registers
MINIDL_AVX2 inline VF vload(const float* p) { return _mm256_loadu_ps(p); }
MINIDL_AVX2 inline void vstore(float* p, VF v) { _mm256_storeu_ps(p, v); }
MINIDL_AVX2 inline VF vset1(float x) { return _mm256_set1_ps(x); }
MINIDL_AVX2 inline VF vzero() { return _mm256_setzero_ps(); }
MINIDL_AVX2 inline VF vbroadcast(const float* p) { return _mm256_broadcast_ss(p); }
MINIDL_AVX2 inline VF vadd(VF a, VF b) { return _mm256_add_ps(a, b); }
MINIDL_AVX2 inline VF vsub(VF a, VF b) { return _mm256_sub_ps(a, b); }
MINIDL_AVX2 inline VF vmul(VF a, VF b) { return _mm256_mul_ps(a, b); }
MINIDL_AVX2 inline VF vmax(VF a, VF b) { return _mm256_max_ps(a, b); }
MINIDL_AVX2 inline VF vfmadd(VF a, VF b, VF c) { return _mm256_fmadd_ps(a, b, c); }
MINIDL_AVX2 inline VF vfnmadd(VF a, VF b, VF c) { return _mm256_fnmadd_ps(a, b, c); }
#include "backends/cpu/cpu_winograd_kernels.inc"
#undef MINIDL_WINO_TARGET
constexpr StageKernels kStages{input_transform, gradient_transform, output_transform, run_block,
                               run_block_backward_weights};
}  // namespace ymm

// 16 channels per zmm register, 12 x 32 GEMM micro-kernel (24 accumulators of the 32 registers): for channel
// counts that are multiples of 16 on AVX-512 hosts (cpu_isa.h's Avx512 level).
// GCC 12 reports the "undefined" pass-through operand inside _mm512_max_ps as maybe-uninitialized once inlined (and
// as uninitialized where the output transform's templates inline it): a known false positive of its AVX-512 headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
namespace zmm {
#define MINIDL_WINO_TARGET MINIDL_AVX512
using VF = __m512;
constexpr int64_t kLanes = 16;
constexpr int kMaxRows = 12;
// Geometry::vtile of ResNet's channel counts: tile-major 16 and 32 (36 C + 16), position-major 64-512 (C).
using kConstRowStrides = std::integer_sequence<int64_t, 36 * 16 + 16, 36 * 32 + 16, 64, 128, 256, 512>;
MINIDL_AVX512 inline VF vload(const float* p) { return _mm512_loadu_ps(p); }
MINIDL_AVX512 inline void vstore(float* p, VF v) { _mm512_storeu_ps(p, v); }
MINIDL_AVX512 inline VF vset1(float x) { return _mm512_set1_ps(x); }
MINIDL_AVX512 inline VF vzero() { return _mm512_setzero_ps(); }
MINIDL_AVX512 inline VF vbroadcast(const float* p) { return _mm512_set1_ps(*p); }
MINIDL_AVX512 inline VF vadd(VF a, VF b) { return _mm512_add_ps(a, b); }
MINIDL_AVX512 inline VF vsub(VF a, VF b) { return _mm512_sub_ps(a, b); }
MINIDL_AVX512 inline VF vmul(VF a, VF b) { return _mm512_mul_ps(a, b); }
MINIDL_AVX512 inline VF vmax(VF a, VF b) { return _mm512_max_ps(a, b); }
MINIDL_AVX512 inline VF vfmadd(VF a, VF b, VF c) { return _mm512_fmadd_ps(a, b, c); }
MINIDL_AVX512 inline VF vfnmadd(VF a, VF b, VF c) { return _mm512_fnmadd_ps(a, b, c); }
#include "backends/cpu/cpu_winograd_kernels.inc"
#undef MINIDL_WINO_TARGET
constexpr StageKernels kStages{input_transform, gradient_transform, output_transform, run_block,
                               run_block_backward_weights};
}  // namespace zmm
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// The widest kernels that fit: zmm when the host runs AVX-512, MINIDL_CPU_ISA allows it and both channel counts
// are multiples of 16; ymm otherwise. Both give the same bits.
const StageKernels& stages(const Geometry& g) {
  return isa_enabled(CpuIsa::Avx512) && g.C % 16 == 0 && g.K % 16 == 0 ? zmm::kStages : ymm::kStages;
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

void set_winograd_tile_major(std::optional<bool> on) {
  g_tile_major_override.store(on ? (*on ? 1 : 0) : -1, std::memory_order_relaxed);
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

// The layout of a block's V and M (Z): tile-major V[t][p][c] or position-major V[p][t][c].
enum class BlockLayout { TileMajor, PositionMajor };

// Which layout the forward / backward-data blocks use. Tile-major: each transform reads or writes one contiguous
// run of 36 C (K) floats per tile instead of 36 runs a position stride apart, and the GEMM's rows are 36 C apart.
// That pays where the transforms weigh most against the GEMM, at few channels: bench/kernels BM_Conv on Zen 5
// (AVX-512), 2 threads, forward / backward-data 16 x 16 @32x32 0.80-0.83 ms vs 0.85-0.88 position-major, 32 x 32
// a little; at 64 x 64 @8x8 even, at 128 x 128 @28x28 5-8 % slower. Backward-weights' GEMM reduces over the
// tiles, which tile-major would put 36 C apart: position-major always.
BlockLayout forward_block_layout(int64_t C, int64_t K) {
  const int forced = g_tile_major_override.load(std::memory_order_relaxed);
  if (forced >= 0) return forced == 1 ? BlockLayout::TileMajor : BlockLayout::PositionMajor;
  return C + K <= 64 ? BlockLayout::TileMajor : BlockLayout::PositionMajor;
}

Geometry make_geometry(const WinogradShape& s, int64_t budget_bytes, BlockLayout layout) {
  Geometry g;
  g.C = s.in_c, g.K = s.out_c, g.H = s.in_h, g.W = s.in_w, g.P = s.out_h, g.Q = s.out_w;
  g.pad_h = s.pad_h, g.pad_w = s.pad_w;
  g.tiles_h = (s.out_h + 3) / 4;
  g.tiles_w = (s.out_w + 3) / 4;
  g.tiles_per_image = g.tiles_h * g.tiles_w;
  g.tb = block_tiles(g.C, g.K, budget_bytes);
  if (layout == BlockLayout::TileMajor) {
    g.vstride = g.C;
    g.mstride = g.K;
    g.vtile = 36 * g.C + 16;  // plus one cache line: the GEMM's 12 rows then fall into 12 different L1 sets
    g.mtile = 36 * g.K + 16;
  } else {
    // tb * C (K) plus one cache line, so that the 36 positions of a tile do not all fall into the same L1 set
    g.vstride = g.tb * g.C + 16;
    g.mstride = g.tb * g.K + 16;
    g.vtile = g.C;
    g.mtile = g.K;
  }
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
    // a block's extent in either layout: tb tiles 36 C apart, or 36 positions vstride apart
    const int64_t vfloats = std::max(g.tb * g.vtile, 36 * g.vstride),
                  mfloats = std::max(g.tb * g.mtile, 36 * g.mstride);
    V = thread_scratch(static_cast<size_t>(vfloats + mfloats + std::max(g.C, g.K)));
    M = V + vfloats;
    zeros = M + mfloats;
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

// The tiles [begin, end) of thread `tid` of `nthreads`: equal shares. Dealing out whole blocks of tb tiles instead
// left the first thread up to a block more than the others (at 2 threads 1.5-3 % of ResNet-20's layers). Only for
// stages whose result per tile does not depend on the block that computes it (not backward-weights' sums).
struct TileRange {
  int64_t begin, end;
};
TileRange thread_tiles(int64_t tiles, int nthreads, int tid) {
  const int64_t share = (tiles + nthreads - 1) / nthreads, begin = std::min<int64_t>(tiles, tid * share);
  return {begin, std::min<int64_t>(tiles, begin + share)};
}

// Runs f(t0, nt) over all tiles in blocks of at most g.tb, each thread over its thread_tiles.
template <typename F>
void for_tile_blocks(const Geometry& g, int64_t tiles, F&& f) {
  const int64_t blocks = (tiles + g.tb - 1) / g.tb;
  const int nthreads = static_cast<int>(std::min<int64_t>(get_num_threads(), blocks));
#pragma omp parallel num_threads(nthreads)
  {
    const TileRange r = thread_tiles(tiles, omp_get_num_threads(), omp_get_thread_num());
    for (int64_t t0 = r.begin; t0 < r.end; t0 += g.tb) f(t0, std::min(g.tb, r.end - t0));
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
  Geometry g = make_geometry(s, budget_bytes, BlockLayout::PositionMajor);
  const int64_t tiles = s.n * g.tiles_per_image;
  g.vstride = tiles * g.C;
  g.mstride = tiles * g.K;
  return g;
}

// The forward through the layer-wide stages.
void conv3x3_layer_wide(float* out, const float* in, const float* u, const WinogradShape& s,
                        const WinogradEpilogue& e) {
  const Geometry g = layer_wide_geometry(s, 320 * 1024);
  const StageKernels& k = stages(g);
  const int64_t tiles = s.n * g.tiles_per_image;
  const Scratch V(36 * g.vstride), M(36 * g.mstride);
  const std::vector<float> zeros(static_cast<size_t>(g.C), 0.f);
  for_tile_blocks(g, tiles, [&](int64_t t0, int64_t nt) {
    k.input_transform(V.get() + t0 * g.vtile, in, zeros.data(), g, t0, nt);
  });
  const int st = batched_sgemm(false, tiles, g.K, g.C, V.get(), g.C, g.vstride, u, g.C * g.K, M.get(), g.mstride);
  MINIDL_CHECK(st == 0, "winograd_conv3x3: oneDNN sgemm failed with status ", st);
  for_tile_blocks(g, tiles,
                  [&](int64_t t0, int64_t nt) { k.output_transform(out, M.get() + t0 * g.mtile, g, e, t0, nt); });
}

// Backward-weights through the layer-wide stages: dU[p] (C x K) = V[p]^T Z[p].
void backward_weights_layer_wide(float* dU, const float* x, const float* gy, const WinogradShape& s) {
  const Geometry g = layer_wide_geometry(s, 640 * 1024);
  const StageKernels& k = stages(g);
  const int64_t tiles = s.n * g.tiles_per_image;
  const Scratch V(36 * g.vstride), Z(36 * g.mstride);
  const std::vector<float> zeros(static_cast<size_t>(std::max(g.C, g.K)), 0.f);
  for_tile_blocks(g, tiles, [&](int64_t t0, int64_t nt) {
    k.input_transform(V.get() + t0 * g.vtile, x, zeros.data(), g, t0, nt);
    k.gradient_transform(Z.get() + t0 * g.mtile, gy, zeros.data(), g, t0, nt);
  });
  const int st = batched_sgemm(true, g.C, g.K, tiles, V.get(), g.C, g.vstride, Z.get(), g.mstride, dU, g.C * g.K);
  MINIDL_CHECK(st == 0, "winograd_conv3x3_backward_weights: oneDNN sgemm failed with status ", st);
}

}  // namespace

void winograd_conv3x3(float* out, const float* in, const float* u, const WinogradShape& s, const WinogradEpilogue& e) {
  check_shape("winograd_conv3x3", s);
  if (s.n == 0 || s.out_h <= 0 || s.out_w <= 0) return;
  if (layer_wide(s.in_c, s.out_c)) return conv3x3_layer_wide(out, in, u, s, e);
  const Geometry g = make_geometry(s, 320 * 1024, forward_block_layout(s.in_c, s.out_c));
  const StageKernels& k = stages(g);
  for_tile_blocks(g, s.n * g.tiles_per_image, [&](int64_t t0, int64_t nt) {
    const BlockScratch b(g);  // the thread's scratch (allocated once per thread) and its row of zeros
    k.run_block(out, in, u, g, e, t0, nt, b.V, b.M, b.zeros);
  });
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
  const Geometry g = make_geometry(s, 640 * 1024, BlockLayout::PositionMajor);
  const StageKernels& k = stages(g);
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
      k.run_block_backward_weights(dU, x, gy, g, t0, std::min(g.tb, tiles - t0), b.V, b.M, b.zeros);
    }
  }
  for (int t = 1; t < nthreads; ++t) {
    const float* src = acc.data() + t * usize;
    for (int64_t i = 0; i < usize; ++i) acc[static_cast<size_t>(i)] += src[i];
  }
  weights_from_winograd_domain(gw, acc.data(), K, C);
}

}  // namespace minidl::cpu
