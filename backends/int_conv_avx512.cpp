// AVX-512 kernels of the integer convolution's quantizer and epilogue (see int_conv_avx512.h).
//
// The quantizer: the code index of x is the number of thresholds t[k] with x >= t[k] (an ordered compare: NaN
// reaches none). The predicate is true for a prefix of the ascending thresholds, so a binary search finds the
// count in log2(book) steps instead of one compare per threshold: with the thresholds padded to 16 by NaN (never
// reached), step s (8, 4, 2, 1) asks whether x reaches t[j + s - 1] and adds s to j if so. The step's threshold
// per lane comes from one vpermps of a 16-entry table shifted by s - 1, indexed by j; the book entry from one
// vpermd. Same compares as the scalar definition, so the same codes for ties, -0.0, infinities and NaN.
//
// The epilogue: the same operations as the scalar and AVX2 code in the same order (int32 -> float32 by cvtdq2ps,
// float32 multiply by the channel's factor, add, residual add, max(0, v)). AVX-512F
// brings FMA and GCC would contract an intrinsic multiply + add; the *_round_* intrinsics with the current
// rounding direction are the plain instructions the compiler does not fuse, so the file needs no special flags.
#include "backends/int_conv_avx512.h"

#include <algorithm>
#include <bit>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "backends/int_conv_im2col.h"
#include "core/error.h"

// GCC 12 reports the "undefined" pass-through operands of its AVX-512 intrinsics as maybe-uninitialized once they
// are inlined: a known false positive of its headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace minidl::backends::detail {

bool avx512_epilogue_fits(const IntConvEpilogue& e) {
  for (const CodeThresholds* q : e.quant)
    if (q && q->book().size() > static_cast<size_t>(kQuantizeAvx512MaxBook)) return false;
  return true;
}

ThresholdSearch make_threshold_search(const CodeThresholds& q) {
  const auto& t = q.thresholds();
  const auto nt = static_cast<int>(t.size());
  MINIDL_CHECK(nt + 1 <= kQuantizeAvx512MaxBook, "AVX-512 quantizer: ", nt, " thresholds");
  ThresholdSearch s;
  for (int l = 0; l < 16; ++l) s.t16[l] = l < nt ? t[static_cast<size_t>(l)] : std::numeric_limits<float>::quiet_NaN();
  while ((1 << s.steps) < nt + 1) ++s.steps;
  if (s.steps > 0) s.first = s.t16[(1 << (s.steps - 1)) - 1];
  for (int i = 0; i + 1 < s.steps; ++i) {
    const int step = 1 << (s.steps - 2 - i);
    for (int l = 0; l < 16; ++l) s.table[i][l] = s.t16[std::min(l + step - 1, 15)];
  }
  s.identity_book = true;
  for (size_t c = 0; c < q.book().size(); ++c) {
    s.book[c] = q.book()[c];
    s.identity_book = s.identity_book && s.book[c] == static_cast<int32_t>(c);
  }
  return s;
}

#if defined(__x86_64__)

#define MINIDL_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

namespace {

constexpr int kRound = _MM_FROUND_CUR_DIRECTION;

using Search = ThresholdSearch;

// The tables of one Search in registers (a kernel loads them once per call).
struct SearchRegs {
  __m512 first, table[3];
  __m512i book;
  __m512i book_bytes;  // the book's 16 codes as bytes in each 128-bit lane (a vpshufb table)
  bool identity_book;
};

MINIDL_TARGET_AVX512 inline SearchRegs load_search(const Search& s) {
  SearchRegs r;
  r.first = _mm512_set1_ps(s.first);
  for (int i = 0; i < 3; ++i) r.table[i] = _mm512_loadu_ps(s.table[i]);
  r.book = _mm512_loadu_si512(s.book);
  alignas(16) uint8_t bytes[16];
  for (int c = 0; c < 16; ++c) bytes[c] = static_cast<uint8_t>(s.book[c]);
  r.book_bytes = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(bytes)));
  r.identity_book = s.identity_book;
  return r;
}

// Vectors searched together: one search is a chain of dependent permutes and compares, so 4 independent ones
// interleave to keep the vector units busy.
constexpr int kGroup = 4;

// The threshold counts (code indices) of N vectors, searched together: STEPS compares each, against the
// thresholds the running index picks.
template <int STEPS, int N>
MINIDL_TARGET_AVX512 inline void search_indices(const SearchRegs& r, const __m512 (&x)[N], __m512i (&j)[N]) {
  if constexpr (STEPS == 0) {
    for (int g = 0; g < N; ++g) j[g] = _mm512_setzero_si512();
  } else {
    constexpr int top = 1 << (STEPS - 1);
    for (int g = 0; g < N; ++g)
      j[g] = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(x[g], r.first, _CMP_GE_OQ), _mm512_set1_epi32(top));
    for (int i = 0; i + 1 < STEPS; ++i)
      for (int g = 0; g < N; ++g) {
        const __m512 thr = _mm512_permutexvar_ps(j[g], r.table[i]);
        j[g] = _mm512_mask_add_epi32(j[g], _mm512_cmp_ps_mask(x[g], thr, _CMP_GE_OQ), j[g],
                                     _mm512_set1_epi32(top >> (i + 1)));
      }
  }
}

// The codes of kGroup vectors of 16 values: x[g]'s lanes in m[g] go to out[g] (g < count). The search, then one
// permute of the book per vector.
template <int STEPS>
MINIDL_TARGET_AVX512 inline void codes_group(const SearchRegs& r, const __m512 (&x)[kGroup], int count,
                                             uint8_t* const (&out)[kGroup], const __mmask16 (&m)[kGroup]) {
  __m512i j[kGroup];
  search_indices<STEPS>(r, x, j);
  for (int g = 0; g < count; ++g) {
    // narrow in a register, then a plain store: vpmovdb with a memory operand is many times slower on Zen
    const __m128i bytes = _mm512_cvtepi32_epi8(r.identity_book ? j[g] : _mm512_permutexvar_epi32(j[g], r.book));
    if (m[g] == 0xffff) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out[g]), bytes);
    } else {
      _mm_mask_storeu_epi8(out[g], m[g], bytes);
    }
  }
}

MINIDL_TARGET_AVX512 inline void codes_group(int steps, const SearchRegs& r, const __m512 (&x)[kGroup], int count,
                                             uint8_t* const (&out)[kGroup], const __mmask16 (&m)[kGroup]) {
  switch (steps) {
    case 0: codes_group<0>(r, x, count, out, m); return;
    case 1: codes_group<1>(r, x, count, out, m); return;
    case 2: codes_group<2>(r, x, count, out, m); return;
    case 3: codes_group<3>(r, x, count, out, m); return;
    default: codes_group<4>(r, x, count, out, m); return;
  }
}

// The codes of kWide whole vectors (16 * kWide values, in order) into out: the same search as codes_group, more
// vectors interleaved (each search is a chain of dependent permutes and compares), then the indices of each 4
// vectors narrowed to 64 bytes by two packs, put back in order by one dword permute, mapped through the book by one
// byte shuffle and written by one store.
constexpr int kWide = 8;

template <int STEPS>
MINIDL_TARGET_AVX512 inline void codes_wide(const SearchRegs& r, const __m512 (&x)[kWide], uint8_t* out) {
  __m512i j[kWide];
  search_indices<STEPS>(r, x, j);
  // packs / packus work per 128-bit lane: lane L of the bytes holds dwords (4 codes each) j0[L], j1[L], j2[L],
  // j3[L]; dword d of the output (vector d / 4, lane d % 4) sits at 4 (d % 4) + d / 4
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (int h = 0; h < kWide / 4; ++h) {
    const __m512i p01 = _mm512_packs_epi32(j[4 * h], j[4 * h + 1]),
                  p23 = _mm512_packs_epi32(j[4 * h + 2], j[4 * h + 3]);
    __m512i b = _mm512_permutexvar_epi32(order, _mm512_packus_epi16(p01, p23));
    if (!r.identity_book) b = _mm512_shuffle_epi8(r.book_bytes, b);
    _mm512_storeu_si512(out + 64 * h, b);
  }
}

MINIDL_TARGET_AVX512 inline void codes_wide(int steps, const SearchRegs& r, const __m512 (&x)[kWide], uint8_t* out) {
  switch (steps) {
    case 0: codes_wide<0>(r, x, out); return;
    case 1: codes_wide<1>(r, x, out); return;
    case 2: codes_wide<2>(r, x, out); return;
    case 3: codes_wide<3>(r, x, out); return;
    default: codes_wide<4>(r, x, out); return;
  }
}

MINIDL_TARGET_AVX512 inline int64_t nan_count(__m512 x, __mmask16 m) {
  const __mmask16 un = _mm512_mask_cmp_ps_mask(m, x, x, _CMP_UNORD_Q);
  return un == 0 ? 0 : std::popcount(static_cast<unsigned>(un));
}

inline __mmask16 lanes(int64_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << count) - 1u);
}

template <int STEPS>
MINIDL_TARGET_AVX512 int64_t quantize_steps(const Search& s, const float* x, int64_t n, uint8_t* out) {
  const SearchRegs r = load_search(s);
  int64_t nan = 0;
  for (int64_t i = 0; i < n; i += 16 * kGroup) {
    __m512 v[kGroup];
    __mmask16 m[kGroup];
    uint8_t* o[kGroup];
    int count = 0;
    for (int g = 0; g < kGroup; ++g) {
      const int64_t at = i + 16 * g;
      m[g] = at < n ? lanes(n - at) : 0;
      v[g] = _mm512_maskz_loadu_ps(m[g], x + std::min(at, n));
      o[g] = out + std::min(at, n);
      nan += nan_count(v[g], m[g]);
      count += m[g] != 0 ? 1 : 0;
    }
    codes_group<STEPS>(r, v, count, o, m);
  }
  return nan;
}

}  // namespace

template <int STEPS>
MINIDL_TARGET_AVX512 int64_t quantize_rows(const Search& s, const float* x, int64_t rows, int64_t len, uint8_t* out,
                                           int64_t out_stride) {
  int64_t nan = 0;
  for (int64_t r = 0; r < rows; ++r) nan += quantize_steps<STEPS>(s, x + r * len, len, out + r * out_stride);
  return nan;
}

MINIDL_TARGET_AVX512 int64_t quantize_to_codes_avx512(const CodeThresholds& q, const float* x, int64_t rows,
                                                      int64_t len, uint8_t* out, int64_t out_stride) {
  const Search s = make_threshold_search(q);
  switch (s.steps) {
    case 0: return quantize_rows<0>(s, x, rows, len, out, out_stride);
    case 1: return quantize_rows<1>(s, x, rows, len, out, out_stride);
    case 2: return quantize_rows<2>(s, x, rows, len, out, out_stride);
    case 3: return quantize_rows<3>(s, x, rows, len, out, out_stride);
    default: return quantize_rows<4>(s, x, rows, len, out, out_stride);
  }
}

namespace {

// The epilogue's loop for any out_c: masked loads and stores cover a last, partial vector of channels per row
// (epilogue_whole below takes out_c a multiple of 16).
MINIDL_TARGET_AVX512 int64_t epilogue_vectors(const IntConvEpilogue& e, const float* k, int64_t out_c, int64_t p0,
                                              int64_t rows, const int32_t* acc, int nq, const Search* search,
                                              const SearchRegs* regs, uint8_t* const* codes) {
  const __m512 zero = _mm512_setzero_ps();
  // The tile's vectors in order (row r, channels o..o+15), kGroup at a time: values, then each consumer's codes.
  const int64_t per_row = (out_c + 15) / 16, total = rows * per_row;
  int64_t nan = 0, r = 0, o = 0;
  for (int64_t v0 = 0; v0 < total; v0 += kGroup) {
    __m512 v[kGroup];
    __mmask16 m[kGroup];
    int64_t at[kGroup];  // the vector's first element, relative to p0 * out_c
    const int count = static_cast<int>(std::min<int64_t>(kGroup, total - v0));
    for (int g = 0; g < kGroup; ++g) {
      if (g >= count) {
        v[g] = zero;
        m[g] = 0;
        at[g] = 0;
        continue;
      }
      m[g] = lanes(out_c - o);
      at[g] = r * out_c + o;
      const __m512 c = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m[g], acc + at[g]));
      __m512 x = _mm512_add_round_ps(_mm512_mul_round_ps(c, _mm512_maskz_loadu_ps(m[g], k + o), kRound),
                                     _mm512_maskz_loadu_ps(m[g], e.shift + o), kRound);
      if (e.residual) x = _mm512_add_round_ps(x, _mm512_maskz_loadu_ps(m[g], e.residual + p0 * out_c + at[g]), kRound);
      if (e.relu) x = _mm512_max_ps(zero, x);  // max(0, NaN) is NaN and max(0, -0) is -0, as std::max(v, 0)
      if (e.out) _mm512_mask_storeu_ps(e.out + p0 * out_c + at[g], m[g], x);
      v[g] = x;
      if (nq > 0) nan += nq * nan_count(x, m[g]);
      o += 16;
      if (o >= out_c) {
        o = 0;
        ++r;
      }
    }
    for (int q = 0; q < nq; ++q) {
      uint8_t* const dst[kGroup] = {codes[q] + at[0], codes[q] + at[1], codes[q] + at[2], codes[q] + at[3]};
      codes_group(search[q].steps, regs[q], v, count, dst, m);
    }
  }
  return nan;
}

// The value of the 16 outputs at element i of a tile, channels o..o+15: lo is 0 with the ReLU (max(0, v) keeps NaN and
// -0 as std::max(v, 0)) and -inf without it (max(-inf, v) is v for every v, NaN included).
template <bool Res>
MINIDL_TARGET_AVX512 inline __m512 value16(const int32_t* acc, const float* k, const float* shift, const float* res,
                                           __m512 lo, int64_t i, int64_t o) {
  const __m512 c = _mm512_cvtepi32_ps(_mm512_loadu_si512(acc + i));
  __m512 x =
      _mm512_add_round_ps(_mm512_mul_round_ps(c, _mm512_loadu_ps(k + o), kRound), _mm512_loadu_ps(shift + o), kRound);
  if constexpr (Res) x = _mm512_add_round_ps(x, _mm512_loadu_ps(res + i), kRound);
  return _mm512_max_ps(lo, x);
}

// epilogue_vectors for whole vectors (out_c a multiple of 16) as one flat walk over the tile's rows * out_c
// elements, the pointers and flags hoisted out of the loop. NaN is not counted per vector: every value is summed,
// and only when the sum is not finite (a NaN, or an infinity, which a sum of large values can also reach) are the
// values computed again and their NaNs counted.
template <bool Res, bool Out>
MINIDL_TARGET_AVX512 int64_t epilogue_whole(const IntConvEpilogue& e, const float* k, int64_t out_c, int64_t p0,
                                            int64_t rows, const int32_t* acc, int nq, const Search* search,
                                            const SearchRegs* regs, uint8_t* const* codes) {
  const int64_t n = rows * out_c;
  const float* shift = e.shift;
  const float* res = Res ? e.residual + p0 * out_c : nullptr;
  float* out = Out ? e.out + p0 * out_c : nullptr;
  const __m512 zero = _mm512_setzero_ps();
  const __m512 lo = e.relu ? zero : _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 sum = zero;
  int64_t o = 0, i = 0;
  for (; i + 16 * kWide <= n; i += 16 * kWide) {
    __m512 v[kWide];
    for (int g = 0; g < kWide; ++g) {
      v[g] = value16<Res>(acc, k, shift, res, lo, i + 16 * g, o);
      if constexpr (Out) _mm512_storeu_ps(out + i + 16 * g, v[g]);
      sum = _mm512_add_ps(sum, v[g]);
      o += 16;
      if (o == out_c) o = 0;
    }
    for (int q = 0; q < nq; ++q) codes_wide(search[q].steps, regs[q], v, codes[q] + i);
  }
  for (; i < n; i += 16 * kGroup) {
    const int count = static_cast<int>(std::min<int64_t>(kGroup, (n - i) / 16));
    __m512 v[kGroup];
    __mmask16 m[kGroup];
    for (int g = 0; g < kGroup; ++g) {
      if (g >= count) {
        v[g] = zero;
        m[g] = 0;
        continue;
      }
      v[g] = value16<Res>(acc, k, shift, res, lo, i + 16 * g, o);
      if constexpr (Out) _mm512_storeu_ps(out + i + 16 * g, v[g]);
      sum = _mm512_add_ps(sum, v[g]);
      m[g] = static_cast<__mmask16>(0xffff);
      o += 16;
      if (o == out_c) o = 0;
    }
    for (int q = 0; q < nq; ++q) {
      uint8_t* const dst[kGroup] = {codes[q] + i, codes[q] + i + 16, codes[q] + i + 32, codes[q] + i + 48};
      codes_group(search[q].steps, regs[q], v, count, dst, m);
    }
  }
  if (nq == 0 || _mm512_cmp_ps_mask(_mm512_sub_ps(sum, sum), zero, _CMP_EQ_OQ) == 0xffff) return 0;
  int64_t nan = 0;
  o = 0;
  for (int64_t i = 0; i < n; i += 16) {
    nan += nan_count(value16<Res>(acc, k, shift, res, lo, i, o), static_cast<__mmask16>(0xffff));
    o = o + 16 == out_c ? 0 : o + 16;
  }
  return nq * nan;
}

}  // namespace

MINIDL_TARGET_AVX512 int64_t int_conv_epilogue_avx512(const IntConvEpilogue& e, const float* k,
                                                      const ThresholdSearch* searches, int64_t out_c, int64_t p0,
                                                      int64_t rows, const int32_t* acc) {
  const Search* search = searches;
  SearchRegs regs[IntConvEpilogue::kMaxConsumers];
  uint8_t* codes[IntConvEpilogue::kMaxConsumers];
  int nq = 0;
  for (int i = 0; i < IntConvEpilogue::kMaxConsumers; ++i)
    if (e.quant[i]) {
      regs[nq] = load_search(search[nq]);
      codes[nq++] = e.codes[i] + p0 * out_c;
    }
  if (out_c % 16 == 0) {
    if (e.residual && e.out) return epilogue_whole<true, true>(e, k, out_c, p0, rows, acc, nq, search, regs, codes);
    if (e.residual) return epilogue_whole<true, false>(e, k, out_c, p0, rows, acc, nq, search, regs, codes);
    if (e.out) return epilogue_whole<false, true>(e, k, out_c, p0, rows, acc, nq, search, regs, codes);
    return epilogue_whole<false, false>(e, k, out_c, p0, rows, acc, nq, search, regs, codes);
  }
  return epilogue_vectors(e, k, out_c, p0, rows, acc, nq, search, regs, codes);
}

namespace {

// A copy of n bytes as `full` whole zmm and a masked tail. Every store is a whole zmm: the bytes past n it writes
// (the tail's zeros) are overwritten by the next copy, which starts at n, or land in the buffer's slack; the loads
// are masked, so nothing past the source is read.
struct ZmmCopy {
  int64_t full;
  __mmask64 tail;
  explicit ZmmCopy(int64_t n) : full(n / 64), tail(n % 64 == 0 ? 0 : (~uint64_t{0} >> (64 - n % 64))) {}
};

MINIDL_TARGET_AVX512 inline void copy_zmm(uint8_t* dst, const uint8_t* src, const ZmmCopy& c) {
  for (int64_t i = 0; i < c.full; ++i) _mm512_storeu_si512(dst + 64 * i, _mm512_loadu_si512(src + 64 * i));
  if (c.tail) _mm512_storeu_si512(dst + 64 * c.full, _mm512_maskz_loadu_epi8(c.tail, src + 64 * c.full));
}

MINIDL_TARGET_AVX512 inline void zero_zmm(uint8_t* dst, const ZmmCopy& c) {
  for (int64_t i = 0; i < c.full + (c.tail ? 1 : 0); ++i) _mm512_storeu_si512(dst + 64 * i, _mm512_setzero_si512());
}

// The zmm byte moves of the im2col walk (int_conv_im2col.h).
struct ZmmCopies {
  ZmmCopy row, pixel;
  explicit ZmmCopies(const IntConvGeometry& g) : row(g.kernel * g.in_c), pixel(g.in_c) {}
  MINIDL_TARGET_AVX512 void zero_row(uint8_t* dst) const { zero_zmm(dst, row); }
  MINIDL_TARGET_AVX512 void copy_row(uint8_t* dst, const uint8_t* src) const { copy_zmm(dst, src, row); }
  MINIDL_TARGET_AVX512 void zero_pixel(uint8_t* dst) const { zero_zmm(dst, pixel); }
  MINIDL_TARGET_AVX512 void copy_pixel(uint8_t* dst, const uint8_t* src) const { copy_zmm(dst, src, pixel); }
};

}  // namespace

MINIDL_TARGET_AVX512 void im2col_rows_avx512(const IntConvGeometry& g, const uint8_t* codes, int64_t p0, int64_t rows,
                                             uint8_t* a) {
  im2col_rows_with(g, codes, p0, rows, a, ZmmCopies(g));
}

#else  // not x86-64: int_conv.cpp never calls these (cpu::active_isa() is Baseline there)

int64_t quantize_to_codes_avx512(const CodeThresholds&, const float*, int64_t, int64_t, uint8_t*, int64_t) {
  MINIDL_FAIL("quantize_to_codes_avx512 exists on x86-64 only");
}
int64_t int_conv_epilogue_avx512(const IntConvEpilogue&, const float*, const ThresholdSearch*, int64_t, int64_t,
                                 int64_t, const int32_t*) {
  MINIDL_FAIL("int_conv_epilogue_avx512 exists on x86-64 only");
}
void im2col_rows_avx512(const IntConvGeometry&, const uint8_t*, int64_t, int64_t, uint8_t*) {
  MINIDL_FAIL("im2col_rows_avx512 exists on x86-64 only");
}

#endif

}  // namespace minidl::backends::detail
