// The x86 kernels of gemm_u8s8_s32 (see int_gemm_x86.h). They are compiled into every x86-64 build, with or
// without oneDNN (they need none of it, like data/resample.cpp's), each function for its own target through
// function attributes, never global -m flags: the library runs on any x86-64 and int_gemm.cpp dispatches on
// cpu::active_isa() plus the VNNI cpuid bits.
//
// Every kernel reads B in layout kInt8LayoutK4N16 (int_gemm.h): 4 K-codes of 16 output columns per 64 bytes. A
// step broadcasts 4 activation codes of one row (an int32) and multiplies them with a 64-byte weight group:
//   AVX2        vpmaddubsw (u8 x s8 pairs -> int16, saturating) summed with vpaddw over a window of
//               PackedInt8Weights::maddubs_window() groups, then vpmaddwd with 1s (pairs -> int32) once per window.
//               Exact because the window is chosen at pack time so that no int16 partial sum can leave range
//               for inputs <= max_input(). With window 0 (8-bit weights) it reads the codes widened to int16
//               (PackedInt8Weights::wide) and multiplies 2 activation codes x 8 columns per vpmaddwd, whose int32
//               pair sums are exact.
//   AVX-VNNI    vpdpbusd ymm: the 4 products summed straight into the int32 accumulator, no intermediate rounding.
//   AVX-512VNNI vpdpbusd zmm: 16 columns per register.
// Sums of K <= 2^31 / (255 * 128) products fit an int32 (pack_int8_weights checks), so every kernel is exact.
#include "backends/int_gemm_x86.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace minidl::backends::detail {

#if defined(__x86_64__)

namespace {

// 4 activation codes as one int32, little-endian: byte t is code 4g + t, as vpmaddubsw / vpdpbusd pair them.
inline int32_t load_group(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// The last group of a row whose K is not a multiple of 4: `count` codes, the rest 0, never reading past the row.
inline int32_t load_partial_group(const uint8_t* p, int64_t count) {
  int32_t v = 0;
  std::memcpy(&v, p, static_cast<size_t>(count));
  return v;
}

// How the ymm kernels read activation codes: 4 per step against 8-bit weights, 2 against 16-bit ones.
struct QuadCodes {
  static constexpr int kCodes = 4;
  static int32_t load(const uint8_t* p) { return load_group(p); }
  static int32_t load_partial(const uint8_t* p, int64_t count) { return load_partial_group(p, count); }
};
struct PairCodes {
  static constexpr int kCodes = 2;
  // codes a0, a1 as the int16 lanes of one int32 (zero-extended: u8 values are non-negative int16s)
  static int32_t load(const uint8_t* p) { return static_cast<int32_t>(uint32_t{p[0]} | uint32_t{p[1]} << 16); }
  static int32_t load_partial(const uint8_t* p, int64_t) { return p[0]; }
};

#define MINIDL_TARGET_AVX2 __attribute__((target("avx2")))
#define MINIDL_TARGET_AVX_VNNI __attribute__((target("avx2,avxvnni")))
#define MINIDL_TARGET_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

// AVX2, any weights (maddubs_window() == 0): the codes widened to int16 (PackedInt8Weights::wide) and vpmaddwd,
// 2 codes x 8 columns per instruction: |a * w| <= 255 * 128 fits an int16 product's int32 pair sum with room. Per 4
// codes and 16 columns 4 vpmaddwd: the same multiply count as the one-group vpmaddubsw step.
struct Avx2WideStep : PairCodes {
  static constexpr int kRows = 4;
  MINIDL_TARGET_AVX2 static __m256i apply(__m256i acc, int32_t a2, __m256i b) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_set1_epi32(a2), b));
  }
};

struct AvxVnniStep : QuadCodes {
  static constexpr int kRows = 4;
  MINIDL_TARGET_AVX_VNNI static __m256i apply(__m256i acc, int32_t a4, __m256i b) {
    return _mm256_dpbusd_avx_epi32(acc, _mm256_set1_epi32(a4), b);
  }
};

}  // namespace

#define MINIDL_YMM_TARGET MINIDL_TARGET_AVX2
#define MINIDL_YMM_NS ymm_avx2
#include "backends/int_gemm_x86_ymm.inc"
#undef MINIDL_YMM_TARGET
#undef MINIDL_YMM_NS

#define MINIDL_YMM_TARGET MINIDL_TARGET_AVX_VNNI
#define MINIDL_YMM_NS ymm_avx_vnni
#include "backends/int_gemm_x86_ymm.inc"
#undef MINIDL_YMM_TARGET
#undef MINIDL_YMM_NS

namespace {

// MR rows x NR blocks of 16 columns: MR * NR zmm accumulators, NR weight registers and the broadcast codes. Per
// group of 4 codes NR weight loads and MR broadcasts feed MR * NR vpdpbusd. kZmmRowsFor[NR]: the rows used with NR
// blocks. Measured on Zen 5 (ResNet-20 batch 128, share of the packed model's time): 12 x 1 for 16 output channels
// and 8 x 2 for more beat the former 8 x 1 everywhere; 6 x 4 (64 channels) and 12 x 2 were slower than 8 x 2.
//
// The loops that zero and store a tile's accumulator array are unrolled by `#pragma GCC unroll`: as loops, GCC 12
// turned the zeroing into a memset (rep stosq) of a stack copy of the array that it then kept for the stores, and
// held one accumulator in two registers with a copy per step; that cost ~7 % of the packed ResNet-20 at batch 128.
constexpr int kZmmMaxBlocks = 2;
constexpr int kZmmRowsFor[kZmmMaxBlocks + 1] = {0, 12, 8};

// acc + the dot products of a's unsigned and b's signed byte quads per int32 lane (vpdpbusd), as inline assembly
// with the accumulator tied in and out: through the intrinsic GCC 12 copied every accumulator of a tile to another
// register and back once per step (two vmovdqa per vpdpbusd).
MINIDL_TARGET_AVX512_VNNI inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
  asm("vpdpbusd %[b], %[a], %[acc]" : [acc] "+v"(acc) : [a] "v"(a), [b] "v"(b));
  return acc;
}

// A tile's accumulators into C: masked stores write only the columns of C in the last, partial column block.
template <int MR, int NR>
MINIDL_TARGET_AVX512_VNNI inline void store_tile(const __m512i* acc, int32_t* c, int64_t ldc, int64_t cols) {
#pragma GCC unroll 32
  for (int j = 0; j < NR; ++j) {
    const int64_t left = std::min<int64_t>(16, cols - 16 * j);
    const auto mask = static_cast<__mmask16>((1u << left) - 1u);
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) _mm512_mask_storeu_epi32(c + r * ldc + 16 * j, mask, acc[r * NR + j]);
  }
}

// C[r][j] for r < MR and the `cols` (<= 16 * NR) columns from the block at bb (the next blocks gstride bytes
// apart), over all K.
template <int MR, int NR>
MINIDL_TARGET_AVX512_VNNI void zmm_tile(const uint8_t* a, int64_t lda, const int8_t* bb, int64_t gstride, int64_t k,
                                        int32_t* c, int64_t ldc, int64_t cols) {
  __m512i acc[MR * NR];
#pragma GCC unroll 32
  for (int i = 0; i < MR * NR; ++i) acc[i] = _mm512_setzero_si512();
  const int64_t full = k / 4;
  for (int64_t g = 0; g < full; ++g) {
    __m512i b[NR];
    for (int j = 0; j < NR; ++j) b[j] = _mm512_loadu_si512(bb + j * gstride + g * 64);
    for (int r = 0; r < MR; ++r) {
      const __m512i a4 = _mm512_set1_epi32(load_group(a + r * lda + 4 * g));
      for (int j = 0; j < NR; ++j) acc[r * NR + j] = dpbusd(acc[r * NR + j], a4, b[j]);
    }
  }
  if (k % 4 != 0) {  // the last group is partial: its missing codes read as 0 (their weights are 0 too)
    __m512i b[NR];
    for (int j = 0; j < NR; ++j) b[j] = _mm512_loadu_si512(bb + j * gstride + full * 64);
    for (int r = 0; r < MR; ++r) {
      const __m512i a4 = _mm512_set1_epi32(load_partial_group(a + r * lda + 4 * full, k % 4));
      for (int j = 0; j < NR; ++j) acc[r * NR + j] = dpbusd(acc[r * NR + j], a4, b[j]);
    }
  }
  store_tile<MR, NR>(acc, c, ldc, cols);
}

// MR rows, all n columns: tiles of NR blocks, the blocks left over in narrower tiles.
template <int MR, int NR>
MINIDL_TARGET_AVX512_VNNI void zmm_rows(const uint8_t* a, int64_t lda, const int8_t* bp, int64_t n, int64_t k,
                                        int32_t* c, int64_t ldc) {
  const int64_t gstride = (k + 3) / 4 * 64, blocks = (n + 15) / 16;
  int64_t jb = 0;
  for (; jb + NR <= blocks; jb += NR)
    zmm_tile<MR, NR>(a, lda, bp + jb * gstride, gstride, k, c + 16 * jb, ldc, std::min<int64_t>(16 * NR, n - 16 * jb));
  if constexpr (NR > 1) {
    if (jb < blocks) zmm_rows<MR, NR - 1>(a, lda, bp + jb * gstride, n - 16 * jb, k, c + 16 * jb, ldc);
  }
}

// Fewer than MR rows: one tile of one block per 16 columns.
template <int MR>
MINIDL_TARGET_AVX512_VNNI void zmm_rest(int64_t rows, const uint8_t* a, int64_t lda, const int8_t* bp, int64_t n,
                                        int64_t k, int32_t* c, int64_t ldc) {
  if constexpr (MR > 0) {
    if (rows == MR) return zmm_rows<MR, 1>(a, lda, bp, n, k, c, ldc);
    zmm_rest<MR - 1>(rows, a, lda, bp, n, k, c, ldc);
  }
}

template <int NR>
MINIDL_TARGET_AVX512_VNNI void zmm_gemm(int64_t m, const uint8_t* a, int64_t lda, const int8_t* bp, int64_t n,
                                        int64_t k, int32_t* c, int64_t ldc) {
  constexpr int MR = kZmmRowsFor[NR];
  int64_t i = 0;
  for (; i + MR <= m; i += MR) zmm_rows<MR, NR>(a + i * lda, lda, bp, n, k, c + i * ldc, ldc);
  if (i < m) zmm_rest<MR - 1>(m - i, a + i * lda, lda, bp, n, k, c + i * ldc, ldc);
}

// The same tiles with each row of A given as pieces (an im2col read in place, int_gemm.h's
// gemm_u8s8_s32_segments): row r's piece s at seg[r] + s * seg_stride, seg_groups groups of 4 codes each.
template <int MR, int NR>
MINIDL_TARGET_AVX512_VNNI void zmm_tile_seg(const uint8_t* const* seg, int64_t pieces, int64_t seg_groups,
                                            int64_t seg_stride, const int8_t* bb, int64_t gstride, int32_t* c,
                                            int64_t ldc, int64_t cols) {
  __m512i acc[MR * NR];
#pragma GCC unroll 32
  for (int i = 0; i < MR * NR; ++i) acc[i] = _mm512_setzero_si512();
  for (int64_t s = 0; s < pieces; ++s) {
    const uint8_t* p[MR];
    for (int r = 0; r < MR; ++r) p[r] = seg[r] + s * seg_stride;
    const int8_t* bs = bb + s * seg_groups * 64;
    for (int64_t g = 0; g < seg_groups; ++g) {
      __m512i b[NR];
      for (int j = 0; j < NR; ++j) b[j] = _mm512_loadu_si512(bs + j * gstride + g * 64);
      for (int r = 0; r < MR; ++r) {
        const __m512i a4 = _mm512_set1_epi32(load_group(p[r] + 4 * g));
        for (int j = 0; j < NR; ++j) acc[r * NR + j] = dpbusd(acc[r * NR + j], a4, b[j]);
      }
    }
  }
  store_tile<MR, NR>(acc, c, ldc, cols);
}

template <int MR, int NR>
MINIDL_TARGET_AVX512_VNNI void zmm_rows_seg(const uint8_t* const* seg, int64_t pieces, int64_t seg_groups,
                                            int64_t seg_stride, const int8_t* bp, int64_t n, int32_t* c, int64_t ldc) {
  const int64_t gstride = pieces * seg_groups * 64, blocks = (n + 15) / 16;
  int64_t jb = 0;
  for (; jb + NR <= blocks; jb += NR)
    zmm_tile_seg<MR, NR>(seg, pieces, seg_groups, seg_stride, bp + jb * gstride, gstride, c + 16 * jb, ldc,
                         std::min<int64_t>(16 * NR, n - 16 * jb));
  if constexpr (NR > 1) {
    if (jb < blocks)
      zmm_rows_seg<MR, NR - 1>(seg, pieces, seg_groups, seg_stride, bp + jb * gstride, n - 16 * jb, c + 16 * jb, ldc);
  }
}

template <int MR>
MINIDL_TARGET_AVX512_VNNI void zmm_rest_seg(int64_t rows, const uint8_t* const* seg, int64_t pieces, int64_t seg_groups,
                                            int64_t seg_stride, const int8_t* bp, int64_t n, int32_t* c, int64_t ldc) {
  if constexpr (MR > 0) {
    if (rows == MR) return zmm_rows_seg<MR, 1>(seg, pieces, seg_groups, seg_stride, bp, n, c, ldc);
    zmm_rest_seg<MR - 1>(rows, seg, pieces, seg_groups, seg_stride, bp, n, c, ldc);
  }
}

template <int NR>
MINIDL_TARGET_AVX512_VNNI void zmm_gemm_seg(int64_t m, const uint8_t* const* seg, int64_t pieces, int64_t seg_groups,
                                            int64_t seg_stride, const int8_t* bp, int64_t n, int32_t* c, int64_t ldc) {
  constexpr int MR = kZmmRowsFor[NR];
  int64_t i = 0;
  for (; i + MR <= m; i += MR) zmm_rows_seg<MR, NR>(seg + i, pieces, seg_groups, seg_stride, bp, n, c + i * ldc, ldc);
  if (i < m) zmm_rest_seg<MR - 1>(m - i, seg + i, pieces, seg_groups, seg_stride, bp, n, c + i * ldc, ldc);
}

// 16 columns from PackedInt8Weights::paired: per pair of groups one 8-code broadcast per row (vpbroadcastq) against
// two weight registers (columns 0-7 and 8-15, the pair's two groups in alternate lanes), so half the broadcasts of
// zmm_tile_seg<MR, 1>; each column's two lanes are added once at the end.
template <int MR>
MINIDL_TARGET_AVX512_VNNI void zmm_tile_pair(const uint8_t* const* seg, int64_t pieces, int64_t seg_pairs,
                                             int64_t seg_stride, const int8_t* bpair, int32_t* c, int64_t ldc,
                                             int64_t cols) {
  __m512i acc[2 * MR];
#pragma GCC unroll 32
  for (int i = 0; i < 2 * MR; ++i) acc[i] = _mm512_setzero_si512();
  for (int64_t s = 0; s < pieces; ++s) {
    const uint8_t* p[MR];
    for (int r = 0; r < MR; ++r) p[r] = seg[r] + s * seg_stride;
    const int8_t* bs = bpair + s * seg_pairs * 128;
    for (int64_t q = 0; q < seg_pairs; ++q) {
      const __m512i w0 = _mm512_loadu_si512(bs + q * 128), w1 = _mm512_loadu_si512(bs + q * 128 + 64);
      for (int r = 0; r < MR; ++r) {
        int64_t a8;
        std::memcpy(&a8, p[r] + 8 * q, 8);
        const __m512i a = _mm512_set1_epi64(a8);
        acc[2 * r] = dpbusd(acc[2 * r], a, w0);
        acc[2 * r + 1] = dpbusd(acc[2 * r + 1], a, w1);
      }
    }
  }
  // lanes 2c and 2c + 1 of acc[2r + h] are column 8h + c's two groups: add them, then take the even lanes
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const auto mask = static_cast<__mmask16>((1u << cols) - 1u);
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r) {
    const __m512i lo = _mm512_add_epi32(acc[2 * r], _mm512_maskz_shuffle_epi32(0xffff, acc[2 * r], _MM_PERM_CDAB));
    const __m512i hi =
        _mm512_add_epi32(acc[2 * r + 1], _mm512_maskz_shuffle_epi32(0xffff, acc[2 * r + 1], _MM_PERM_CDAB));
    _mm512_mask_storeu_epi32(c + r * ldc, mask, _mm512_permutex2var_epi32(lo, even, hi));
  }
}

template <int MR>
MINIDL_TARGET_AVX512_VNNI void zmm_rest_pair(int64_t rows, const uint8_t* const* seg, int64_t pieces, int64_t seg_pairs,
                                             int64_t seg_stride, const int8_t* bpair, int32_t* c, int64_t ldc,
                                             int64_t cols) {
  if constexpr (MR > 0) {
    if (rows == MR) return zmm_tile_pair<MR>(seg, pieces, seg_pairs, seg_stride, bpair, c, ldc, cols);
    zmm_rest_pair<MR - 1>(rows, seg, pieces, seg_pairs, seg_stride, bpair, c, ldc, cols);
  }
}

}  // namespace

namespace {

// AVX2, weights with maddubs_window() = W >= 1: the vpmaddubsw products of each row go into two int16 sums (16
// columns) with vpaddw, widened (vpmaddwd with 1s) into int32 sums at every multiple of W groups and at the end.
// Widening more often than W keeps every int16 partial sum a part of one aligned window's (pack_int8_weights'
// bound), so it stays exact. 4 rows x 16 columns: 8 int16 sums, 2 weight registers and the broadcast codes in the
// inner loop; per group 8 vpmaddubsw for 256 multiply-adds.
constexpr int kWindowRows = 4;

// Where a register block's rows read their codes: K is `pieces` pieces of `piece_groups` whole groups of 4 codes,
// piece p of row r at rows[r] + p * stride, then (plain A only, one piece) `tail` < 4 codes of a last partial group.
struct WindowRows {
  const uint8_t* const* rows;
  int64_t pieces, piece_groups, stride, tail;
};

// s[r][h] += the vpmaddubsw products of row r's groups [0, end - b) (codes from ap[r]) with the weight groups
// [b, end), in int16. Its own function with the sums as locals: inlined into the block's loop, GCC kept copying
// every sum between two registers per group (~30 % slower on 16-column layers).
template <int MR>
MINIDL_TARGET_AVX2 inline __attribute__((always_inline)) void window_sums(const uint8_t* const (&ap)[MR],
                                                                          const int8_t* b, const int8_t* end,
                                                                          __m256i (&s)[MR][2]) {
  int64_t off = 0;
#pragma GCC unroll 2
  for (; b < end; b += 64, off += 4) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32));
    for (int r = 0; r < MR; ++r) {
      const __m256i a4 = _mm256_set1_epi32(load_group(ap[r] + off));
      s[r][0] = _mm256_add_epi16(s[r][0], _mm256_maddubs_epi16(a4, b0));
      s[r][1] = _mm256_add_epi16(s[r][1], _mm256_maddubs_epi16(a4, b1));
    }
  }
}

template <int MR>
MINIDL_TARGET_AVX2 inline void widen(__m256i (&acc)[MR][2], __m256i (&s)[MR][2]) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int r = 0; r < MR; ++r)
    for (int h = 0; h < 2; ++h) {
      acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_madd_epi16(s[r][h], ones));
      s[r][h] = _mm256_setzero_si256();
    }
}

// C[r][col] for r < MR, col < cols (<= 16): one block of 16 columns (bb: its groups), over all K.
template <int MR>
MINIDL_TARGET_AVX2 void window_block(const WindowRows& w, const int8_t* bb, int64_t window, int32_t* c, int64_t ldc,
                                     int64_t cols) {
  __m256i acc[MR][2], s[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = s[r][0] = s[r][1] = _mm256_setzero_si256();
  for (int64_t p = 0; p < w.pieces; ++p) {
    const int64_t first = p * w.piece_groups, last = first + w.piece_groups;  // global group indices
    for (int64_t lo = first; lo < last;) {
      const int64_t window_end = (lo / window + 1) * window, hi = std::min(last, window_end);
      const uint8_t* ap[MR];
      for (int r = 0; r < MR; ++r) ap[r] = w.rows[r] + p * w.stride + 4 * (lo - first);
      window_sums<MR>(ap, bb + lo * 64, bb + hi * 64, s);
      if (hi == window_end) widen<MR>(acc, s);
      lo = hi;
    }
  }
  if (w.tail > 0) {  // the last group is partial: its missing codes read as 0 (their weights are 0 too)
    const int64_t g = w.pieces * w.piece_groups;
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bb + g * 64));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bb + g * 64 + 32));
    for (int r = 0; r < MR; ++r) {
      const __m256i a4 = _mm256_set1_epi32(load_partial_group(w.rows[r] + 4 * g, w.tail));
      s[r][0] = _mm256_add_epi16(s[r][0], _mm256_maddubs_epi16(a4, b0));
      s[r][1] = _mm256_add_epi16(s[r][1], _mm256_maddubs_epi16(a4, b1));
    }
  }
  widen<MR>(acc, s);
  ymm_avx2::store_rows<MR>(acc, c, ldc, cols);
}

template <int MR>
MINIDL_TARGET_AVX2 void window_rows(const WindowRows& w, const int8_t* bp, int64_t n, int64_t window, int32_t* c,
                                    int64_t ldc) {
  const int64_t groups = w.pieces * w.piece_groups + (w.tail > 0 ? 1 : 0);
  for (int64_t j0 = 0; j0 < n; j0 += 16)
    window_block<MR>(w, bp + (j0 / 16) * groups * 64, window, c + j0, ldc, std::min<int64_t>(16, n - j0));
}

// All m rows in blocks of kWindowRows (then 3, 2, 1); rows_of(i) gives the WindowRows of the block at row i.
template <class RowsOf>
MINIDL_TARGET_AVX2 void window_gemm(int64_t m, RowsOf rows_of, const int8_t* bp, int64_t n, int window, int32_t* c,
                                    int64_t ldc) {
  MINIDL_CHECK(window >= 1, "gemm_u8s8_s32: no AVX2 vpmaddubsw kernel for a window of ", window);
  int64_t i = 0;
  for (; i + kWindowRows <= m; i += kWindowRows) window_rows<kWindowRows>(rows_of(i), bp, n, window, c + i * ldc, ldc);
  switch (m - i) {
    case 3: window_rows<3>(rows_of(i), bp, n, window, c + i * ldc, ldc); break;
    case 2: window_rows<2>(rows_of(i), bp, n, window, c + i * ldc, ldc); break;
    case 1: window_rows<1>(rows_of(i), bp, n, window, c + i * ldc, ldc); break;
    default: break;
  }
}

}  // namespace

bool host_has_avx_vnni() {
  static const bool has = [] {
    __builtin_cpu_init();
    // AVX-VNNI is cpuid leaf 7, sub-leaf 1, eax bit 4; read directly because clang 14's __builtin_cpu_supports
    // does not know "avxvnni" (the fuzz build compiles the library with clang). The avx2 check covers the OS's
    // ymm state.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool leaf = __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) != 0;
    return __builtin_cpu_supports("avx2") && leaf && ((eax >> 4) & 1u) != 0;
  }();
  return has;
}

bool host_has_avx512_vnni() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  }();
  return has;
}

void int_gemm_avx2(int64_t m, const uint8_t* a, int64_t lda, const int8_t* bp, int64_t n, int64_t k, int maddubs_window,
                   int32_t* c, int64_t ldc) {
  const uint8_t* rows[kWindowRows];
  window_gemm(
      m,
      [&](int64_t i) {
        for (int r = 0; r < kWindowRows; ++r) rows[r] = a + std::min(i + r, m - 1) * lda;
        return WindowRows{rows, 1, k / 4, 0, k % 4};
      },
      bp, n, maddubs_window, c, ldc);
}

void int_gemm_avx2_segments(int64_t m, const uint8_t* const* seg, int64_t pieces, int64_t seg_len, int64_t seg_stride,
                            const int8_t* bp, int64_t n, int maddubs_window, int32_t* c, int64_t ldc) {
  MINIDL_CHECK(seg_len % 4 == 0, "int_gemm_avx2_segments: piece length ", seg_len, " is not a multiple of 4");
  window_gemm(
      m,
      [&](int64_t i) {
        return WindowRows{seg + i, pieces, seg_len / 4, seg_stride, 0};
      },
      bp, n, maddubs_window, c, ldc);
}

void int_gemm_avx2_wide(int64_t m, const uint8_t* a, int64_t lda, const int16_t* bw, int64_t n, int64_t k, int32_t* c,
                        int64_t ldc) {
  ymm_avx2::gemm<Avx2WideStep>(m, a, lda, reinterpret_cast<const int8_t*>(bw), n, k, c, ldc);
}

void int_gemm_avx_vnni(int64_t m, const uint8_t* a, int64_t lda, const int8_t* bp, int64_t n, int64_t k, int32_t* c,
                       int64_t ldc) {
  ymm_avx_vnni::gemm<AvxVnniStep>(m, a, lda, bp, n, k, c, ldc);
}

void int_gemm_avx512_vnni(int64_t m, const uint8_t* a, int64_t lda, const int8_t* bp, int64_t n, int64_t k, int32_t* c,
                          int64_t ldc) {
  if (n <= 16) {
    zmm_gemm<1>(m, a, lda, bp, n, k, c, ldc);
  } else {
    zmm_gemm<2>(m, a, lda, bp, n, k, c, ldc);
  }
}

void int_gemm_avx512_vnni_segments(int64_t m, const uint8_t* const* seg, int64_t pieces, int64_t seg_len,
                                   int64_t seg_stride, const int8_t* bp, int64_t n, int32_t* c, int64_t ldc) {
  if (n <= 16) {
    zmm_gemm_seg<1>(m, seg, pieces, seg_len / 4, seg_stride, bp, n, c, ldc);
  } else {
    zmm_gemm_seg<2>(m, seg, pieces, seg_len / 4, seg_stride, bp, n, c, ldc);
  }
}

void int_gemm_avx512_vnni_segments_paired(int64_t m, const uint8_t* const* seg, int64_t pieces, int64_t seg_len,
                                          int64_t seg_stride, const int8_t* bpair, int64_t n, int32_t* c, int64_t ldc) {
  constexpr int MR = kZmmRowsFor[1];
  const int64_t seg_pairs = seg_len / 8;
  int64_t i = 0;
  for (; i + MR <= m; i += MR) zmm_tile_pair<MR>(seg + i, pieces, seg_pairs, seg_stride, bpair, c + i * ldc, ldc, n);
  if (i < m) zmm_rest_pair<MR - 1>(m - i, seg + i, pieces, seg_pairs, seg_stride, bpair, c + i * ldc, ldc, n);
}

#else  // not x86-64: no kernel is runnable (int_gemm.cpp asks host_has_* and the ISA level first)

bool host_has_avx_vnni() { return false; }
bool host_has_avx512_vnni() { return false; }

void int_gemm_avx2(int64_t, const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, int, int32_t*, int64_t) {
  MINIDL_FAIL("gemm_u8s8_s32: the AVX2 kernel exists on x86-64 only");
}
void int_gemm_avx2_segments(int64_t, const uint8_t* const*, int64_t, int64_t, int64_t, const int8_t*, int64_t, int,
                            int32_t*, int64_t) {
  MINIDL_FAIL("gemm_u8s8_s32_segments: the AVX2 kernel exists on x86-64 only");
}
void int_gemm_avx2_wide(int64_t, const uint8_t*, int64_t, const int16_t*, int64_t, int64_t, int32_t*, int64_t) {
  MINIDL_FAIL("gemm_u8s8_s32: the AVX2 kernel exists on x86-64 only");
}
void int_gemm_avx_vnni(int64_t, const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, int32_t*, int64_t) {
  MINIDL_FAIL("gemm_u8s8_s32: the AVX-VNNI kernel exists on x86-64 only");
}
void int_gemm_avx512_vnni(int64_t, const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, int32_t*, int64_t) {
  MINIDL_FAIL("gemm_u8s8_s32: the AVX-512 VNNI kernel exists on x86-64 only");
}
void int_gemm_avx512_vnni_segments(int64_t, const uint8_t* const*, int64_t, int64_t, int64_t, const int8_t*, int64_t,
                                   int32_t*, int64_t) {
  MINIDL_FAIL("gemm_u8s8_s32_segments: the AVX-512 VNNI kernel exists on x86-64 only");
}
void int_gemm_avx512_vnni_segments_paired(int64_t, const uint8_t* const*, int64_t, int64_t, int64_t, const int8_t*,
                                          int64_t, int32_t*, int64_t) {
  MINIDL_FAIL("gemm_u8s8_s32_segments: the AVX-512 VNNI kernel exists on x86-64 only");
}

#endif

}  // namespace minidl::backends::detail
