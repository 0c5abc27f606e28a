// Quantization kernels of the cpu backend: project_to_levels (nearest level of a sorted level set, ties to the
// lower level, optional sign-symmetric use), f32/f64, parallel over elements. The level index is the number of
// midpoints strictly below x: a branch-free count the compiler vectorises for small sets (up to 5-bit, the
// schemes' usual widths), a binary search for larger ones. Results equal the reference exactly (same midpoints).
#include <algorithm>
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_loops.h"

namespace minidl {
namespace {

constexpr size_t kLinearMax = 32;  // midpoints up to which a linear count beats a binary search

template <typename T>
void project(T* out, const T* x, int64_t n, const std::vector<T>& lv, const std::vector<T>& mid, bool symmetric) {
  const T* m = mid.data();
  const size_t nm = mid.size();
  cpu::parallel_for(n, static_cast<int64_t>(std::min(nm, kLinearMax)) + 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T v = x[i];
      T s = T(1);
      if (symmetric) {
        s = v < T(0) ? T(-1) : (v > T(0) ? T(1) : T(0));
        v = std::abs(v);
      }
      size_t k;
      if (nm <= kLinearMax) {
        k = 0;
        for (size_t j = 0; j < nm; ++j) k += m[j] < v;
      } else {
        k = static_cast<size_t>(std::lower_bound(m, m + nm, v) - m);
      }
      out[i] = symmetric ? s * lv[k] : lv[k];
    }
  });
}

}  // namespace

void CpuBackend::project_to_levels(Tensor& out, const Tensor& x, const Tensor& levels, bool symmetric) {
  const char* op = "project_to_levels";
  cpu::check_cpu(op, "x", x);
  cpu::check_cpu(op, "levels", levels);
  if (!is_floating(x.dtype())) cpu::unsupported(op, x.dtype());
  MINIDL_CHECK(levels.dim() == 1 && levels.numel() > 0, op,
               " (backend cpu): levels must be a non-empty 1-D tensor, got ", shape_str(levels.sizes()));
  MINIDL_CHECK(levels.dtype() == x.dtype(), op, " (backend cpu): levels dtype ", dtype_name(levels.dtype()),
               " differs from x dtype ", dtype_name(x.dtype()));
  cpu::check_tensor(op, "out", out, x.dtype(), x.sizes());
  MINIDL_CHECK(out.is_contiguous(), op, " (backend cpu): out must be contiguous");
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const Tensor lc = cpu::contiguous_input(levels);
    const T* lp = lc.data<T>();
    const std::vector<T> lv(lp, lp + lc.numel());
    MINIDL_CHECK(std::is_sorted(lv.begin(), lv.end()), op, " (backend cpu): levels must be sorted ascending");
    // mid[k] between level k and k+1, computed as the reference does, so ties resolve identically
    std::vector<T> mid(lv.size() - 1);
    for (size_t k = 0; k + 1 < lv.size(); ++k) mid[k] = (lv[k] + lv[k + 1]) / T(2);
    const Tensor xc = cpu::contiguous_input(x);
    project<T>(out.data<T>(), xc.data<T>(), x.numel(), lv, mid, symmetric);
  });
}

}  // namespace minidl
