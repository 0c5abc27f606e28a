// Helpers shared by the differentiable ops in autograd/ops/ (internal: not installed API, not recorded).
// They allocate outputs, check that operands agree on dtype and device, make stride-0 broadcast views and call
// the backend primitives directly, so an op's forward and backward read as a few lines of primitive calls.
#pragma once

#include <algorithm>
#include <vector>

#include "autograd/function.h"
#include "autograd/ops.h"
#include "backends/backend.h"

namespace minidl::ops_detail {

using autograd::Context;
using autograd::SaveKind;

/// A fresh contiguous tensor of `shape` with like's dtype and device.
inline Tensor new_like(const Shape& shape, const Tensor& like) {
  return empty(shape, TensorOptions().dtype(like.dtype()).device(like.device()));
}

/// A fresh tensor of `shape` in memory format `format` with like's dtype and device.
inline Tensor new_like(const Shape& shape, const Tensor& like, MemoryFormat format) {
  return empty(shape, TensorOptions().dtype(like.dtype()).device(like.device()), format);
}

/// The memory format of an op's activation-shaped output: channels-last when the backend asks for it
/// (Backend::prefers_channels_last) and one of `inputs` of the same 4-D shape is channels-last, so a layout
/// chosen by a conv survives batch norm, ReLU, residual adds and their gradients; else contiguous.
inline MemoryFormat follow_format(const Shape& shape, std::initializer_list<Tensor> inputs) {
  if (shape.size() != 4) return MemoryFormat::Contiguous;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.sizes() == shape && t.memory_format() == MemoryFormat::ChannelsLast &&
        backend_for(t).prefers_channels_last(t.dtype()))
      return MemoryFormat::ChannelsLast;
  }
  return MemoryFormat::Contiguous;
}

/// True when `t` is the only handle to its data: no other Tensor, view or exactly saved copy shares its
/// storage, so a backward may overwrite it. That holds for a gradient handed to one backward alone and for a
/// saved tensor a pack hook has just restored (a dequantized activation, an unpacked mask), never for a tensor
/// saved as is (the tape still holds it). Reusing such buffers is how backward keeps its working set small
/// under activation compression.
inline bool sole_owner(const Tensor& t) { return t.sole_handle() && (t.is_contiguous() || t.is_channels_last()); }

/// An output buffer of `like`'s dtype and device, `shape` and `format`: `reuse` itself when this call owns it alone
/// and it has that shape, dtype and layout (for a kernel that reads each element before writing the same element
/// of the output, e.g. batch norm's gx over a restored x), else a fresh tensor. Compute `format` beforehand: a
/// follow_format({reuse, ...}) in the call's arguments holds a copy of `reuse` until the call returns.
inline Tensor reuse_or_new(const Tensor& reuse, const Shape& shape, const Tensor& like, MemoryFormat format) {
  if (sole_owner(reuse) && reuse.sizes() == shape && reuse.dtype() == like.dtype() && reuse.device() == like.device() &&
      reuse.memory_format() == format)
    return reuse;
  return new_like(shape, like, format);
}

/// A batch norm's running statistics updated in place from a training step's batch mean and inverse std (biased
/// variance; n values per channel), with PyTorch's momentum convention and the unbiased variance; no recording.
/// Nothing when running_mean is undefined. Defined in batch_norm.cpp.
void update_running_stats(const Tensor& running_mean, const Tensor& running_var, const Tensor& mean,
                          const Tensor& invstd, int64_t n, double momentum, double eps);

/// Checks conv2d's operands (dtypes, devices, ranks, groups, stride/padding/dilation, bias, that the kernel
/// fits) with errors naming conv2d and the shapes; returns the output shape (N, K, P, Q). Defined in conv.cpp.
Shape checked_conv_output(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);

/// Throws when a and b differ in dtype or device; `op` names the caller.
inline void check_compatible(const char* op, const Tensor& a, const Tensor& b) {
  MINIDL_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch between ", dtype_name(a.dtype()), " ",
               shape_str(a.sizes()), " and ", dtype_name(b.dtype()), " ", shape_str(b.sizes()));
  MINIDL_CHECK(a.device() == b.device(), op, ": device mismatch between ", a.device().str(), " ", shape_str(a.sizes()),
               " and ", b.device().str(), " ", shape_str(b.sizes()));
}

inline void check_floating(const char* op, const Tensor& t) {
  MINIDL_CHECK(t.defined(), op, ": undefined input tensor");
  MINIDL_CHECK(is_floating(t.dtype()), op, ": expected a floating tensor (float32 or float64), got ",
               dtype_name(t.dtype()), " ", shape_str(t.sizes()));
}

/// A view of t broadcast to `shape` (stride 0 on expanded and new leading dims). No autograd.
inline Tensor broadcast_view(const Tensor& t, const Shape& shape) {
  if (t.sizes() == shape) return t;
  const size_t r = shape.size(), tr = t.sizes().size();
  MINIDL_CHECK(tr <= r, "broadcast: cannot broadcast ", shape_str(t.sizes()), " to ", shape_str(shape));
  Shape strides(r, 0);
  for (size_t i = 0; i < tr; ++i) {
    const size_t o = r - tr + i;
    const int64_t s = t.sizes()[i];
    MINIDL_CHECK(s == shape[o] || s == 1, "broadcast: cannot broadcast ", shape_str(t.sizes()), " to ",
                 shape_str(shape));
    strides[o] = (s == shape[o] && s != 1) ? t.strides()[i] : 0;
  }
  return t.as_strided(shape, strides, t.offset());
}

/// A contiguous tensor reinterpreted with another shape of the same numel (no copy, no autograd).
inline Tensor reshaped_contiguous(const Tensor& t, const Shape& shape) {
  return t.as_strided(shape, contiguous_strides(shape), t.offset());
}

/// A 0-dim tensor holding `value` with like's dtype and device.
inline Tensor scalar_like(double value, const Tensor& like) {
  return scalar_tensor(value, TensorOptions().dtype(like.dtype()).device(like.device()));
}

// ---- unrecorded primitive calls ----

inline Tensor unary_raw(UnaryOp op, const Tensor& x, double a = 0.0, double b = 0.0) {
  Tensor out = new_like(x.sizes(), x, follow_format(x.sizes(), {x}));
  backend_for(x).unary(op, out, x, UnaryParams{a, b});
  return out;
}

/// a op b with broadcasting (shapes must broadcast; dtype/device must agree).
inline Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_compatible(name, a, b);
  const Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  Tensor out = new_like(shape, a, follow_format(shape, {a, b}));
  backend_for(a).binary(op, out, broadcast_view(a, shape), broadcast_view(b, shape));
  return out;
}

/// Sorted, unique, wrapped reduction dims; empty `dims` means all dims.
inline std::vector<int64_t> normalize_dims(std::vector<int64_t> dims, int64_t rank, const char* op) {
  if (dims.empty()) {
    for (int64_t i = 0; i < rank; ++i) dims.push_back(i);
    return dims;
  }
  for (auto& d : dims) d = wrap_dim(d, rank, op);
  std::sort(dims.begin(), dims.end());
  MINIDL_CHECK(std::adjacent_find(dims.begin(), dims.end()) == dims.end(), op,
               ": a dimension appears more than once in the reduction dims");
  if (rank == 0) dims.clear();  // a 0-dim tensor has nothing to reduce over
  return dims;
}

/// The shape with every dim in `dims` set to 1.
inline Shape keepdim_shape(const Shape& s, const std::vector<int64_t>& dims) {
  Shape k = s;
  for (int64_t d : dims) k[static_cast<size_t>(d)] = 1;
  return k;
}

/// The shape with every dim in `dims` removed.
inline Shape reduced_shape(const Shape& s, const std::vector<int64_t>& dims) {
  Shape r;
  for (size_t i = 0; i < s.size(); ++i)
    if (!std::binary_search(dims.begin(), dims.end(), static_cast<int64_t>(i))) r.push_back(s[i]);
  return r;
}

/// Reduction of x over sorted unique `dims`, with the keepdim shape (contiguous). No autograd.
inline Tensor reduce_raw(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor out = new_like(keepdim_shape(x.sizes(), dims), x);
  backend_for(x).reduce(op, out, x, dims);
  return out;
}

}  // namespace minidl::ops_detail
