// The cpu backend's signed weight quantizer (Backend::quantize_weight_forward): one pass in L1-sized blocks, each
// step its own branch-free loop over the block (the level index is the count of midpoints below |c|, then one table
// load), built for AVX-512, AVX2 and the baseline and picked at run time (MINIDL_CPU_ISA caps it). The arithmetic
// is quant_weight_math.h's, so every build equals the host reference bit for bit; this file is compiled with
// -ffp-contract=off (the AVX-512 build would otherwise contract coef's multiply + add).
#include <algorithm>
#include <cmath>
#include <vector>

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
    cpu::parallel_for(w.numel(), 16, [&](int64_t b, int64_t e) { fn(A, b, e); });
    finish(out, o);
    finish(coef, cf);
    finish(inside, in);
  });
}

}  // namespace minidl
