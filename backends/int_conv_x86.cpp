// AVX2 kernels of the integer convolution's quantizer and epilogue (see int_conv_x86.h). Exactness: the
// quantizer compares with the same float32 thresholds (ordered compare, NaN reaches none) and counts; the
// epilogue converts int32 -> float32 (cvtdq2ps, round to nearest), multiplies by the channel's factor and adds the
// shift as two instructions (the target has no FMA, and no contraction happens across intrinsics), adds the
// residual, and takes max(0, v), which keeps NaN as std::max(v, 0) does.
#include "backends/int_conv_x86.h"

#include <algorithm>
#include <bit>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>

#include "backends/bisect16_avx2.h"
#endif

#include "core/error.h"

namespace minidl::backends::detail {

#if defined(__x86_64__)

#define MINIDL_TARGET_AVX2 __attribute__((target("avx2")))

namespace {

// The threshold count of 8 values as int32 lanes, and their NaN count.
MINIDL_TARGET_AVX2 inline __m256i count8(const __m256* tv, int nt, __m256 x, int64_t& nan) {
  __m256i cnt = _mm256_setzero_si256();
  for (int k = 0; k < nt; ++k) cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(_mm256_cmp_ps(x, tv[k], _CMP_GE_OQ)));
  const int un = _mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  nan += std::popcount(static_cast<unsigned>(un));
  return cnt;
}

// The same count by binary search (backends/bisect16_avx2.h), for the 8-15 thresholds of 4-bit codes.
struct Bisect16 {
  Bisect16Avx2<_CMP_GE_OQ> search;
  MINIDL_TARGET_AVX2 Bisect16(const float* t, int nt) : search(t, nt) {}
  MINIDL_TARGET_AVX2 __m256i operator()(__m256 x, int64_t& nan) const {
    const int un = _mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    nan += std::popcount(static_cast<unsigned>(un));
    return search(x);
  }
};

// count8 over the thresholds one by one.
struct LinearCount {
  const __m256* tv;
  int nt;
  MINIDL_TARGET_AVX2 __m256i operator()(__m256 x, int64_t& nan) const { return count8(tv, nt, x, nan); }
};

// The book (16 codes, in both 128-bit halves) as a shuffle table.
MINIDL_TARGET_AVX2 inline __m256i book_table(const uint8_t* book16) {
  return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(book16)));
}

// The 32 codes of 32 values (their threshold counts c0..c3, 8 int32 lanes each, in order) stored at out.
MINIDL_TARGET_AVX2 inline void store_codes32(uint8_t* out, __m256i table, __m256i c0, __m256i c1, __m256i c2,
                                             __m256i c3) {
  const __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(c0, c1), _mm256_packs_epi32(c2, c3));
  // packs / packus interleave 128-bit lanes: this dword permute puts the 32 codes back in order
  const __m256i idx = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_shuffle_epi8(table, idx));
}

// Codes of 32 values at a time: `count(x, nan)` gives 8 values' threshold counts as int32 lanes.
template <class Count>
MINIDL_TARGET_AVX2 inline int64_t codes_by_count(const Count& count, const uint8_t* book16, const float* x, int64_t n,
                                                 uint8_t* out, int64_t& nan) {
  const __m256i table = book_table(book16);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    store_codes32(out + i, table, count(_mm256_loadu_ps(x + i), nan), count(_mm256_loadu_ps(x + i + 8), nan),
                  count(_mm256_loadu_ps(x + i + 16), nan), count(_mm256_loadu_ps(x + i + 24), nan));
  return i;
}

}  // namespace

MINIDL_TARGET_AVX2 int64_t quantize_to_codes_avx2(const float* t, int nt, const uint8_t* book16, const float* x,
                                                  int64_t n, uint8_t* out) {
  MINIDL_CHECK(nt >= 0 && nt < kQuantizeAvx2MaxBook, "quantize_to_codes_avx2: ", nt, " thresholds");
  int64_t nan = 0, i = 0;
  if (nt >= kQuantizeAvx2BisectFrom) {
    const Bisect16 bisect(t, nt);
    i = codes_by_count(bisect, book16, x, n, out, nan);
  } else {
    __m256 tv[kQuantizeAvx2MaxBook];
    for (int k = 0; k < nt; ++k) tv[k] = _mm256_set1_ps(t[k]);
    i = codes_by_count(LinearCount{tv, nt}, book16, x, n, out, nan);
  }
  for (; i < n; ++i) {
    int j = 0;
    for (int k = 0; k < nt; ++k) j += x[i] >= t[k] ? 1 : 0;
    nan += x[i] != x[i] ? 1 : 0;
    out[i] = book16[j];
  }
  return nan;
}

namespace {

// The 8 values of channels o..o+7 at element i of the tile (acc and res at the tile's pixel 0): int32 -> float32,
// times the channel's factor, plus the shift, the residual, max(0, v); the epilogues' one spelling of it.
template <bool Res, bool Relu>
MINIDL_TARGET_AVX2 inline __m256 value8(const int32_t* acc, const float* k, const float* shift, const float* res,
                                        int64_t i, int64_t o) {
  const __m256 c = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i)));
  __m256 v = _mm256_add_ps(_mm256_mul_ps(c, _mm256_loadu_ps(k + o)), _mm256_loadu_ps(shift + o));
  if constexpr (Res) v = _mm256_add_ps(v, _mm256_loadu_ps(res + i));
  if constexpr (Relu) v = _mm256_max_ps(_mm256_setzero_ps(), v);
  return v;
}

template <bool Res, bool Relu>
MINIDL_TARGET_AVX2 void values_rows(const IntConvEpilogue& e, const float* k, int64_t out_c, int64_t p0, int64_t rows,
                                    const int32_t* acc, float* dst) {
  const float* res = Res ? e.residual + p0 * out_c : nullptr;
  const int64_t vec = out_c / 8 * 8;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t row = r * out_c;
    int64_t o = 0;
    for (; o < vec; o += 8) _mm256_storeu_ps(dst + row + o, value8<Res, Relu>(acc, k, e.shift, res, row + o, o));
    for (; o < out_c; ++o) {
      float v = static_cast<float>(acc[row + o]) * k[o] + e.shift[o];
      if constexpr (Res) v += res[row + o];
      dst[row + o] = Relu ? std::max(v, 0.0f) : v;
    }
  }
}

}  // namespace

MINIDL_TARGET_AVX2 void epilogue_values_avx2(const IntConvEpilogue& e, const float* k, int64_t out_c, int64_t p0,
                                             int64_t rows, const int32_t* acc, float* dst) {
  if (e.residual) {
    e.relu ? values_rows<true, true>(e, k, out_c, p0, rows, acc, dst)
           : values_rows<true, false>(e, k, out_c, p0, rows, acc, dst);
  } else {
    e.relu ? values_rows<false, true>(e, k, out_c, p0, rows, acc, dst)
           : values_rows<false, false>(e, k, out_c, p0, rows, acc, dst);
  }
}

namespace {

// One consumer of the fused epilogue: its threshold count (binary search or one compare per threshold) and book.
struct Avx2Consumer {
  int nt = 0;
  const float* t = nullptr;
  uint8_t book16[kQuantizeAvx2MaxBook] = {};
  uint8_t* codes = nullptr;
};

// 32 codes of one consumer from 4 vectors of values.
template <class Count>
MINIDL_TARGET_AVX2 inline void consumer_codes32(const Count& count, const Avx2Consumer& c, const __m256 (&v)[4],
                                                int64_t i, int64_t& nan) {
  store_codes32(c.codes + i, book_table(c.book16), count(v[0], nan), count(v[1], nan), count(v[2], nan),
                count(v[3], nan));
}

template <bool Res, bool Relu>
MINIDL_TARGET_AVX2 int64_t epilogue_codes_loop(const IntConvEpilogue& e, const float* k, int64_t out_c, int64_t p0,
                                               int64_t n, const int32_t* acc, const Avx2Consumer* cons, int nq) {
  const float* res = Res ? e.residual + p0 * out_c : nullptr;
  float* out = e.out ? e.out + p0 * out_c : nullptr;
  // the counting kernels of each consumer, built once per call
  const Bisect16 bisect[IntConvEpilogue::kMaxConsumers] = {Bisect16(cons[0].t, cons[0].nt),
                                                           Bisect16(cons[nq - 1].t, cons[nq - 1].nt)};
  __m256 tv[IntConvEpilogue::kMaxConsumers][kQuantizeAvx2MaxBook];
  for (int q = 0; q < nq; ++q)
    for (int j = 0; j < cons[q].nt; ++j) tv[q][j] = _mm256_set1_ps(cons[q].t[j]);
  int64_t nan = 0, o = 0;
  for (int64_t i = 0; i < n; i += 32) {
    __m256 v[4];
    for (int g = 0; g < 4; ++g) {
      v[g] = value8<Res, Relu>(acc, k, e.shift, res, i + 8 * g, o);
      if (out) _mm256_storeu_ps(out + i + 8 * g, v[g]);
      o += 8;
      if (o == out_c) o = 0;
    }
    for (int q = 0; q < nq; ++q) {
      if (cons[q].nt >= kQuantizeAvx2BisectFrom) {
        consumer_codes32(bisect[q], cons[q], v, i, nan);
      } else {
        consumer_codes32(LinearCount{tv[q], cons[q].nt}, cons[q], v, i, nan);
      }
    }
  }
  return nan;
}

}  // namespace

int64_t epilogue_codes_rows_avx2(int64_t out_c) {
  if (out_c % 8 != 0) return 0;
  int64_t q = 1;
  while ((q * out_c) % 32 != 0) ++q;
  return q;
}

MINIDL_TARGET_AVX2 int64_t epilogue_codes_avx2(const IntConvEpilogue& e, const float* k, int64_t out_c, int64_t p0,
                                               int64_t rows, const int32_t* acc) {
  const int64_t quantum = epilogue_codes_rows_avx2(out_c);
  MINIDL_CHECK(quantum > 0 && rows % quantum == 0, "epilogue_codes_avx2: ", rows, " rows of ", out_c, " channels");
  Avx2Consumer cons[IntConvEpilogue::kMaxConsumers];
  int nq = 0;
  for (int i = 0; i < IntConvEpilogue::kMaxConsumers; ++i)
    if (e.quant[i]) {
      const CodeThresholds& q = *e.quant[i];
      MINIDL_CHECK(q.book().size() <= static_cast<size_t>(kQuantizeAvx2MaxBook), "epilogue_codes_avx2: a book of ",
                   q.book().size(), " codes");
      Avx2Consumer& c = cons[nq++];
      c.nt = static_cast<int>(q.thresholds().size());
      c.t = q.thresholds().data();
      std::copy(q.book().begin(), q.book().end(), c.book16);
      c.codes = e.codes[i] + p0 * out_c;
    }
  MINIDL_CHECK(nq > 0, "epilogue_codes_avx2: no consumer");
  const int64_t n = rows * out_c;
  if (e.residual) {
    return e.relu ? epilogue_codes_loop<true, true>(e, k, out_c, p0, n, acc, cons, nq)
                  : epilogue_codes_loop<true, false>(e, k, out_c, p0, n, acc, cons, nq);
  }
  return e.relu ? epilogue_codes_loop<false, true>(e, k, out_c, p0, n, acc, cons, nq)
                : epilogue_codes_loop<false, false>(e, k, out_c, p0, n, acc, cons, nq);
}

#else  // not x86-64: int_conv.cpp never calls these (cpu::active_isa() is Baseline there)

int64_t quantize_to_codes_avx2(const float*, int, const uint8_t*, const float*, int64_t, uint8_t*) {
  MINIDL_FAIL("quantize_to_codes_avx2 exists on x86-64 only");
}
void epilogue_values_avx2(const IntConvEpilogue&, const float*, int64_t, int64_t, int64_t, const int32_t*, float*) {
  MINIDL_FAIL("epilogue_values_avx2 exists on x86-64 only");
}
int64_t epilogue_codes_rows_avx2(int64_t) { return 0; }
int64_t epilogue_codes_avx2(const IntConvEpilogue&, const float*, int64_t, int64_t, int64_t, const int32_t*) {
  MINIDL_FAIL("epilogue_codes_avx2 exists on x86-64 only");
}

#endif

}  // namespace minidl::backends::detail
