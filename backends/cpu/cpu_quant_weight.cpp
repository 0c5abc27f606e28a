// The cpu backend's signed weight quantizer (Backend::quantize_weight_forward): one pass in L1-sized blocks, each
// step its own branch-free loop over the block (the level index is the count of midpoints below |c|, then one table
// load), built for AVX-512, AVX2 and the baseline and picked at run time (MINIDL_CPU_ISA caps it). The arithmetic
// is quant_weight_math.h's, so every build equals the host reference bit for bit; this file is compiled with
// -ffp-contract=off (the AVX-512 build would otherwise contract coef's multiply + add).
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>

#include "backends/cpu/cpu_levels_avx2.h"
#endif

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_loops.h"
#include "backends/quant_weight_math.h"

namespace minidl {
namespace {

constexpr int64_t kBlock = 512;

template <typename T>
struct WeightArgs {
  T* out;
  T* coef;  // null: not wanted (with inside)
  T* inside;
  const T* w;
  T a, steps;
  const T* lv;  // null: the rounding path
  const T* mid;
  size_t nm;
};

template <typename T>
[[gnu::always_inline]] inline void weight_range(const WeightArgs<T>& A, int64_t b, int64_t e) {
  namespace qm = quant_weight_math;
  T x[kBlock], c[kBlock], q[kBlock];
  int32_t k[kBlock];
  for (int64_t s = b; s < e; s += kBlock) {
    const int64_t n = std::min(kBlock, e - s);
    const T* w = A.w + s;
    for (int64_t i = 0; i < n; ++i) x[i] = w[i] / A.a;
    for (int64_t i = 0; i < n; ++i) c[i] = qm::clamp_unit(x[i]);
    if (A.lv == nullptr) {
      for (int64_t i = 0; i < n; ++i) q[i] = qm::round_to_grid(c[i], A.steps);
    } else {
      // project_signed with the midpoint count turned inside out: one sweep over the block per midpoint
      for (int64_t i = 0; i < n; ++i) k[i] = 0;
      for (size_t j = 0; j < A.nm; ++j) {
        const T m = A.mid[j];
        for (int64_t i = 0; i < n; ++i) k[i] += static_cast<int32_t>(m < std::abs(c[i]));
      }
      for (int64_t i = 0; i < n; ++i) {
        const T sg = c[i] < T(0) ? T(-1) : (c[i] > T(0) ? T(1) : T(0));
        q[i] = sg * A.lv[k[i]];
      }
    }
    T* out = A.out + s;
    for (int64_t i = 0; i < n; ++i) out[i] = q[i] * A.a;
    if (A.coef != nullptr) {
      T* cf = A.coef + s;
      T* in = A.inside + s;
      for (int64_t i = 0; i < n; ++i) qm::weight_coef(x[i], q[i], in[i], cf[i]);
    }
  }
}

template <typename T>
[[gnu::target("avx512f,avx512bw,avx512vl,avx512dq")]] void weight_avx512(const WeightArgs<T>& A, int64_t b, int64_t e) {
  weight_range(A, b, e);
}
template <typename T>
[[gnu::target("avx2")]] void weight_avx2(const WeightArgs<T>& A, int64_t b, int64_t e) {
  weight_range(A, b, e);
}
template <typename T>
void weight_base(const WeightArgs<T>& A, int64_t b, int64_t e) {
  weight_range(A, b, e);
}

#if defined(__x86_64__)
// float32 on AVX2, written out: GCC's vectorisation of weight_range for AVX2 (a gather per level lookup, the int32
// counts widened per midpoint) ran ~3x slower than its AVX-512 build (train_step --profile, APoT W4 ResNet-20, per
// step: 1.15 ms capped at AVX2, 0.40 at AVX-512; this kernel 0.31). The same operations in the same order, 8
// weights at a time: the level of |c| by cpu_levels_avx2.h's LevelsAvx2 (the activation quantizer's: compares, a
// binary search from 8 midpoints, a table permute). Up to 16 levels; the scalar tail and larger sets take
// weight_range.
[[gnu::target("avx2")]] void weight_avx2_f32(const WeightArgs<float>& A, int64_t b, int64_t e) {
  const bool levels = A.lv != nullptr;
  const __m256 av = _mm256_set1_ps(A.a), one = _mm256_set1_ps(1.0f), minus_one = _mm256_set1_ps(-1.0f);
  const __m256 zero = _mm256_setzero_ps(), stepsv = _mm256_set1_ps(A.steps);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const float none = 0.0f;  // the rounding path has no levels: an empty table
  const cpu::LevelsAvx2 table(levels ? A.lv : &none, levels ? A.mid : nullptr, levels ? A.nm : 0);
  int64_t i = b;
  for (; i + 8 <= e; i += 8) {
    const __m256 x = _mm256_div_ps(_mm256_loadu_ps(A.w + i), av);
    // clamp_unit: t = x < -1 ? -1 : x, c = 1 < t ? 1 : t
    const __m256 t = _mm256_blendv_ps(x, minus_one, _mm256_cmp_ps(x, minus_one, _CMP_LT_OQ));
    const __m256 c = _mm256_blendv_ps(t, one, _mm256_cmp_ps(one, t, _CMP_LT_OQ));
    __m256 q;
    if (levels) {
      // project_signed: sign (c < 0 ? -1 : c > 0 ? 1 : 0) times lv[#mid below |c|]
      __m256i k;
      const __m256 lv = table(_mm256_and_ps(c, abs_mask), k);
      const __m256 sg = _mm256_blendv_ps(_mm256_and_ps(_mm256_cmp_ps(c, zero, _CMP_GT_OQ), one), minus_one,
                                         _mm256_cmp_ps(c, zero, _CMP_LT_OQ));
      q = _mm256_mul_ps(sg, lv);
    } else {
      // round_to_grid: nearbyint(c * steps) / steps
      q = _mm256_div_ps(_mm256_round_ps(_mm256_mul_ps(c, stepsv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                        stepsv);
    }
    _mm256_storeu_ps(A.out + i, _mm256_mul_ps(q, av));
    if (A.coef != nullptr) {
      // weight_coef: outside = 1[|x| > 1], inside = outside * -1 + 1, coef = sign_of(x) * outside + (q - x) * inside
      const __m256 outside = _mm256_and_ps(_mm256_cmp_ps(_mm256_and_ps(x, abs_mask), one, _CMP_GT_OQ), one);
      const __m256 inside = _mm256_add_ps(_mm256_mul_ps(outside, minus_one), one);
      // sign_of(x): 1, -1, or x itself for 0, -0 and NaN
      const __m256 sign = _mm256_blendv_ps(_mm256_blendv_ps(x, one, _mm256_cmp_ps(x, zero, _CMP_GT_OQ)), minus_one,
                                           _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
      const __m256 left = _mm256_mul_ps(sign, outside);
      const __m256 right = _mm256_mul_ps(_mm256_sub_ps(q, x), inside);
      _mm256_storeu_ps(A.inside + i, inside);
      _mm256_storeu_ps(A.coef + i, _mm256_add_ps(left, right));
    }
  }
  if (i < e) weight_range(A, i, e);
}
#endif

// t itself when contiguous, else a contiguous scratch tensor copied into t afterwards
Tensor contiguous_output(const Tensor& t) {
  if (!t.defined() || t.is_contiguous()) return t;
  return empty(t.sizes(), TensorOptions{}.dtype(t.dtype()));
}
void finish(Tensor& t, const Tensor& work) {
  if (t.defined() && work.raw_data() != t.raw_data()) cpu_backend().copy(t, work);
}

}  // namespace

void CpuBackend::quantize_weight_forward(Tensor& out, Tensor& coef, Tensor& inside, const Tensor& w,
                                         const Tensor& alpha, const Tensor& levels, double steps) {
  const char* op = "quantize_weight_forward";
  cpu::check_cpu(op, "w", w);
  cpu::check_cpu(op, "alpha", alpha);
  if (!is_floating(w.dtype())) cpu::unsupported(op, w.dtype());
  MINIDL_CHECK(alpha.numel() == 1 && alpha.dtype() == w.dtype(), op,
               " (backend cpu): alpha must be one element of w's dtype, got ", dtype_name(alpha.dtype()), " ",
               shape_str(alpha.sizes()));
  MINIDL_CHECK(coef.defined() == inside.defined(), op, " (backend cpu): give both coef and inside or neither");
  cpu::check_tensor(op, "out", out, w.dtype(), w.sizes());
  if (coef.defined()) {
    cpu::check_tensor(op, "coef", coef, w.dtype(), w.sizes());
    cpu::check_tensor(op, "inside", inside, w.dtype(), w.sizes());
  }
  if (levels.defined()) {
    cpu::check_cpu(op, "levels", levels);
    MINIDL_CHECK(levels.dim() == 1 && levels.numel() > 0 && levels.dtype() == w.dtype(), op,
                 " (backend cpu): levels must be a non-empty 1-D tensor of w's dtype");
  } else {
    MINIDL_CHECK(steps > 0.0 && std::isfinite(steps), op, " (backend cpu): the rounding path needs steps > 0, got ",
                 steps);
  }
  dispatch_floating(w.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    std::vector<T> lv, mid;
    if (levels.defined()) {
      const Tensor lc = cpu::contiguous_input(levels);
      lv.assign(lc.data<T>(), lc.data<T>() + lc.numel());
      MINIDL_CHECK(std::is_sorted(lv.begin(), lv.end()), op, " (backend cpu): levels must be sorted ascending");
      for (size_t k = 0; k + 1 < lv.size(); ++k) mid.push_back((lv[k] + lv[k + 1]) / T(2));
    }
    const Tensor wc = cpu::contiguous_input(w);
    const Tensor o = contiguous_output(out), cf = contiguous_output(coef), in = contiguous_output(inside);
    const WeightArgs<T> A{o.data<T>(),
                          cf.defined() ? cf.data<T>() : nullptr,
                          in.defined() ? in.data<T>() : nullptr,
                          wc.data<T>(),
                          static_cast<T>(cpu::contiguous_input(alpha).data<T>()[0]),
                          static_cast<T>(steps),
                          levels.defined() ? lv.data() : nullptr,
                          mid.data(),
                          mid.size()};
    void (*fn)(const WeightArgs<T>&, int64_t, int64_t) = cpu::isa_enabled(cpu::CpuIsa::Avx512) ? weight_avx512<T>
                                                         : cpu::isa_enabled(cpu::CpuIsa::Avx2) ? weight_avx2<T>
                                                                                               : weight_base<T>;
#if defined(__x86_64__)
    if constexpr (std::is_same_v<T, float>) {
      // at the avx512 level too: it ran faster than GCC's AVX-512 build of weight_range (0.31 vs 0.40 ms per
      // ResNet-20 APoT step, train_step --profile)
      if ((fn == weight_avx2<T> || fn == weight_avx512<T>)&&mid.size() + 1 <= cpu::kQuantClipAvx2MaxLevels)
        fn = weight_avx2_f32;
    }
#endif
    cpu::parallel_for(w.numel(), 16, [&](int64_t b, int64_t e) { fn(A, b, e); });
    finish(out, o);
    finish(coef, cf);
    finish(inside, in);
  });
}

}  // namespace minidl
