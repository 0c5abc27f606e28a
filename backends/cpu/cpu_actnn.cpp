// The cpu backend's ActNN codec (actnn_quantize / actnn_dequantize) and 1-bit mask packing: the definitions of
// backends/actnn_codec.h, parallel over groups (OpenMP; over samples for channels-last tensors, coded in place
// by cpu_actnn_nhwc_avx2.cpp on AVX2 hosts where the geometry allows, else each transposed into the codec's
// logical order), each group in 256-element chunks. The chunks of the
// codec go through the hand-written kernels of cpu_actnn_avx512.cpp on AVX-512 hosts and of cpu_actnn_avx2.cpp on
// AVX2 ones (the mask kernels are AVX2 on both); the baseline build runs the generic loops here. cpu_isa.h picks at run
// time (MINIDL_CPU_ISA caps it). No variant uses FMA and the min/max reductions are exact, so every variant writes the
// reference's bytes (the conformance rows check it at each level the host runs). f64 inputs take the reference path.
#include <algorithm>
#include <cstring>
#include <optional>
#include <type_traits>

#include "backends/cpu/cpu_actnn_avx2.h"
#include "backends/cpu/cpu_actnn_avx512.h"
#include "backends/cpu/cpu_actnn_nhwc_avx2.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_loops.h"

namespace minidl {
namespace {

constexpr int64_t kChunk = 256;  // elements per inner block (a multiple of 8)

struct QArgs {
  const float* x;
  int64_t f, fp, group, ng;
  bool per_group, bf16;
  float gmn, gmx;
  uint64_t key;
  const int64_t* off;
  const uint8_t* bits;
  uint8_t* codes;
  uint8_t* meta;
  // row_ld > 0: x holds just the sample being coded (a channels-last sample's transposed copy), as rows of `row`
  // elements row_ld apart
  int64_t row = 0, row_ld = 0;
};

// Where element j of sample n starts. In a transposed sample padded rows (row_ld > row, see PlaneBuffer) hold
// whole groups, so a group never spans two of them.
template <class Args>
[[gnu::always_inline]] inline int64_t sample_offset(const Args& A, int64_t n, int64_t j) {
  return A.row_ld > 0 ? j / A.row * A.row_ld + j % A.row : n * A.f + j;
}

// Packs m codes (m a multiple of 8) at BITS bits; the constant width lets the compiler unroll the shifts.
template <int BITS>
[[gnu::always_inline]] inline void pack_fixed(uint8_t* dst, const uint32_t* q, int64_t m) {
  for (int64_t i = 0; i < m; i += 8) {
    uint64_t w = 0;
    for (int k = 0; k < 8; ++k) w |= static_cast<uint64_t>(q[i + k]) << (k * BITS);
    std::memcpy(dst + i / 8 * BITS, &w, BITS);  // little-endian host
  }
}
template <int BITS>
[[gnu::always_inline]] inline void unpack_fixed(uint32_t* q, const uint8_t* src, int64_t m) {
  constexpr uint64_t mask = (uint64_t{1} << BITS) - 1;
  for (int64_t i = 0; i < m; i += 8) {
    uint64_t w = 0;
    std::memcpy(&w, src + i / 8 * BITS, BITS);
    for (int k = 0; k < 8; ++k) q[i + k] = static_cast<uint32_t>((w >> (k * BITS)) & mask);
  }
}

[[gnu::always_inline]] inline void pack_any(uint8_t* dst, const uint32_t* q, int64_t m, int bits) {
  switch (bits) {
    case 1: return pack_fixed<1>(dst, q, m);
    case 2: return pack_fixed<2>(dst, q, m);
    case 3: return pack_fixed<3>(dst, q, m);
    case 4: return pack_fixed<4>(dst, q, m);
    case 5: return pack_fixed<5>(dst, q, m);
    case 6: return pack_fixed<6>(dst, q, m);
    case 7: return pack_fixed<7>(dst, q, m);
    default: return pack_fixed<8>(dst, q, m);
  }
}
[[gnu::always_inline]] inline void unpack_any(uint32_t* q, const uint8_t* src, int64_t m, int bits) {
  switch (bits) {
    case 1: return unpack_fixed<1>(q, src, m);
    case 2: return unpack_fixed<2>(q, src, m);
    case 3: return unpack_fixed<3>(q, src, m);
    case 4: return unpack_fixed<4>(q, src, m);
    case 5: return unpack_fixed<5>(q, src, m);
    case 6: return unpack_fixed<6>(q, src, m);
    case 7: return unpack_fixed<7>(q, src, m);
    default: return unpack_fixed<8>(q, src, m);
  }
}

// The simd min / max reductions find the extreme values but not always the element ref's left-to-right fold
// returns: the fold keeps a leading NaN (it compares false against everything), and of equal values the first
// one, which matters for -0.0 vs 0.0 (the sign reaches the metadata). Fixes (mn, mx) of x[0 .. n) up to that.
[[gnu::always_inline]] inline void match_ref_fold(const float* x, int64_t n, float& mn, float& mx) {
  if (n == 0) return;
  if (x[0] != x[0]) {
    mn = mx = x[0];
    return;
  }
  if (mn == 0.0f || mx == 0.0f) {
    float first_zero = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      if (x[j] == 0.0f) {
        first_zero = x[j];
        break;
      }
    }
    if (mn == 0.0f) mn = first_zero;
    if (mx == 0.0f) mx = first_zero;
  }
}

// Which kernel the chunks of a group go through: the generic loops below, or the hand-written kernels of
// cpu_actnn_avx2.cpp / cpu_actnn_avx512.cpp (the caller checked the host runs that ISA).
enum class Chunks { Generic, Avx2, Avx512 };

// Groups [g0, g1) (global group index = sample * ng + group) of the quantization.
template <Chunks K>
[[gnu::always_inline]] inline void quant_groups(const QArgs& A, int64_t g0, int64_t g1) {
  alignas(64) uint32_t q[kChunk];
  for (int64_t gi = g0; gi < g1; ++gi) {
    const int64_t n = gi / A.ng, g = gi % A.ng;
    const int bits = A.bits[n];
    const int64_t j0 = g * A.group;
    const int64_t valid = std::max<int64_t>(0, std::min(A.group, A.f - j0));  // real elements in this group
    const float* xg = A.x + sample_offset(A, n, j0);
    float mn = A.gmn, mx = A.gmx;
    if (A.per_group) {
      mn = valid > 0 ? xg[0] : 0.0f;
      mx = mn;
#pragma omp simd reduction(min : mn) reduction(max : mx)
      for (int64_t j = 0; j < valid; ++j) {
        mn = xg[j] < mn ? xg[j] : mn;
        mx = xg[j] > mx ? xg[j] : mx;
      }
      match_ref_fold(xg, valid, mn, mx);
      if (valid < A.group) {  // padding zeros take part in the range
        mn = std::min(mn, 0.0f);
        mx = std::max(mx, 0.0f);
      }
    }
    float lo, hi;
    actnn_range(mn, mx, A.bf16, lo, hi);
    actnn_store_meta(A.meta, gi, A.bf16, lo, hi);
    const float s = actnn_scale(lo, hi, bits);
    const float B = static_cast<float>((1 << bits) - 1);
    uint8_t* dst = A.codes + A.off[n] + j0 / 8 * bits;
    for (int64_t c = 0; c < A.group; c += kChunk) {
      const int64_t m = std::min(kChunk, A.group - c);
      const int64_t mv = std::max<int64_t>(0, std::min(m, valid - c));
      const uint64_t e0 = static_cast<uint64_t>(n * A.fp + j0 + c);
      const float* xc = xg + c;
      if ((e0 >> 32) == ((e0 + static_cast<uint64_t>(m) - 1) >> 32)) {
        const uint64_t k = actnn_chunk_key(A.key, e0);
        const uint32_t klo = static_cast<uint32_t>(k), khi = static_cast<uint32_t>(k >> 32);
        const uint32_t e0lo = static_cast<uint32_t>(e0);
        if constexpr (K == Chunks::Avx512) {
          cpu::actnn_quant_chunk_avx512(dst + c / 8 * bits, xc, m, mv, lo, s, bits, e0lo, klo, khi);
          continue;
        } else if constexpr (K == Chunks::Avx2) {
          cpu::actnn_quant_chunk_avx2(dst + c / 8 * bits, xc, m, mv, lo, s, bits, e0lo, klo, khi);
          continue;
        }
        for (int64_t i = 0; i < mv; ++i) {
          uint32_t h = actnn_lowbias32((e0lo + static_cast<uint32_t>(i)) ^ klo);
          h = actnn_lowbias32(h ^ khi);
          const float r = static_cast<float>(h >> 8) * 0x1p-24f;
          const float t = (xc[i] - lo) * s + r;
          const float tc = t < B ? t : B;  // clamp first: the conversion is then defined and branch-free
          q[i] = static_cast<uint32_t>(static_cast<int32_t>(tc));
        }
      } else {  // a chunk across a 2^32 element boundary: the key changes inside it
        for (int64_t i = 0; i < mv; ++i)
          q[i] = actnn_code(xc[i], lo, s, actnn_uniform(A.key, e0 + static_cast<uint64_t>(i)), bits);
      }
      for (int64_t i = mv; i < m; ++i) q[i] = 0;  // padding codes are 0
      pack_any(dst + c / 8 * bits, q, m, bits);
    }
  }
}

struct DArgs {
  float* out;
  int64_t f, group, ng;
  bool bf16;
  const int64_t* off;
  const uint8_t* bits;
  const uint8_t* codes;
  const uint8_t* meta;
  int64_t row = 0, row_ld = 0;  // as QArgs
};

template <Chunks K>
[[gnu::always_inline]] inline void dequant_groups(const DArgs& A, int64_t g0, int64_t g1) {
  alignas(64) uint32_t q[kChunk];
  for (int64_t gi = g0; gi < g1; ++gi) {
    const int64_t n = gi / A.ng, g = gi % A.ng;
    const int bits = A.bits[n];
    const int64_t j0 = g * A.group;
    const int64_t valid = std::max<int64_t>(0, std::min(A.group, A.f - j0));
    float lo, hi;
    actnn_load_meta(A.meta, gi, A.bf16, lo, hi);
    const float step = actnn_step(lo, hi, bits);
    const uint8_t* src = A.codes + A.off[n] + j0 / 8 * bits;
    float* o = A.out + sample_offset(A, n, j0);
    for (int64_t c = 0; c < valid; c += kChunk) {
      const int64_t m = std::min(kChunk, A.group - c);
      const int64_t mv = std::min(m, valid - c);
      if constexpr (K == Chunks::Avx512) {
        cpu::actnn_dequant_chunk_avx512(o + c, src + c / 8 * bits, m, mv, lo, step, bits);
        continue;
      } else if constexpr (K == Chunks::Avx2) {
        cpu::actnn_dequant_chunk_avx2(o + c, src + c / 8 * bits, mv, lo, step, bits);
        continue;
      }
      unpack_any(q, src + c / 8 * bits, m, bits);
      for (int64_t i = 0; i < mv; ++i) o[c + i] = lo + static_cast<float>(q[i]) * step;
    }
  }
}

// The group loops are built for each ISA too (the range's min / max reductions vectorise to its width). This file
// is compiled with -ffp-contract=off, so the AVX-512 build (AVX-512F has FMA) keeps the generic path's separate
// multiply and add for a chunk that crosses a 2^32-element boundary.
void quant_base(const QArgs& A, int64_t b, int64_t e) { quant_groups<Chunks::Generic>(A, b, e); }
[[gnu::target("avx2")]] void quant_avx2(const QArgs& A, int64_t b, int64_t e) { quant_groups<Chunks::Avx2>(A, b, e); }
[[gnu::target("avx512f,avx512bw,avx512vl,avx512dq")]] void quant_avx512(const QArgs& A, int64_t b, int64_t e) {
  quant_groups<Chunks::Avx512>(A, b, e);
}
void dequant_base(const DArgs& A, int64_t b, int64_t e) { dequant_groups<Chunks::Generic>(A, b, e); }
[[gnu::target("avx2")]] void dequant_avx2(const DArgs& A, int64_t b, int64_t e) {
  dequant_groups<Chunks::Avx2>(A, b, e);
}
[[gnu::target("avx512f,avx512bw,avx512vl,avx512dq")]] void dequant_avx512(const DArgs& A, int64_t b, int64_t e) {
  dequant_groups<Chunks::Avx512>(A, b, e);
}

bool dense(const Tensor& t) { return t.is_contiguous() || t.is_channels_last(); }

// The group loop built for the highest ISA level enabled on this host (MINIDL_CPU_ISA caps it).
template <class Args>
using GroupLoop = void (*)(const Args&, int64_t, int64_t);
template <class Args>
GroupLoop<Args> for_host_isa(GroupLoop<Args> base, GroupLoop<Args> avx2, GroupLoop<Args> avx512) {
  if (cpu::isa_enabled(cpu::CpuIsa::Avx512)) return avx512;
  return cpu::isa_enabled(cpu::CpuIsa::Avx2) ? avx2 : base;
}

// A tensor whose memory order is not its logical order (channels-last and not also contiguous): the codec reads
// each sample through a transpose (actnn_codec.h, "Element order").
bool transposed(const Tensor& t) { return t.memory_format() == MemoryFormat::ChannelsLast; }

// One channels-last sample (p pixels of c channels) in the codec's logical order: c rows of p elements. When
// a row holds whole groups the rows are stored 16 floats further apart than p: plane sizes are powers of two
// (32x32, 16x16), and rows exactly 4 KiB apart would send every store of the transpose to the same cache set.
struct PlaneBuffer {
  int64_t c, p, ld;
  std::vector<float> buf;
  PlaneBuffer(int64_t channels, int64_t pixels, int64_t group)
      : c(channels), p(pixels), ld(pixels % group == 0 ? pixels + 16 : pixels), buf(static_cast<size_t>(c * ld)) {}
  void load(const float* nhwc) {
    if (cpu::isa_enabled(cpu::CpuIsa::Avx2)) return cpu::transpose_f32_avx2(nhwc, p, c, c, buf.data(), ld);
    actnn_transpose(nhwc, p, c, c, buf.data(), ld);
  }
  void store(float* nhwc) const {
    if (cpu::isa_enabled(cpu::CpuIsa::Avx2)) return cpu::transpose_f32_avx2(buf.data(), c, p, ld, nhwc, c);
    actnn_transpose(buf.data(), c, p, ld, nhwc, c);
  }
  /// A's arguments with the data of the sample being coded (the member `data`: x or out) in this buffer.
  template <class Args, class Ptr>
  Args on(const Args& A, Ptr Args::*data) {
    Args a = A;
    a.*data = buf.data();
    a.row = p;
    a.row_ld = ld;
    return a;
  }
};

// Runs `loop` over every group of the codec c on tensor t: over all groups at once when t is in logical order,
// else sample by sample through a per-thread PlaneBuffer, `through(plane, s, code)` moving sample s in or out
// around code(args) (work: a rough cost per element for the thread split).
template <class Args, class Through>
void for_each_group(const Args& A, const Tensor& t, const ActnnCodec& c, int64_t work, GroupLoop<Args> loop,
                    Through through) {
  const int64_t ng = c.groups_per_sample();
  if (!transposed(t)) {
    cpu::parallel_for(c.n * ng, c.group * work, [&](int64_t b, int64_t e) { loop(A, b, e); });
    return;
  }
  cpu::parallel_for(c.n, c.f * work, [&](int64_t b, int64_t e) {
    PlaneBuffer plane(t.size(1), c.f / t.size(1), c.group);
    for (int64_t s = b; s < e; ++s) through(plane, s, [&](const Args& a) { loop(a, s * ng, (s + 1) * ng); });
  });
}

// The codec's arguments for the in-place channels-last kernels (cpu_actnn_nhwc_avx2.h) when they take tensor t:
// on AVX2 hosts (AVX-512 ones keep the transpose around their own chunk kernels), planes that groups cut only at
// multiples of 16 pixels (actnn_nhwc_direct_fits), and every stream position below 2^32 (one chunk key). Else
// nullopt: the transposing path.
std::optional<cpu::ActnnNhwc> in_place_nhwc(const Tensor& t, const ActnnCodec& c, const std::vector<int64_t>& off) {
  if (!transposed(t) || t.dim() != 4 || !c.per_group || !cpu::isa_enabled(cpu::CpuIsa::Avx2) ||
      cpu::isa_enabled(cpu::CpuIsa::Avx512))
    return std::nullopt;
  const int64_t channels = t.size(1), pixels = t.size(2) * t.size(3);
  if (!cpu::actnn_nhwc_direct_fits(channels, pixels, c.group) || c.n * c.padded() > (int64_t{1} << 32))
    return std::nullopt;
  cpu::ActnnNhwc a;
  a.channels = channels;
  a.pixels = pixels;
  a.group = c.group;
  a.bf16 = c.bf16_meta;
  a.off = off.data();
  a.bits = c.bits.data();
  const uint64_t k = actnn_chunk_key(c.key, 0);
  a.klo = static_cast<uint32_t>(k);
  a.khi = static_cast<uint32_t>(k >> 32);
  return a;
}

// ref's fold keeps the first zero in logical order (its sign reaches the metadata): of a channels-last x whose
// simd min or max is a zero, find that zero's sign by walking the logical order.
void match_ref_fold_logical(const float* x, int64_t n, int64_t c, int64_t p, float& mn, float& mx) {
  if (n * c * p == 0 || x[0] != x[0] || (mn != 0.0f && mx != 0.0f)) return match_ref_fold(x, n * c * p, mn, mx);
  float first_zero = 0.0f;
  bool found = false;
  for (int64_t s = 0; s < n && !found; ++s)
    for (int64_t k = 0; k < c && !found; ++k)
      for (int64_t i = 0; i < p && !found; ++i) {
        const float v = x[(s * p + i) * c + k];
        if (v == 0.0f) {
          first_zero = v;
          found = true;
        }
      }
  if (mn == 0.0f) mn = first_zero;
  if (mx == 0.0f) mx = first_zero;
}

}  // namespace

void CpuBackend::actnn_quantize(Tensor& codes, Tensor& meta, const Tensor& x, const ActnnCodec& c) {
  if (x.dtype() != DType::f32 || !dense(x) || !codes.is_contiguous() || !meta.is_contiguous() ||
      codes.dtype() != DType::u8 || meta.dtype() != DType::u8) {
    Backend::actnn_quantize(codes, meta, x, c);  // f64 and malformed calls: the reference (and its errors)
    return;
  }
  const char* op = "actnn_quantize";
  cpu::check_cpu(op, "x", x);
  c.validate(op);
  const int64_t n = x.dim() == 0 ? 1 : x.size(0);
  MINIDL_CHECK(n == c.n && n * c.f == x.numel(), op, ": tensor ", shape_str(x.sizes()), " is not ", c.n, " samples of ",
               c.f, " elements");
  MINIDL_CHECK(codes.numel() == c.code_bytes() && meta.numel() == c.meta_bytes(), op,
               ": codes / meta have the wrong size for this codec");
  const std::vector<int64_t> off = c.sample_offsets();
  QArgs A{x.data<float>(),
          c.f,
          c.padded(),
          c.group,
          c.groups_per_sample(),
          c.per_group,
          c.bf16_meta,
          0.0f,
          0.0f,
          c.key,
          off.data(),
          c.bits.data(),
          codes.data<uint8_t>(),
          meta.data<uint8_t>()};
  if (!c.per_group) {  // one range over the whole padded tensor (exact, so any split gives the same)
    const int64_t total = x.numel();
    float mn = total > 0 ? A.x[0] : 0.0f, mx = mn;
#pragma omp parallel for simd reduction(min : mn) reduction(max : mx) if (total > (1 << 16))
    for (int64_t i = 0; i < total; ++i) {
      mn = A.x[i] < mn ? A.x[i] : mn;
      mx = A.x[i] > mx ? A.x[i] : mx;
    }
    if (transposed(x)) {
      match_ref_fold_logical(A.x, c.n, x.size(1), c.f / x.size(1), mn, mx);
    } else {
      match_ref_fold(A.x, total, mn, mx);
    }
    if (c.padded() > c.f) {
      mn = std::min(mn, 0.0f);
      mx = std::max(mx, 0.0f);
    }
    A.gmn = mn;
    A.gmx = mx;
  }
  if (const auto a = in_place_nhwc(x, c, off)) {
    cpu::parallel_for(c.n, c.f * 8,
                      [&](int64_t b, int64_t e) { cpu::actnn_quant_nhwc_avx2(A.codes, A.meta, A.x, *a, b, e); });
    return;
  }
  // A channels-last sample is transposed into the buffer first (it stays in cache for the groups' two passes).
  for_each_group(A, x, c, 8, for_host_isa<QArgs>(quant_base, quant_avx2, quant_avx512),
                 [&](PlaneBuffer& plane, int64_t s, const auto& code) {
                   plane.load(A.x + s * c.f);
                   code(plane.on(A, &QArgs::x));
                 });
}

void CpuBackend::actnn_dequantize(Tensor& out, const Tensor& codes, const Tensor& meta, const ActnnCodec& c) {
  if (out.dtype() != DType::f32 || !dense(out) || !codes.is_contiguous() || !meta.is_contiguous() ||
      codes.dtype() != DType::u8 || meta.dtype() != DType::u8) {
    Backend::actnn_dequantize(out, codes, meta, c);
    return;
  }
  const char* op = "actnn_dequantize";
  cpu::check_cpu(op, "out", out);
  c.validate(op);
  const int64_t n = out.dim() == 0 ? 1 : out.size(0);
  MINIDL_CHECK(n == c.n && n * c.f == out.numel(), op, ": tensor ", shape_str(out.sizes()), " is not ", c.n,
               " samples of ", c.f, " elements");
  MINIDL_CHECK(codes.numel() == c.code_bytes() && meta.numel() == c.meta_bytes(), op,
               ": codes / meta have the wrong size for this codec");
  const std::vector<int64_t> off = c.sample_offsets();
  DArgs A{out.data<float>(),   c.f,        c.group,       c.groups_per_sample(),
          c.bf16_meta,         off.data(), c.bits.data(), codes.data<uint8_t>(),
          meta.data<uint8_t>()};
  if (const auto a = in_place_nhwc(out, c, off)) {
    cpu::parallel_for(c.n, c.f * 2,
                      [&](int64_t b, int64_t e) { cpu::actnn_dequant_nhwc_avx2(A.out, A.codes, A.meta, *a, b, e); });
    return;
  }
  // A channels-last sample is decoded into the buffer and transposed into place.
  for_each_group(A, out, c, 2, for_host_isa<DArgs>(dequant_base, dequant_avx2, dequant_avx512),
                 [&](PlaneBuffer& plane, int64_t s, const auto& code) {
                   code(plane.on(A, &DArgs::out));
                   plane.store(A.out + s * c.f);
                 });
}

namespace {

template <typename T>
void pack_bits_range(uint8_t* bp, const T* xp, int64_t n, int64_t b, int64_t e) {
  for (int64_t i = b; i < e; ++i) {
    uint8_t v = 0;
    const int64_t lim = std::min<int64_t>(8, n - i * 8);
    for (int64_t k = 0; k < lim; ++k) v = static_cast<uint8_t>(v | ((xp[i * 8 + k] != T(0)) << k));
    bp[i] = v;
  }
}

template <typename T>
void pack_bits_kernel(uint8_t* bp, const T* xp, int64_t n) {
  const bool avx2 = cpu::isa_enabled(cpu::CpuIsa::Avx2);
  cpu::parallel_for((n + 7) / 8, 8, [&](int64_t b, int64_t e) {
    const int64_t full_end = std::min(e, n / 8);  // bytes whose 8 elements all exist
    if (avx2 && b < full_end) {
      if constexpr (std::is_same_v<T, float>) {
        cpu::pack_mask_f32_avx2(bp, xp, b, full_end);
      } else {
        cpu::pack_mask_u8_avx2(bp, xp, b, full_end);
      }
      b = full_end;
    }
    pack_bits_range(bp, xp, n, b, e);
  });
}

template <typename T>
void unpack_bits_kernel(T* o, const uint8_t* bp, int64_t n) {
  const bool avx2 = std::is_same_v<T, float> && cpu::isa_enabled(cpu::CpuIsa::Avx2);
  cpu::parallel_for((n + 7) / 8, 8, [&](int64_t b, int64_t e) {
    const int64_t full_end = std::min(e, n / 8);
    if constexpr (std::is_same_v<T, float>) {
      if (avx2 && b < full_end) {
        cpu::unpack_mask_f32_avx2(o, bp, b, full_end);
        b = full_end;
      }
    }
    for (int64_t i = b; i < e; ++i) {
      const int64_t lim = std::min<int64_t>(8, n - i * 8);
      for (int64_t k = 0; k < lim; ++k) o[i * 8 + k] = static_cast<T>((bp[i] >> k) & 1u);
    }
  });
}

// f32 activations (ReLU outputs, dropout masks) and u8 masks (the quantizers' STE masks) take the parallel loops.
bool fast_mask_dtype(DType d) { return d == DType::f32 || d == DType::u8; }

}  // namespace

void CpuBackend::pack_mask_bits(Tensor& bits, const Tensor& x) {
  if (!fast_mask_dtype(x.dtype()) || !dense(x) || bits.dtype() != DType::u8 || !bits.is_contiguous() ||
      bits.numel() != (x.numel() + 7) / 8) {
    Backend::pack_mask_bits(bits, x);
    return;
  }
  cpu::check_cpu("pack_mask_bits", "x", x);
  if (x.dtype() == DType::f32) {
    pack_bits_kernel(bits.data<uint8_t>(), x.data<float>(), x.numel());
  } else {
    pack_bits_kernel(bits.data<uint8_t>(), x.data<uint8_t>(), x.numel());
  }
}

void CpuBackend::unpack_mask_bits(Tensor& out, const Tensor& bits) {
  if (!fast_mask_dtype(out.dtype()) || !dense(out) || bits.dtype() != DType::u8 || !bits.is_contiguous() ||
      bits.numel() != (out.numel() + 7) / 8) {
    Backend::unpack_mask_bits(out, bits);
    return;
  }
  cpu::check_cpu("unpack_mask_bits", "out", out);
  if (out.dtype() == DType::f32) {
    unpack_bits_kernel(out.data<float>(), bits.data<uint8_t>(), out.numel());
  } else {
    unpack_bits_kernel(out.data<uint8_t>(), bits.data<uint8_t>(), out.numel());
  }
}

void CpuBackend::mask_from_bits_(Tensor& g, const Tensor& bits) {
  if (g.dtype() != DType::f32 || !dense(g) || bits.dtype() != DType::u8 || !bits.is_contiguous() ||
      bits.numel() != (g.numel() + 7) / 8) {
    Backend::mask_from_bits_(g, bits);  // other dtypes and malformed calls: the reference (and its errors)
    return;
  }
  cpu::check_cpu("mask_from_bits_", "g", g);
  float* gp = g.data<float>();
  const uint8_t* bp = bits.data<uint8_t>();
  const int64_t n = g.numel();
  const bool avx2 = cpu::isa_enabled(cpu::CpuIsa::Avx2);
  cpu::parallel_for((n + 7) / 8, 16, [&](int64_t b, int64_t e) {
    const int64_t full_end = std::min(e, n / 8);
    if (avx2 && b < full_end) {
      cpu::mask_from_bits_f32_avx2(gp, bp, b, full_end);
      b = full_end;
    }
    for (int64_t i = b; i < e; ++i) {
      const int64_t lim = std::min<int64_t>(8, n - i * 8);
      for (int64_t k = 0; k < lim; ++k)
        if (!((bp[i] >> k) & 1u)) gp[i * 8 + k] = 0.0f;  // ReluBackward's +0 where the mask is clear
    }
  });
}

}  // namespace minidl
