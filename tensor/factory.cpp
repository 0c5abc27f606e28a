// Tensor creation. Values are produced on the host (random ones from the counter-based generator, so every
// backend sees the same numbers for a seed) and then moved to the requested device.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "tensor/generator.h"
#include "tensor/tensor.h"

namespace minidl {
namespace {

Tensor host_empty(const Shape& shape, DType dtype) {
  for (int64_t s : shape) MINIDL_CHECK(s >= 0, "empty: negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), kCPU);
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// Moves a freshly made host tensor to opts' device and applies requires_grad.
Tensor finish(Tensor t, const TensorOptions& opts) {
  if (!opts.device_.is_cpu()) t = t.to(opts.device_);
  if (opts.requires_grad_) t.set_requires_grad(true);
  return t;
}

void host_fill(Tensor& t, double value) {
  dispatch_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    const T v = static_cast<T>(value);
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) p[i] = v;
  });
}

}  // namespace

Tensor empty(const Shape& shape, TensorOptions opts) {
  if (opts.device_.is_cpu()) return finish(host_empty(shape, opts.dtype_), opts);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage =
      std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(opts.dtype_), opts.device_);
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = opts.dtype_;
  Tensor t(std::move(impl));
  if (opts.requires_grad_) t.set_requires_grad(true);
  return t;
}

Tensor full(const Shape& shape, double value, TensorOptions opts) {
  if (!opts.device_.is_cpu()) {
    Tensor t = empty(shape, opts.requires_grad(false));
    t.fill_(value);
    if (opts.requires_grad_) t.set_requires_grad(true);
    return t;
  }
  Tensor t = host_empty(shape, opts.dtype_);
  if (value == 0.0) {
    std::memset(t.raw_data(), 0, t.nbytes());
  } else {
    host_fill(t, value);
  }
  return finish(t, opts);
}

Tensor empty(const Shape& shape, TensorOptions opts, MemoryFormat format) {
  if (format == MemoryFormat::Contiguous) return empty(shape, opts);
  const bool rg = opts.requires_grad_;
  Tensor t = empty(shape, opts.requires_grad(false));
  // same storage size: channels-last is a permutation of the dense layout
  Tensor cl = t.as_strided(shape, channels_last_strides(shape), 0);
  if (rg) cl.set_requires_grad(true);
  return cl;
}

Tensor zeros(const Shape& shape, TensorOptions opts) { return full(shape, 0.0, opts); }
Tensor ones(const Shape& shape, TensorOptions opts) { return full(shape, 1.0, opts); }

Tensor arange(double start, double end, double step, TensorOptions opts) {
  MINIDL_CHECK(step != 0.0, "arange: step must be non-zero");
  const double span = (end - start) / step;
  const int64_t n = span > 0 ? static_cast<int64_t>(std::ceil(span)) : 0;
  Tensor t = host_empty({n}, opts.dtype_);
  dispatch_dtype(t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return finish(t, opts);
}

Tensor arange(int64_t end, TensorOptions opts) { return arange(0.0, static_cast<double>(end), 1.0, opts); }

namespace {
enum class Dist { Uniform, Normal };
Tensor random_tensor(const Shape& shape, TensorOptions opts, Dist dist, double lo, double hi) {
  auto& gen = default_generator();
  Tensor t = host_empty(shape, opts.dtype_);
  const int64_t n = t.numel();
  const uint64_t offset = gen.reserve(static_cast<uint64_t>(n));
  dispatch_floating(t.dtype(), dist == Dist::Uniform ? "rand" : "randn", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    if (dist == Dist::Uniform) {
      philox_uniform(p, n, gen.seed(), 0, offset);
      if (lo != 0.0 || hi != 1.0) {
        for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(lo + (hi - lo) * static_cast<double>(p[i]));
      }
    } else {
      philox_normal(p, n, gen.seed(), 0, offset);
    }
  });
  return finish(t, opts);
}
}  // namespace

Tensor rand(const Shape& shape, TensorOptions opts) { return random_tensor(shape, opts, Dist::Uniform, 0, 1); }
Tensor randn(const Shape& shape, TensorOptions opts) { return random_tensor(shape, opts, Dist::Normal, 0, 1); }
Tensor uniform(const Shape& shape, double lo, double hi, TensorOptions opts) {
  MINIDL_CHECK(lo <= hi, "uniform: lower bound ", lo, " is above upper bound ", hi);
  return random_tensor(shape, opts, Dist::Uniform, lo, hi);
}

template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opts) {
  // An empty shape means "1-D", like torch.tensor([...]); scalar_tensor makes 0-dim tensors.
  const Shape s = shape.empty() ? Shape{static_cast<int64_t>(values.size())} : shape;
  MINIDL_CHECK(shape_numel(s) == static_cast<int64_t>(values.size()), "from_vector: ", values.size(),
               " values do not fill shape ", shape_str(s));
  if (!opts.dtype_given_ && std::is_integral_v<T>) opts = opts.dtype(dtype_v<T>);
  Tensor t = host_empty(s, opts.dtype_);
  dispatch_dtype(t.dtype(), [&](auto tag) {
    using U = decltype(tag);
    U* p = t.data<U>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<U>(values[i]);
  });
  return finish(t, opts);
}

template Tensor from_vector<float>(const std::vector<float>&, const Shape&, TensorOptions);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, TensorOptions);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, TensorOptions);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, TensorOptions);
template Tensor from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&, TensorOptions);

Tensor tensor(std::initializer_list<double> values, const Shape& shape, TensorOptions opts) {
  return from_vector(std::vector<double>(values), shape, opts);
}

Tensor scalar_tensor(double value, TensorOptions opts) {
  Tensor t = host_empty({}, opts.dtype_);
  host_fill(t, value);
  return finish(t, opts);
}

}  // namespace minidl
