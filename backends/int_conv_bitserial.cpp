// The bit-serial convolution for binary weights (see int_conv_bitserial.h for the arithmetic and the layout).
#include "backends/int_conv_bitserial.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cassert>
#include <cstring>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "backends/int_conv_im2col.h"
#include "core/cpu_isa.h"
#include "core/error.h"

// GCC 12 reports the "undefined" pass-through operands of its AVX-512 intrinsics (here _mm512_slli_epi32's) as
// uninitialized once they are inlined: a known false positive of its headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace minidl::backends {

namespace {
std::atomic<bool> g_enabled{true};
// Bytes the kernels may read past the last plane row: a kernel row's last dword starts inside the row.
constexpr int64_t kPlaneSlack = 64;
// Output pixels per kernel call: R x planes accumulators (16 at 2 planes) stay in registers with the weights.
constexpr int kMaxRun = 8;
}  // namespace

void set_bitserial_conv_enabled(bool enabled) { g_enabled.store(enabled, std::memory_order_relaxed); }
bool bitserial_conv_enabled() { return g_enabled.load(std::memory_order_relaxed); }

#if defined(__x86_64__)

bool host_has_avx512_vpopcntdq() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
  }();
  return has;
}

#define MINIDL_TARGET_POPCNT __attribute__((target("avx512f,avx512bw,avx512vl,avx512vpopcntdq")))

namespace {

// One image row of codes (row_codes bytes, a multiple of 16) into its plane rows and its pixels' code sums.
MINIDL_TARGET_POPCNT void row_to_planes(const uint8_t* src, int64_t row_codes, int64_t in_c, int planes,
                                        int64_t plane_row_bytes, uint8_t* dst, int32_t* sums) {
  const __m512i zero = _mm512_setzero_si512();
  const int pixel_shift = std::countr_zero(static_cast<uint64_t>(in_c));  // pixels in n codes: n >> shift (16, 32, 64)
  // lane i: dword 2 i per_pixel (the low half of qword i per_pixel) for i < 64 / in_c; the other lanes are unused
  const int pp = static_cast<int>(in_c / 8);
  const __m512i gather = _mm512_setr_epi32(0, 2 * pp, 4 * pp, 6 * pp, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  // a pixel's sum is that of in_c / 8 consecutive sums of 8 codes (in_c % 16 == 0: never across pixels)
  const int64_t per_pixel = in_c / 8;
  int64_t within = 0;
  int32_t pixel = 0;
  for (int64_t q = 0; q < row_codes; q += 64) {
    const int64_t n = std::min<int64_t>(64, row_codes - q);
    const __mmask64 valid = n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1;
    const __m512i v = _mm512_maskz_loadu_epi8(valid, src + q);
    for (int b = 0; b < planes; ++b) {
      const uint64_t m = _mm512_test_epi8_mask(v, _mm512_set1_epi8(static_cast<char>(1 << b)));
      if (n == 64) {
        std::memcpy(dst + b * plane_row_bytes + q / 8, &m, 8);
      } else {  // the row's last, partial chunk: exactly its bytes (the next plane row starts right after)
        std::memcpy(dst + b * plane_row_bytes + q / 8, &m, static_cast<size_t>(n / 8));
      }
    }
    __m512i eights = _mm512_sad_epu8(v, zero);  // qword i: the sum of codes 8 i .. 8 i + 7
    if (per_pixel == 2 || per_pixel == 4 ||
        per_pixel == 8) {  // 16, 32 or 64 channels: whole pixels per chunk, summed by pairwise adds in registers
      eights = _mm512_add_epi64(eights, _mm512_bsrli_epi128(eights, 8));
      if (per_pixel >= 4) eights = _mm512_add_epi64(eights, _mm512_shuffle_i64x2(eights, eights, 0xb1));
      if (per_pixel == 8) eights = _mm512_add_epi64(eights, _mm512_shuffle_i64x2(eights, eights, 0x4e));
      // the pixel sums sit in the low dwords of qwords 0, per_pixel, 2 per_pixel, ...: one permute gathers them
      const __m512i packed = _mm512_permutexvar_epi32(gather, eights);
      const int64_t pixels = n >> pixel_shift;
      if (n == 64) {  // a whole chunk: a plain store of exactly its pixels (a masked one is slow on Zen 4)
        if (pixels == 4) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(sums), _mm512_castsi512_si128(packed));
        } else if (pixels == 2) {
          _mm_storel_epi64(reinterpret_cast<__m128i*>(sums), _mm512_castsi512_si128(packed));
        } else {
          *sums = _mm_cvtsi128_si32(_mm512_castsi512_si128(packed));
        }
      } else {
        _mm512_mask_storeu_epi32(sums, static_cast<__mmask16>((1u << pixels) - 1), packed);
      }
      sums += pixels;
      continue;
    }
    alignas(64) uint64_t eight[8];
    _mm512_store_si512(eight, eights);
    for (int64_t i = 0; i < n / 8; ++i) {
      pixel += static_cast<int32_t>(eight[i]);
      if (++within == per_pixel) {
        *sums++ = pixel;
        pixel = 0;
        within = 0;
      }
    }
  }
}

// Row sums in place: sums[x] becomes sums[x] + ... + sums[x + k - 1] for x + k <= w (the entries after that are left
// as they are, unused). Left to right, 16 entries at a time, each block's loads before its store: a block reads
// entries no earlier block has written.
MINIDL_TARGET_POPCNT void kernel_row_sums(int32_t* sums, int64_t w, int64_t k) {
  for (int64_t x = 0; x + k <= w; x += 16) {
    const int64_t n = std::min<int64_t>(16, w - k + 1 - x);
    const auto keep = static_cast<__mmask16>((1u << n) - 1);
    __m512i total = _mm512_maskz_loadu_epi32(keep, sums + x);
    for (int64_t c = 1; c < k; ++c) total = _mm512_add_epi32(total, _mm512_maskz_loadu_epi32(keep, sums + x + c));
    _mm512_mask_storeu_epi32(sums + x, keep, total);
  }
}

// T of one output row: t[ow] = the sum of k row sums (kernel_row_sums), row r at rows[r * row_stride + ow * stride].
MINIDL_TARGET_POPCNT void window_sums_row(const int32_t* rows, int64_t row_stride, int64_t k, int64_t stride,
                                          int64_t out_w, int32_t* t) {
  if (stride != 1) {
    for (int64_t ow = 0; ow < out_w; ++ow) {
      int32_t total = 0;
      for (int64_t r = 0; r < k; ++r) total += rows[r * row_stride + ow * stride];
      t[ow] = total;
    }
    return;
  }
  for (int64_t ow = 0; ow < out_w; ow += 16) {
    const auto keep = static_cast<__mmask16>(out_w - ow >= 16 ? 0xffffu : (1u << (out_w - ow)) - 1);
    __m512i total = _mm512_maskz_loadu_epi32(keep, rows + ow);
    for (int64_t r = 1; r < k; ++r)
      total = _mm512_add_epi32(total, _mm512_maskz_loadu_epi32(keep, rows + r * row_stride + ow));
    _mm512_mask_storeu_epi32(t + ow, keep, total);
  }
}

// R output pixels of one output row (STEP bytes apart in a plane row; 0: `step` at run time) times 16 output channels:
// out[i * ldo + o] = sum_b 2^(b+1) popcount(planes_b & signs_o) - t[i].
// GCC's predictive commoning sees that pixel i + 2 of word j reads the bytes of pixel i of word j + 1 (16 channels,
// stride 1) and carries such loads across iterations in general registers, which then cost a move and a broadcast
// each, and spills; without it every broadcast is one load.
#if defined(__clang__)
#define MINIDL_NO_PREDICTIVE_COMMONING
#else
#define MINIDL_NO_PREDICTIVE_COMMONING __attribute__((optimize("no-predictive-commoning")))
#endif
template <int R, int P, int STEP>
MINIDL_TARGET_POPCNT MINIDL_NO_PREDICTIVE_COMMONING void block_kernel(const uint8_t* base, int64_t step,
                                                                      int64_t krow_stride, int64_t plane_stride,
                                                                      int64_t kernel, int64_t words,
                                                                      const uint32_t* signs, const int32_t* t,
                                                                      int32_t* out, int64_t ldo) {
  if constexpr (STEP != 0) step = STEP;
  __m512i acc[R][P];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
    for (int b = 0; b < P; ++b) acc[i][b] = _mm512_setzero_si512();
  for (int64_t r = 0; r < kernel; ++r) {
    const uint8_t* row = base + r * krow_stride;
    for (int64_t j = 0; j < words; ++j, signs += 16) {
      const __m512i s = _mm512_loadu_si512(signs);
#pragma GCC unroll 2
      for (int b = 0; b < P; ++b) {
        const uint8_t* at = row + b * plane_stride + 4 * j;
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) {
          // a broadcast straight from memory (a load, no ALU operation; set1 of a scalar took two)
          const __m512i x = _mm512_and_si512(s, _mm512_broadcastd_epi32(_mm_loadu_si32(at + i * step)));
          acc[i][b] = _mm512_add_epi32(acc[i][b], _mm512_popcnt_epi32(x));
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    __m512i v = _mm512_slli_epi32(acc[i][0], 1);
    if constexpr (P == 2) v = _mm512_add_epi32(v, _mm512_slli_epi32(acc[i][1], 2));
    _mm512_storeu_si512(out + i * ldo, _mm512_sub_epi32(v, _mm512_set1_epi32(t[i])));
  }
}

using BlockKernel = void (*)(const uint8_t*, int64_t, int64_t, int64_t, int64_t, int64_t, const uint32_t*,
                             const int32_t*, int32_t*, int64_t);

template <int P, int STEP, int... Rm1>
constexpr auto kernels_for(std::integer_sequence<int, Rm1...>) {
  return std::array<BlockKernel, sizeof...(Rm1)>{&block_kernel<Rm1 + 1, P, STEP>...};
}
template <int P, int STEP>
constexpr std::array<BlockKernel, kMaxRun> kKernels = kernels_for<P, STEP>(std::make_integer_sequence<int, kMaxRun>{});

// The kernel of R pixels (1..kMaxRun) at `planes` planes, for pixels `step` bytes apart.
BlockKernel pick_kernel(int planes, int64_t step, int64_t r) {
  const auto i = static_cast<size_t>(r - 1);
  const bool two = planes == 2;
  switch (step) {
    case 2: return two ? kKernels<2, 2>[i] : kKernels<1, 2>[i];
    case 4: return two ? kKernels<2, 4>[i] : kKernels<1, 4>[i];
    case 8: return two ? kKernels<2, 8>[i] : kKernels<1, 8>[i];
    case 16: return two ? kKernels<2, 16>[i] : kKernels<1, 16>[i];
    default: return two ? kKernels<2, 0>[i] : kKernels<1, 0>[i];
  }
}

}  // namespace

#else  // not x86-64: no bit-serial kernels

bool host_has_avx512_vpopcntdq() { return false; }

#endif

bool bitserial_conv_runnable(const IntConvGeometry& given, const PackedInt8Weights& w) {
  return !w.conv_sign_bits().empty() && w.conv_kernel() == given.kernel && w.conv_in_c() == given.in_c &&
         w.rows() == given.out_c && given.in_pad >= given.padding && bitserial_conv_enabled() &&
         host_has_avx512_vpopcntdq() && cpu::isa_enabled(cpu::CpuIsa::Avx512);
}

namespace detail {

std::vector<uint32_t> conv_sign_bits(int64_t out_c, int64_t in_c, int64_t kernel, const std::vector<int8_t>& rsc_codes,
                                     int max_input) {
  const int64_t row = kernel * in_c, depth = kernel * row;
  if (out_c % 16 != 0 || in_c % 16 != 0 || max_input > 3 || static_cast<int64_t>(rsc_codes.size()) != out_c * depth)
    return {};
  for (int8_t c : rsc_codes)
    if (c != 1 && c != -1) return {};
  const int64_t words = sign_bit_words_per_row(kernel, in_c);
  std::vector<uint32_t> bits(static_cast<size_t>(out_c * kernel * words), 0);
  for (int64_t o = 0; o < out_c; ++o)
    for (int64_t r = 0; r < kernel; ++r)
      for (int64_t pos = 0; pos < row; ++pos)
        if (rsc_codes[static_cast<size_t>(o * depth + r * row + pos)] == 1) {
          const int64_t at = (((o / 16) * kernel + r) * words + pos / 32) * 16 + o % 16;
          bits[static_cast<size_t>(at)] |= uint32_t{1} << (pos % 32);
        }
  return bits;
}

void codes_to_bit_planes(const IntConvGeometry& g, const uint8_t* codes, int planes, int64_t p_begin, int64_t p_end,
                         BitPlanes& out) {
  MINIDL_CHECK(planes == 1 || planes == 2, "codes_to_bit_planes: ", planes, " planes (1 or 2)");
  MINIDL_CHECK(g.in_c % 16 == 0, "codes_to_bit_planes: in_c ", g.in_c, " is not a multiple of 16");
  const int64_t OH = g.out_h(), OW = g.out_w(), M = g.batch * OH * OW;
  MINIDL_CHECK(0 <= p_begin && p_begin < p_end && p_end <= M, "codes_to_bit_planes: output pixels [", p_begin, ", ",
               p_end, ") outside 0..", M);
  // the buffer rows from the first output pixel's first kernel row to the last one's last kernel row (g.padding <= 0)
  const int64_t first = (p_begin / (OH * OW)) * g.in_h + (p_begin / OW) % OH * g.stride - g.padding;
  const int64_t last = ((p_end - 1) / (OH * OW)) * g.in_h + ((p_end - 1) / OW) % OH * g.stride - g.padding + g.kernel;
  const int64_t rows = last - first, row_codes = g.in_w * g.in_c;
  out.planes = planes;
  out.first_row = first;
  out.plane_row_bytes = row_codes / 8;
  const auto bytes = static_cast<size_t>(rows * planes * out.plane_row_bytes + kPlaneSlack);
  if (out.bits.size() < bytes) out.bits.resize(bytes);
  if (out.pixel_sums.size() < static_cast<size_t>(rows * g.in_w))
    out.pixel_sums.resize(static_cast<size_t>(rows * g.in_w));
#if defined(__x86_64__)
  const int64_t prb = out.plane_row_bytes;
  for (int64_t y = 0; y < rows; ++y) {
    int32_t* sums = out.pixel_sums.data() + y * g.in_w;
    row_to_planes(codes + (first + y) * row_codes, row_codes, g.in_c, planes, prb, out.bits.data() + y * planes * prb,
                  sums);
    kernel_row_sums(sums, g.in_w, g.kernel);
  }
#else
  (void)codes;
  MINIDL_CHECK(false, "codes_to_bit_planes: no bit-serial kernels on this architecture");
#endif
}

void bitserial_conv_rows(const IntConvGeometry& g, const BitPlanes& in, const PackedInt8Weights& w, int64_t p0,
                         int64_t rows, int32_t* acc) {
#if defined(__x86_64__)
  const int64_t OH = g.out_h(), OW = g.out_w(), C = g.in_c, k = g.kernel, s = g.stride, N = g.out_c;
  const int64_t cb = C / 8, prb = in.plane_row_bytes, krow_stride = in.planes * prb;
  const int64_t words = sign_bit_words_per_row(k, C), block_words = k * words * 16;
  const uint32_t* signs = w.conv_sign_bits().data();
  OutputCursor at(p0, OH, OW);
  for (int64_t i = 0; i < rows;) {
    const int64_t run = std::min(rows - i, at.row_left());
    const int64_t ih0 = at.oh * s - g.padding, iw0 = at.ow * s - g.padding;  // g.padding <= 0: inside the buffer
    const int64_t first_row = at.n * g.in_h + ih0 - in.first_row;            // in the planes' rows
    // an invariant of the caller's ranges, not an input check (this runs inside a parallel region: no throwing)
    assert(first_row >= 0 && (first_row + k) * prb * in.planes <= static_cast<int64_t>(in.bits.size()));
    const uint8_t* base = in.bits.data() + first_row * krow_stride + iw0 * cb;
    const int32_t* row_sums = in.pixel_sums.data() + first_row * g.in_w + iw0;
    int32_t t[kMaxRun];
    for (int64_t j0 = 0; j0 < run; j0 += kMaxRun) {
      const int64_t r = std::min<int64_t>(kMaxRun, run - j0);
      window_sums_row(row_sums + j0 * s, g.in_w, k, s, r, t);
      const BlockKernel kernel = pick_kernel(in.planes, s * cb, r);
      for (int64_t ob = 0; ob < N / 16; ++ob)
        kernel(base + j0 * s * cb, s * cb, krow_stride, prb, k, words, signs + ob * block_words, t,
               acc + (i + j0) * N + ob * 16, N);
    }
    i += run;
    at.advance(run);
  }
#else
  (void)g, (void)in, (void)w, (void)p0, (void)rows, (void)acc;
  MINIDL_CHECK(false, "bitserial_conv_rows: no bit-serial kernels on this architecture");
#endif
}

}  // namespace detail
}  // namespace minidl::backends
