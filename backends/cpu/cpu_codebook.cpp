// The cpu backend's code-book coding (codebook_encode / codebook_decode, backend.h): memory-order passes over
// dense tensors in L1-sized blocks, parallel over blocks, compiled for AVX2 and for the baseline and picked at run
// time. Encoding: an element's code is the count of entries whose key (codebook_key) is below its key (vectorised
// compares over the block for code books of up to 32 entries, a binary search beyond), then the entry at that code
// must have the element's key (one table load): exact bits or failure. Decoding is one load from a 256-entry table
// (the entries, NaN past them) per element; float32 books of up to 32 entries decode through register permutes
// (AVX2: four 8-entry tables, AVX-512: one two-table permute).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/codebook.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_loops.h"

namespace minidl {
namespace {

constexpr int64_t kBlock = 1024;   // elements per block
constexpr int64_t kCountMax = 32;  // entries up to which counting them all beats a binary search

template <typename T>
using Key = decltype(codebook_key(T{}));

template <typename T>
struct EncodeArgs {
  uint8_t* codes;
  const T* x;
  const Key<T>* keys;  // kPad entries: the code book's keys, then copies of the last one
  int64_t n;           // entries
};
constexpr int64_t kPad = 257;

// Elements [b, e); false when one has no entry.
template <typename T>
[[gnu::always_inline]] inline bool encode_range(const EncodeArgs<T>& A, int64_t b, int64_t e) {
  using K = Key<T>;
  K key[kBlock];
  int32_t cnt[kBlock];
  int32_t bad = 0;
  for (int64_t s = b; s < e; s += kBlock) {
    const int64_t m = std::min(kBlock, e - s);
    const T* x = A.x + s;
    for (int64_t i = 0; i < m; ++i) {
      K bits;
      std::memcpy(&bits, x + i, sizeof(K));
      key[i] = bits ^ ((bits >> (8 * sizeof(K) - 1)) & std::numeric_limits<K>::max());
    }
    if (A.n <= kCountMax) {
      for (int64_t i = 0; i < m; ++i) cnt[i] = 0;
      for (int64_t j = 0; j < A.n; ++j) {
        const K c = A.keys[j];
        for (int64_t i = 0; i < m; ++i) cnt[i] += static_cast<int32_t>(c < key[i]);
      }
    } else {
      for (int64_t i = 0; i < m; ++i)
        cnt[i] = static_cast<int32_t>(std::lower_bound(A.keys, A.keys + A.n, key[i]) - A.keys);
    }
    uint8_t* codes = A.codes + s;
    const auto n = static_cast<int32_t>(A.n);
    for (int64_t i = 0; i < m; ++i) {
      bad |= static_cast<int32_t>(cnt[i] >= n) | static_cast<int32_t>(A.keys[cnt[i]] != key[i]);
      codes[i] = static_cast<uint8_t>(cnt[i]);
    }
    if (bad != 0) return false;
  }
  return true;
}

template <typename T>
[[gnu::target("avx2")]] bool encode_avx2(const EncodeArgs<T>& A, int64_t b, int64_t e) {
  return encode_range(A, b, e);
}
template <typename T>
bool encode_base(const EncodeArgs<T>& A, int64_t b, int64_t e) {
  return encode_range(A, b, e);
}

// float32 books of at most 32 entries, eight elements at a time in registers: the count of keys below each
// element's key, then the key at that count (four 8-entry permutes and two selects) must be the element's.
[[gnu::target("avx2")]] bool encode_f32_avx2_32(const EncodeArgs<float>& A, int64_t b, int64_t e) {
  const auto* keys = reinterpret_cast<const int*>(A.keys);  // kPad >= 32 entries
  const __m256i t0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys)),
                t1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + 8)),
                t2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + 16)),
                t3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + 24));
  const __m256i mag = _mm256_set1_epi32(0x7fffffff), bit3 = _mm256_set1_epi32(8), bit4 = _mm256_set1_epi32(16);
  const __m256i last = _mm256_set1_epi32(static_cast<int>(A.n) - 1);
  const int n = static_cast<int>(A.n);
  __m256i bad = _mm256_setzero_si256();
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A.x + i));
    const __m256i key = _mm256_xor_si256(bits, _mm256_and_si256(_mm256_srai_epi32(bits, 31), mag));
    __m256i cnt = _mm256_setzero_si256();
    for (int j = 0; j < n; ++j) cnt = _mm256_sub_epi32(cnt, _mm256_cmpgt_epi32(key, _mm256_set1_epi32(keys[j])));
    const __m256 s3 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(cnt, bit3), bit3));
    const __m256 s4 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(cnt, bit4), bit4));
    const __m256 lo = _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_castsi256_ps(t0), cnt),
                                       _mm256_permutevar8x32_ps(_mm256_castsi256_ps(t1), cnt), s3);
    const __m256 hi = _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_castsi256_ps(t2), cnt),
                                       _mm256_permutevar8x32_ps(_mm256_castsi256_ps(t3), cnt), s3);
    const __m256i at = _mm256_castps_si256(_mm256_blendv_ps(lo, hi, s4));
    // bad: the key at the count is not the element's, or the count is past the last entry
    bad = _mm256_or_si256(bad, _mm256_cmpgt_epi32(cnt, last));
    bad = _mm256_or_si256(bad, _mm256_xor_si256(_mm256_cmpeq_epi32(at, key), _mm256_set1_epi32(-1)));
    const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(cnt), _mm256_extracti128_si256(cnt, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(A.codes + i), _mm_packus_epi16(w, w));
  }
  const bool ok = _mm256_testz_si256(bad, bad) != 0;
  return (i < e ? encode_range(A, i, e) : true) && ok;
}

template <typename T>
[[gnu::always_inline]] inline void decode_range(T* out, const uint8_t* codes, const T* table, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) out[i] = table[codes[i]];
}
template <typename T>
[[gnu::target("avx2")]] void decode_avx2(T* out, const uint8_t* codes, const T* table, int64_t b, int64_t e) {
  decode_range(out, codes, table, b, e);
}

// float32 books of at most Entries (16, 17 or 32) entries, eight codes at a time: one 8-entry permute per 8 entries
// of the book, selected by bit 3 of the code (and bit 4 for 32); with 17, entry 16 is a compare and a blend; a code
// of Entries or more takes the table's NaN (the table is NaN past the book, so every form agrees). 16 entries, the
// level sets of 4-bit APoT and PoT activations, cost half the 32-entry form's work; 17, the uniform grid's 16
// values with -0 (coded_saves.h), little more.
template <int Entries>
[[gnu::target("avx2")]] void decode_f32_avx2_book(float* out, const uint8_t* codes, const float* table, int64_t b,
                                                  int64_t e) {
  static_assert(Entries == 16 || Entries == 17 || Entries == 32, "an AVX2 book decode covers 16, 17 or 32 entries");
  const __m256 t0 = _mm256_loadu_ps(table), t1 = _mm256_loadu_ps(table + 8);
  const __m256 t2 = Entries == 32 ? _mm256_loadu_ps(table + 16) : t0;
  const __m256 t3 = Entries == 32 ? _mm256_loadu_ps(table + 24) : t1;
  const __m256 entry16 = _mm256_set1_ps(table[16]);  // used by the 17-entry form (the table has 256 entries)
  const __m256 nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
  const __m256i bit3 = _mm256_set1_epi32(8), bit4 = _mm256_set1_epi32(16), last = _mm256_set1_epi32(Entries - 1);
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    int64_t raw;
    std::memcpy(&raw, codes + i, 8);
    const __m256i k = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(raw));
    const __m256 s3 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(k, bit3), bit3));
    __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t0, k), _mm256_permutevar8x32_ps(t1, k), s3);
    if constexpr (Entries == 32) {
      const __m256 s4 = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(k, bit4), bit4));
      v = _mm256_blendv_ps(v, _mm256_blendv_ps(_mm256_permutevar8x32_ps(t2, k), _mm256_permutevar8x32_ps(t3, k), s3),
                           s4);
    } else if constexpr (Entries == 17) {
      v = _mm256_blendv_ps(v, entry16, _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, bit4)));
    }
    _mm256_storeu_ps(out + i, _mm256_blendv_ps(v, nan, _mm256_castsi256_ps(_mm256_cmpgt_epi32(k, last))));
  }
  for (; i < e; ++i) out[i] = table[codes[i]];
}
// GCC 12 reports the "undefined" pass-through operand of _mm512_cvtepu8_epi32 as maybe-uninitialized once inlined
// (a false positive: the mask is all ones).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// The same with AVX-512: sixteen codes at a time through one two-table permute (vpermt2ps: bits 0-4 of the code
// pick one of the 32 entries); a code of 32 or more takes the table's NaN. About a quarter of the AVX2 form's
// instructions per element (the coded saves' decode in every quantized conv's backward).
[[gnu::target("avx512f,avx512bw,avx512vl,avx512dq")]] void decode_f32_avx512_32(float* out, const uint8_t* codes,
                                                                                const float* table, int64_t b,
                                                                                int64_t e) {
  const __m512 t0 = _mm512_loadu_ps(table), t1 = _mm512_loadu_ps(table + 16);
  const __m512 nan = _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN());
  const __m512i last = _mm512_set1_epi32(31);
  int64_t i = b;
  for (; i + 16 <= e; i += 16) {
    const __m512i k = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i)));
    const __m512 v = _mm512_permutex2var_ps(t0, k, t1);
    _mm512_storeu_ps(out + i, _mm512_mask_mov_ps(v, _mm512_cmpgt_epi32_mask(k, last), nan));
  }
  for (; i < e; ++i) out[i] = table[codes[i]];
}
#pragma GCC diagnostic pop
template <typename T>
void decode_base(T* out, const uint8_t* codes, const T* table, int64_t b, int64_t e) {
  decode_range(out, codes, table, b, e);
}

bool have_avx2() { return cpu::isa_enabled(cpu::CpuIsa::Avx2); }
bool have_avx512() { return cpu::isa_enabled(cpu::CpuIsa::Avx512); }

}  // namespace

bool CpuBackend::codebook_encode(Tensor& codes, const Tensor& x, const Tensor& codebook) {
  const char* op = "codebook_encode";
  codebook_detail::check_coded_pair(op, x, codes);
  codebook_detail::check_codebook(op, codebook, x.dtype());
  return dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = codebook.numel();
    std::vector<Key<T>> keys(kPad);
    for (int64_t j = 0; j < kPad; ++j)
      keys[static_cast<size_t>(j)] = codebook_key(codebook.data<T>()[std::min(j, n - 1)]);
    const EncodeArgs<T> A{codes.data<uint8_t>(), x.data<T>(), keys.data(), n};
    auto fn = have_avx2() ? encode_avx2<T> : encode_base<T>;
    if constexpr (std::is_same_v<T, float>) {
      if (have_avx2() && n <= 32) fn = encode_f32_avx2_32;
    }
    const int64_t total = x.numel(), nblocks = (total + kBlock - 1) / kBlock;
    std::atomic<bool> ok{true};
    cpu::parallel_for(nblocks, kBlock, [&](int64_t b, int64_t e) {
      if (!fn(A, b * kBlock, std::min(total, e * kBlock))) ok.store(false, std::memory_order_relaxed);
    });
    return ok.load();
  });
}

void CpuBackend::codebook_decode(Tensor& out, const Tensor& codes, const Tensor& codebook) {
  const char* op = "codebook_decode";
  codebook_detail::check_coded_pair(op, out, codes);
  codebook_detail::check_codebook(op, codebook, out.dtype());
  dispatch_floating(out.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    alignas(64) T table[256];
    std::fill_n(table, 256, std::numeric_limits<T>::quiet_NaN());
    std::copy_n(codebook.data<T>(), codebook.numel(), table);
    T* op_ = out.data<T>();
    const uint8_t* cp = codes.data<uint8_t>();
    auto fn = have_avx2() ? decode_avx2<T> : decode_base<T>;
    if constexpr (std::is_same_v<T, float>) {
      const int64_t entries = codebook.numel();
      if (have_avx2() && entries <= 32)
        fn = have_avx512()   ? decode_f32_avx512_32
             : entries <= 16 ? decode_f32_avx2_book<16>
             : entries == 17 ? decode_f32_avx2_book<17>
                             : decode_f32_avx2_book<32>;
    }
    const int64_t total = out.numel(), nblocks = (total + kBlock - 1) / kBlock;
    cpu::parallel_for(nblocks, kBlock,
                      [&](int64_t b, int64_t e) { fn(op_, cp, table, b * kBlock, std::min(total, e * kBlock)); });
  });
}

}  // namespace minidl
