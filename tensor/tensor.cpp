// Tensor's metadata-level methods: sizes, strides, contiguity, raw views, autograd metadata.
#include "tensor/tensor.h"

#include <algorithm>

namespace minidl {

int64_t wrap_dim(int64_t dim, int64_t rank, const char* op) {
  const int64_t r = rank == 0 ? 1 : rank;  // a 0-dim tensor accepts dim 0 / -1, as in PyTorch
  MINIDL_CHECK(dim >= -r && dim < r, op, ": dimension ", dim, " is out of range for a tensor of rank ", rank);
  return dim < 0 ? dim + r : dim;
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = acc;
    // Checked: a shape with a zero size has no elements yet still gets strides, and [0, 2^62, 2^62] (from a
    // fuzzed safetensors header) would overflow them.
    MINIDL_CHECK(!__builtin_mul_overflow(acc, std::max<int64_t>(shape[i], 1), &acc), "shape ", shape_str(shape),
                 " is too large: its strides overflow 64 bits");
  }
  return st;
}

TensorImpl& Tensor::impl() const {
  MINIDL_CHECK(impl_ != nullptr, "use of an undefined Tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t dim) const { return sizes()[wrap_dim(dim, this->dim(), "size")]; }
int64_t Tensor::stride(int64_t dim) const { return strides()[wrap_dim(dim, this->dim(), "stride")]; }
int64_t Tensor::numel() const { return shape_numel(sizes()); }

bool Tensor::is_contiguous() const {
  const auto& sz = sizes();
  const auto& st = strides();
  // No elements, nothing to lay out (PyTorch agrees); without this, [5, 0] from empty() reported false.
  if (std::find(sz.begin(), sz.end(), 0) != sz.end()) return true;
  int64_t expected = 1;
  for (size_t i = sz.size(); i-- > 0;) {
    if (sz[i] == 1) continue;  // a size-1 dim's stride never matters
    if (st[i] != expected) return false;
    expected *= sz[i];
  }
  return true;
}

bool Tensor::is_channels_last() const {
  if (dim() != 4) return false;
  const auto& sz = sizes();
  const auto& st = strides();
  int64_t expected = 1;
  for (size_t i : {size_t{1}, size_t{3}, size_t{2}, size_t{0}}) {
    if (sz[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= sz[i];
  }
  return true;
}

Shape channels_last_strides(const Shape& shape) {
  MINIDL_CHECK(shape.size() == 4, "channels_last_strides: needs a 4-D (N, C, H, W) shape, got ", shape_str(shape));
  const int64_t C = shape[1], H = shape[2], W = shape[3];
  return {H * W * C, 1, W * C, C};
}

void* Tensor::raw_data() const {
  MINIDL_CHECK(device().is_cpu(), "Tensor::data: the tensor lives on ", device().str(),
               "; copy it to the host first with .to(kCPU)");
  return static_cast<char*>(storage()->data()) + offset() * static_cast<int64_t>(element_size());
}

Tensor Tensor::as_strided(Shape sizes, Shape strides, int64_t offset) const {
  MINIDL_CHECK(sizes.size() == strides.size(), "as_strided: ", sizes.size(), " sizes but ", strides.size(), " strides");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage();
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

Tensor Tensor::take_buffer() const {
  MINIDL_CHECK(sole_handle(), "take_buffer: the tensor has other owners (", defined() ? storage().use_count() : 0,
               " storage and ", impl_ptr().use_count(), " handle references)");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::take_over(*storage());
  impl->sizes = sizes();
  impl->strides = strides();
  impl->offset = offset();
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

Tensor& Tensor::set_requires_grad(bool r) {
  MINIDL_CHECK(!r || is_floating(dtype()), "requires_grad: only floating tensors can require grad, got ",
               dtype_name(dtype()));
  MINIDL_CHECK(is_leaf(), "requires_grad: can only be changed on a leaf tensor (use detach() for a non-leaf)");
  impl().requires_grad = r;
  return *this;
}

Tensor Tensor::grad() const {
  auto& g = impl().grad;
  return g ? Tensor(g) : Tensor();
}

void Tensor::set_grad(const Tensor& g) const {
  if (g.defined()) {
    MINIDL_CHECK(g.sizes() == sizes(), "set_grad: gradient shape ", shape_str(g.sizes()),
                 " does not match tensor shape ", shape_str(sizes()));
  }
  impl().grad = g.impl_ptr();
}

Tensor Tensor::detach() const {
  Tensor t = as_strided(sizes(), strides(), offset());
  return t;
}

}  // namespace minidl
