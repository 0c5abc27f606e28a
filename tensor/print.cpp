// PyTorch-like printing: fixed 4 decimals (scientific when the magnitudes call for it), aligned columns, and
// "..." summaries beyond 1000 elements (3 edge items per dim). Non-default dtype, device and grad state follow.
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

#include "tensor/tensor.h"

namespace minidl {
namespace {

constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdge = 3;

struct Formatter {
  bool integral = false;  // integer dtype
  bool sci = false;
  bool int_mode = false;  // floating values that are all whole numbers print as "1."
  int width = 1;

  std::string fmt(double v) const {
    char buf[64];
    if (integral) {
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    } else if (std::isnan(v)) {
      std::snprintf(buf, sizeof buf, "nan");
    } else if (std::isinf(v)) {
      std::snprintf(buf, sizeof buf, v > 0 ? "inf" : "-inf");
    } else if (sci) {
      std::snprintf(buf, sizeof buf, "%.4e", v);
    } else if (int_mode) {
      std::snprintf(buf, sizeof buf, "%.0f.", v);
    } else {
      std::snprintf(buf, sizeof buf, "%.4f", v);
    }
    return buf;
  }
};

// Indices of a dim to print: all, or the first and last kEdge with a gap marker (-1) between.
std::vector<int64_t> shown(int64_t n, bool summarize) {
  std::vector<int64_t> idx;
  if (!summarize || n <= 2 * kEdge) {
    for (int64_t i = 0; i < n; ++i) idx.push_back(i);
  } else {
    for (int64_t i = 0; i < kEdge; ++i) idx.push_back(i);
    idx.push_back(-1);
    for (int64_t i = n - kEdge; i < n; ++i) idx.push_back(i);
  }
  return idx;
}

void print_rec(std::ostream& os, const std::vector<double>& v, const Shape& sizes, const Shape& strides,
               size_t d, int64_t base, const Formatter& f, bool summarize, int indent) {
  os << '[';
  const auto idx = shown(sizes[d], summarize);
  for (size_t k = 0; k < idx.size(); ++k) {
    if (k) {
      if (d + 1 == sizes.size()) {
        os << ", ";
      } else {
        os << ',' << std::string(sizes.size() - d - 1, '\n') << std::string(indent + 1, ' ');
      }
    }
    if (idx[k] < 0) {
      os << "...";
      continue;
    }
    const int64_t off = base + idx[k] * strides[d];
    if (d + 1 == sizes.size()) {
      std::string s = f.fmt(v[static_cast<size_t>(off)]);
      os << std::string(static_cast<size_t>(std::max<int>(0, f.width - static_cast<int>(s.size()))), ' ') << s;
    } else {
      print_rec(os, v, sizes, strides, d + 1, off, f, summarize, indent + 1);
    }
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  const std::vector<double> v = t.to_vector<double>();
  Formatter f;
  f.integral = !is_floating(t.dtype());
  if (!f.integral) {
    double amax = 0, amin = INFINITY;
    bool all_int = true;
    for (double x : v) {
      if (!std::isfinite(x)) continue;
      amax = std::max(amax, std::abs(x));
      if (x != 0) amin = std::min(amin, std::abs(x));
      if (x != std::nearbyint(x)) all_int = false;
    }
    f.int_mode = all_int && amax < 1e8;
    f.sci = !f.int_mode && (amax >= 1e8 || (amin < 1e-4 && amin > 0) || (amin < INFINITY && amax / amin > 1000));
  }
  const bool summarize = t.numel() > kThreshold;
  for (double x : v) f.width = std::max(f.width, static_cast<int>(f.fmt(x).size()));

  os << "tensor(";
  if (t.dim() == 0) {
    os << f.fmt(v.empty() ? 0.0 : v[0]);
  } else if (t.numel() == 0) {
    os << "[]";
  } else {
    print_rec(os, v, t.sizes(), contiguous_strides(t.sizes()), 0, 0, f, summarize, 7);
  }
  if (t.numel() == 0 && t.dim() > 0) os << ", size=" << shape_str(t.sizes());
  if (t.dtype() != DType::f32 && t.dtype() != DType::i64) os << ", dtype=" << dtype_name(t.dtype());
  if (!t.device().is_cpu()) os << ", device='" << t.device().str() << "'";
  if (t.grad_fn()) {
    os << ", grad_fn=<" << "Node>";
  } else if (t.requires_grad()) {
    os << ", requires_grad=True";
  }
  return os << ')';
}

std::string to_string(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

}  // namespace minidl
