// Tensor: the one user-facing array type. A cheap handle (shared ownership) to a TensorImpl: storage, sizes,
// strides, offset, dtype, and the autograd metadata (requires_grad, grad, grad_fn).
//
// Declare low, define high: this header declares data-moving methods and math, but tensor/ defines only the
// metadata-level ones. autograd/ defines data movement (copy_/fill_/contiguous/to: they call a backend and some
// record on the tape) and the differentiable math and views. No header here includes a higher floor.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/storage.h"

namespace minidl {

using Shape = std::vector<int64_t>;

namespace autograd {
class Node;
}

class Tensor;

/// How an activation tensor is laid out in memory. Every tensor is logically (N, C, H, W); a backend whose
/// kernels are fastest on channels-last data (the cpu backend: oneDNN's nhwc convolutions) asks the autograd ops
/// to allocate 4-D activations that way, so no conv has to reorder its input or output.
enum class MemoryFormat : uint8_t { Contiguous, ChannelsLast };

struct TensorOptions {
  DType dtype_ = DType::f32;
  Device device_ = kCPU;
  bool requires_grad_ = false;
  bool dtype_given_ = false;  // dtype() was called: from_vector of integers keeps their dtype otherwise

  TensorOptions dtype(DType t) const {
    auto o = *this;
    o.dtype_ = t;
    o.dtype_given_ = true;
    return o;
  }
  TensorOptions device(Device d) const {
    auto o = *this;
    o.device_ = d;
    return o;
  }
  TensorOptions requires_grad(bool r = true) const {
    auto o = *this;
    o.requires_grad_ = r;
    return o;
  }
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape sizes;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;

  // autograd metadata
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;         // leaf gradient, accumulated by backward()
  std::shared_ptr<autograd::Node> grad_fn;  // the Node that produced this tensor (null for leaves)
  uint32_t output_nr = 0;                   // which output of grad_fn this is
  bool retains_grad = false;                // non-leaf that keeps .grad (Tensor::retain_grad)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata (tensor/) ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& sizes() const { return impl().sizes; }
  const Shape& shape() const { return impl().sizes; }
  const Shape& strides() const { return impl().strides; }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return static_cast<int64_t>(impl().sizes.size()); }
  int64_t numel() const;
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  size_t element_size() const { return dtype_size(dtype()); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(); }
  bool is_contiguous() const;
  /// 4-D and dense in (N, H, W, C) order: PyTorch's channels_last. Size-1 dims' strides never matter, so a
  /// tensor can be both contiguous and channels-last (e.g. C == 1 or H == W == 1).
  bool is_channels_last() const;
  /// ChannelsLast when the tensor is channels-last and not also plain contiguous (a layout choice that means
  /// something), else Contiguous (also for tensors that are neither): what a layout-following op should produce.
  MemoryFormat memory_format() const {
    return is_channels_last() && !is_contiguous() ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
  }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  uint64_t version() const { return impl().storage->version(); }
  /// Marks an in-place write (bumps the storage's version counter, shared by all views).
  void bump_version() const { impl().storage->bump_version(); }

  /// Pointer to the first element (host memory only; throws for a tensor on another device).
  void* raw_data() const;
  template <typename T>
  T* data() const {
    MINIDL_CHECK(dtype() == dtype_v<T>, "Tensor::data<", dtype_name(dtype_v<T>), ">: tensor has dtype ",
                 dtype_name(dtype()));
    return static_cast<T*>(raw_data());
  }
  /// The single value of a one-element tensor, converted to T (copies from the device if needed).
  template <typename T>
  T item() const;
  /// All elements in row-major order, converted to T (copies from the device if needed).
  template <typename T>
  std::vector<T> to_vector() const;

  /// A view with the given geometry onto the same storage (no autograd; used by view ops and kernels).
  Tensor as_strided(Shape sizes, Shape strides, int64_t offset) const;

  // ---- autograd metadata (tensor/) ----
  bool requires_grad() const { return impl().requires_grad; }
  /// Marks a leaf as requiring grad; returns *this.
  Tensor& set_requires_grad(bool r = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  /// The accumulated gradient (undefined Tensor when none).
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  /// A tensor sharing storage (and the version counter) with no autograd history.
  Tensor detach() const;
  /// True when this handle is the only one to its data: no other Tensor, view or exactly saved copy shares its
  /// storage (ops_detail::sole_owner adds a dense layout for the ops that overwrite such a tensor).
  bool sole_handle() const { return defined() && impl_.use_count() == 1 && impl_->storage.use_count() == 1; }
  /// For an op that is this tensor's only owner (sole_handle) and writes its output over it: the same view of the same
  /// memory as a new tensor with a new Storage (version 0, no history) that has taken the buffer over. This tensor's
  /// storage is left without memory, so it must not be read again; what saved it before (a pack hook's compressed copy,
  /// the version check of autograd's saved tensors) still sees an untouched storage.
  Tensor take_buffer() const;

  // ---- data movement (defined in autograd/tensor_methods.cpp: contiguous/clone/to are differentiable, the
  // in-place writes refuse a leaf that requires grad while grad mode is on) ----
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(Device d) const;
  Tensor to(DType t) const;
  Tensor& copy_(const Tensor& src);
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  // ---- autograd (defined in autograd/) ----
  void backward(const Tensor& grad = {}, bool retain_graph = false) const;
  void retain_grad() const;

  // views (differentiable)
  Tensor view(Shape shape) const;
  Tensor reshape(Shape shape) const;
  Tensor permute(std::vector<int64_t> dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(Shape shape) const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // math (differentiable)
  Tensor operator-() const;
  Tensor matmul(const Tensor& other) const;
  Tensor sum(std::vector<int64_t> dims = {}, bool keepdim = false) const;
  Tensor mean(std::vector<int64_t> dims = {}, bool keepdim = false) const;
  Tensor max(std::vector<int64_t> dims = {}, bool keepdim = false) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor pow(double exponent) const;
  Tensor relu() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor clamp(double lo, double hi) const;

  // in-place arithmetic without autograd (optimizers, running stats); bumps the version counter
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& mul_(double s);

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Arithmetic with broadcasting (defined in autograd/).
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);

// ---- creation (tensor/factory.cpp; filled on the host, then moved to the device) ----
Tensor empty(const Shape& shape, TensorOptions opts = {});
Tensor zeros(const Shape& shape, TensorOptions opts = {});
Tensor ones(const Shape& shape, TensorOptions opts = {});
Tensor full(const Shape& shape, double value, TensorOptions opts = {});
/// [start, end) with step, like torch.arange.
Tensor arange(double start, double end, double step = 1.0, TensorOptions opts = {});
Tensor arange(int64_t end, TensorOptions opts = {});
/// Uniform [0, 1), normal(0, 1) and uniform [lo, hi) from the global counter-based generator (see generator.h).
Tensor rand(const Shape& shape, TensorOptions opts = {});
Tensor randn(const Shape& shape, TensorOptions opts = {});
Tensor uniform(const Shape& shape, double lo, double hi, TensorOptions opts = {});
/// A tensor holding a copy of `values` with the given shape (numel must match; an empty shape means 1-D). Its dtype
/// is opts' when given; otherwise float32 for float / double values (as torch.tensor of Python floats) and the
/// values' own for integers (int32, int64, uint8: as torch.tensor of Python ints keeps integers).
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, TensorOptions opts = {});
/// A 1-D or shaped float tensor from a braced list: tensor({1, 2, 3, 4}, {2, 2}).
Tensor tensor(std::initializer_list<double> values, const Shape& shape = {}, TensorOptions opts = {});
/// A 0-dim tensor.
Tensor scalar_tensor(double value, TensorOptions opts = {});

/// Contiguous strides for a shape.
Shape contiguous_strides(const Shape& shape);
/// Channels-last strides of a 4-D (N, C, H, W) shape: memory order N, H, W, C.
Shape channels_last_strides(const Shape& shape);
/// empty() with the given memory format (ChannelsLast needs a 4-D shape).
Tensor empty(const Shape& shape, TensorOptions opts, MemoryFormat format);
int64_t shape_numel(const Shape& shape);
/// Normalises a possibly negative dim against rank; `op` names the caller in the error.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* op);

/// PyTorch-like printing: `tensor([[1.0000, 2.0000], ...], dtype=..., requires_grad=True)`; big tensors are
/// summarised with "..." (threshold 1000 elements, 3 edge items per dim).
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);

}  // namespace minidl
