// The reference code-book coding (Backend's default codebook_encode / codebook_decode): one element at a time on
// host memory, from the definitions in backend.h / codebook.h.
#include "backends/codebook.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/backend.h"

namespace minidl {
namespace codebook_detail {

void check_codebook(const char* op, const Tensor& codebook, DType dt) {
  MINIDL_CHECK(codebook.defined() && codebook.device().is_cpu(), op, ": the code book must be a host tensor");
  MINIDL_CHECK(codebook.dim() == 1 && codebook.is_contiguous() && codebook.dtype() == dt && codebook.numel() >= 1 &&
                   codebook.numel() <= 256,
               op, ": the code book must be a contiguous 1-D ", dtype_name(dt), " tensor of 1..256 entries, got ",
               dtype_name(codebook.dtype()), " ", shape_str(codebook.sizes()));
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    const T* c = codebook.data<T>();
    for (int64_t j = 1; j < codebook.numel(); ++j) {
      MINIDL_CHECK(codebook_key(c[j - 1]) < codebook_key(c[j]), op,
                   ": code book entries must be strictly ascending in IEEE total order (entry ", j - 1, " = ", c[j - 1],
                   ", entry ", j, " = ", c[j], ")");
    }
  });
}

void check_coded_pair(const char* op, const Tensor& values, const Tensor& codes) {
  MINIDL_CHECK(values.defined() && codes.defined(), op, ": values and codes must be defined");
  MINIDL_CHECK(values.device().is_cpu() && codes.device().is_cpu(), op, ": values and codes must be host tensors, got ",
               values.device().str(), " and ", codes.device().str());
  MINIDL_CHECK(is_floating(values.dtype()), op, ": values must be float32 or float64, got ",
               dtype_name(values.dtype()));
  MINIDL_CHECK(codes.dtype() == DType::u8, op, ": codes must be u8, got ", dtype_name(codes.dtype()));
  MINIDL_CHECK(values.sizes() == codes.sizes(), op, ": values ", shape_str(values.sizes()), " and codes ",
               shape_str(codes.sizes()), " differ in shape");
  MINIDL_CHECK(values.is_contiguous() || values.is_channels_last(), op, ": values ", shape_str(values.sizes()),
               " must be dense (contiguous or channels-last)");
  bool same = true;
  for (size_t d = 0; d < values.sizes().size(); ++d) {
    if (values.sizes()[d] != 1 && values.strides()[d] != codes.strides()[d]) same = false;
  }
  MINIDL_CHECK(same, op, ": values and codes must share one layout (strides ", shape_str(values.strides()), " vs ",
               shape_str(codes.strides()), ")");
}

}  // namespace codebook_detail

Tensor quantize_clip_codebook(const Tensor& alpha, const Tensor& levels, double steps) {
  const char* op = "quantize_clip_codebook";
  MINIDL_CHECK(alpha.defined() && alpha.numel() == 1 && is_floating(alpha.dtype()), op,
               ": alpha must be one floating element");
  return dispatch_floating(alpha.dtype(), op, [&](auto tag) -> Tensor {
    using T = decltype(tag);
    const T a = static_cast<T>(alpha.item<double>());
    std::vector<T> v;
    if (levels.defined()) {
      MINIDL_CHECK(levels.dim() == 1 && levels.dtype() == alpha.dtype(), op, ": levels must be 1-D of alpha's dtype");
      for (const T l : levels.to_vector<T>()) v.push_back(l * a);
    } else {
      if (!(steps >= 1.0 && steps <= 254.0 && steps == std::floor(steps))) return {};
      const T s = static_cast<T>(steps);
      v.push_back((-T(0) / s) * a);
      for (int64_t j = 0; j <= static_cast<int64_t>(steps); ++j) v.push_back((static_cast<T>(j) / s) * a);
    }
    if (v.empty() || v.size() > 256) return {};
    for (size_t j = 1; j < v.size(); ++j) {
      if (!(codebook_key(v[j - 1]) < codebook_key(v[j]))) return {};
    }
    Tensor cb = empty({static_cast<int64_t>(v.size())}, TensorOptions{}.dtype(alpha.dtype()));
    std::copy(v.begin(), v.end(), cb.data<T>());
    return cb;
  });
}

Tensor pact_forward_codebook(const Tensor& alpha, double k) {
  const char* op = "pact_forward_codebook";
  MINIDL_CHECK(alpha.defined() && alpha.numel() == 1 && is_floating(alpha.dtype()), op,
               ": alpha must be one floating element");
  if (!(k >= 1.0 && k <= 254.0 && k == std::floor(k))) return {};
  return dispatch_floating(alpha.dtype(), op, [&](auto tag) -> Tensor {
    using T = decltype(tag);
    const T a = static_cast<T>(alpha.item<double>()), tk = static_cast<T>(k);
    std::vector<T> v{-T(0) * a / tk};
    for (int64_t t = 0; t <= static_cast<int64_t>(k); ++t) v.push_back(static_cast<T>(t) * a / tk);
    for (size_t j = 1; j < v.size(); ++j) {
      if (!(codebook_key(v[j - 1]) < codebook_key(v[j]))) return {};
    }
    Tensor cb = empty({static_cast<int64_t>(v.size())}, TensorOptions{}.dtype(alpha.dtype()));
    std::copy(v.begin(), v.end(), cb.data<T>());
    return cb;
  });
}

bool Backend::pact_forward_coded(Tensor& out, Tensor& codes, const Tensor& x, const Tensor& alpha, double k) {
  Tensor no_mask, no_coef;
  pact_forward(out, no_mask, no_coef, x, alpha, k);
  const Tensor book = pact_forward_codebook(alpha.device().is_cpu() ? alpha : alpha.to(kCPU), k);
  return book.defined() && codebook_encode(codes, out, book);
}

bool Backend::quantize_clip_forward_coded(Tensor& out, Tensor& codes, const Tensor& x, const Tensor& alpha,
                                          const Tensor& levels, double steps, double lo, double hi) {
  Tensor no_mask, no_coef;
  quantize_clip_forward(out, no_mask, no_coef, x, alpha, levels, steps, lo, hi);
  const Tensor host_alpha = alpha.device().is_cpu() ? alpha : alpha.to(kCPU);
  const Tensor host_levels = !levels.defined() || levels.device().is_cpu() ? levels : levels.to(kCPU);
  const Tensor book = quantize_clip_codebook(host_alpha, host_levels, steps);
  return book.defined() && codebook_encode(codes, out, book);
}

bool Backend::codebook_encode(Tensor& codes, const Tensor& x, const Tensor& codebook) {
  const char* op = "codebook_encode";
  codebook_detail::check_coded_pair(op, x, codes);
  codebook_detail::check_codebook(op, codebook, x.dtype());
  return dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    using K = decltype(codebook_key(T{}));
    std::vector<K> keys;
    for (int64_t j = 0; j < codebook.numel(); ++j) keys.push_back(codebook_key(codebook.data<T>()[j]));
    const T* xp = x.data<T>();  // memory order: the tensor is dense
    uint8_t* cp = codes.data<uint8_t>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const K k = codebook_key(xp[i]);
      const auto it = std::lower_bound(keys.begin(), keys.end(), k);
      if (it == keys.end() || *it != k) return false;
      cp[i] = static_cast<uint8_t>(it - keys.begin());
    }
    return true;
  });
}

void Backend::codebook_decode(Tensor& out, const Tensor& codes, const Tensor& codebook) {
  const char* op = "codebook_decode";
  codebook_detail::check_coded_pair(op, out, codes);
  codebook_detail::check_codebook(op, codebook, out.dtype());
  dispatch_floating(out.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* cb = codebook.data<T>();
    const auto n = static_cast<size_t>(codebook.numel());
    T* op_ = out.data<T>();
    const uint8_t* cp = codes.data<uint8_t>();
    for (int64_t i = 0; i < out.numel(); ++i) op_[i] = cp[i] < n ? cb[cp[i]] : std::numeric_limits<T>::quiet_NaN();
  });
}

}  // namespace minidl
