// The reference projection onto a sorted level set (Backend's default): binary search over midpoints, ties to
// the lower level (spec/quant.md section 1.3). Works on any host tensor layout.
#include <algorithm>
#include <cmath>

#include "backends/backend.h"

namespace minidl {

void Backend::project_to_levels(Tensor& out, const Tensor& x, const Tensor& levels, bool symmetric) {
  MINIDL_CHECK(x.device().is_cpu(), "project_to_levels: backend ", name(), " has no kernel for device ",
               x.device().str());
  MINIDL_CHECK(levels.dim() == 1 && levels.numel() > 0, "project_to_levels: levels must be a non-empty 1-D tensor, got ",
               shape_str(levels.sizes()));
  MINIDL_CHECK(out.sizes() == x.sizes(), "project_to_levels: output ", shape_str(out.sizes()), " and input ",
               shape_str(x.sizes()), " differ");
  dispatch_floating(x.dtype(), "project_to_levels", [&](auto tag) {
    using T = decltype(tag);
    const std::vector<T> lv = levels.to_vector<T>();
    MINIDL_CHECK(std::is_sorted(lv.begin(), lv.end()), "project_to_levels: levels must be sorted ascending");
    // mid[k] = midpoint between level k and k+1; x > mid[k] means x is closer to level k+1 (ties stay low).
    std::vector<T> mid(lv.size() > 1 ? lv.size() - 1 : 0);
    for (size_t k = 0; k + 1 < lv.size(); ++k) mid[k] = (lv[k] + lv[k + 1]) / T(2);
    const Tensor xc = x.contiguous();
    const std::vector<T> xv = xc.to_vector<T>();
    T* o = out.data<T>();
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) {
      T v = xv[static_cast<size_t>(i)];
      T s = T(1);
      if (symmetric) {
        s = v < T(0) ? T(-1) : (v > T(0) ? T(1) : T(0));
        v = std::abs(v);
      }
      // First midpoint >= v: the number of midpoints strictly below v is the level index.
      const size_t k = static_cast<size_t>(std::lower_bound(mid.begin(), mid.end(), v) - mid.begin());
      o[i] = symmetric ? s * lv[k] : lv[k];
    }
  });
}

}  // namespace minidl
