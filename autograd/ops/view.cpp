// Differentiable views: view/reshape/squeeze/unsqueeze/flatten, permute/transpose, narrow/slice/select, expand.
// Forward is metadata only (Tensor::as_strided onto the same storage); backward maps the gradient back to the
// input's geometry: reshape back, inverse permute, zeros + copy into the matching view, or sum_to for expand.
#include <numeric>
#include <optional>

#include "autograd/ops/op_utils.h"

namespace minidl {

using namespace ops_detail;

namespace {

/// Replaces a single -1 in `shape` by the extent that keeps numel; checks the numel matches.
Shape infer_shape(Shape shape, int64_t numel, const Shape& from, const char* op) {
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      MINIDL_CHECK(infer < 0, op, ": only one dimension can be -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      MINIDL_CHECK(shape[i] >= 0, op, ": invalid size ", shape[i], " in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    MINIDL_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape_str(shape), " is invalid for input ",
                 shape_str(from), " of ", numel, " elements");
    shape[static_cast<size_t>(infer)] = numel / known;
  }
  MINIDL_CHECK(shape_numel(shape) == numel, op, ": shape ", shape_str(shape), " is invalid for input ", shape_str(from),
               " of ", numel, " elements");
  return shape;
}

/// Strides that view (sizes, strides) as `shape` without copying, or nullopt when impossible (PyTorch's rule:
/// each run of new dims must map onto a run of old dims that is contiguous within itself).
std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& shape) {
  const int64_t numel = shape_numel(sizes);
  if (numel == 0 || sizes.empty()) return contiguous_strides(shape);
  Shape out(shape.size(), 0);
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = static_cast<int64_t>(sizes.size()) - 1; td >= 0; --td) {
    tensor_numel *= sizes[static_cast<size_t>(td)];
    const bool chunk_ends = td == 0 || (sizes[static_cast<size_t>(td - 1)] != 1 &&
                                        strides[static_cast<size_t>(td - 1)] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || shape[static_cast<size_t>(view_d)] == 1)) {
      out[static_cast<size_t>(view_d)] = view_numel * chunk_base_stride;
      view_numel *= shape[static_cast<size_t>(view_d)];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (td > 0) {
      chunk_base_stride = strides[static_cast<size_t>(td - 1)];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

// A view with new sizes/strides over the same elements in the same row-major order (view, reshape, squeeze,
// unsqueeze, flatten); the gradient is reshaped back.
struct ViewFn : autograd::Function<ViewFn> {
  static constexpr const char* kName = "view";
  static Tensor forward(Context& ctx, const Tensor& x, Shape shape, Shape strides) {
    ctx.data["in"] = x.sizes();
    return x.as_strided(std::move(shape), std::move(strides), x.offset());
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    return {g[0].reshape(ctx.get<Shape>("in"))};
  }
};

struct PermuteFn : autograd::Function<PermuteFn> {
  static constexpr const char* kName = "permute";
  static Tensor forward(Context& ctx, const Tensor& x, std::vector<int64_t> dims) {
    Shape sizes(dims.size()), strides(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) {
      sizes[i] = x.sizes()[static_cast<size_t>(dims[i])];
      strides[i] = x.strides()[static_cast<size_t>(dims[i])];
    }
    ctx.data["dims"] = dims;
    return x.as_strided(sizes, strides, x.offset());
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    const auto& dims = ctx.get<std::vector<int64_t>>("dims");
    std::vector<int64_t> inv(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) inv[static_cast<size_t>(dims[i])] = static_cast<int64_t>(i);
    return {g[0].permute(inv)};
  }
};

// Geometry of a strided sub-view: along `dim`, elements start, start+step, ... (length of them); when
// `drop` the dim is removed (select).
struct SliceSpec {
  int64_t dim = 0, start = 0, length = 0, step = 1;
  bool drop = false;
};

Tensor apply_slice(const Tensor& x, const SliceSpec& s) {
  Shape sizes = x.sizes(), strides = x.strides();
  const size_t d = static_cast<size_t>(s.dim);
  const int64_t offset = x.offset() + s.start * strides[d];
  if (s.drop) {
    sizes.erase(sizes.begin() + s.dim);
    strides.erase(strides.begin() + s.dim);
  } else {
    sizes[d] = s.length;
    strides[d] *= s.step;
  }
  return x.as_strided(sizes, strides, offset);
}

struct SliceFn : autograd::Function<SliceFn> {
  static constexpr const char* kName = "slice";
  static Tensor forward(Context& ctx, const Tensor& x, SliceSpec spec) {
    ctx.data["in"] = x.sizes();
    ctx.data["spec"] = spec;
    return apply_slice(x, spec);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    // Zeros of the input's shape with the gradient copied into the sliced positions.
    Tensor gx = zeros(ctx.get<Shape>("in"), TensorOptions().dtype(g[0].dtype()).device(g[0].device()));
    Tensor dst = apply_slice(gx, ctx.get<SliceSpec>("spec"));
    backend_for(gx).copy(dst, g[0]);
    return {gx};
  }
};

struct ExpandFn : autograd::Function<ExpandFn> {
  static constexpr const char* kName = "expand";
  static Tensor forward(Context& ctx, const Tensor& x, Shape shape) {
    ctx.data["in"] = x.sizes();
    return broadcast_view(x, shape);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    return {sum_to(g[0], ctx.get<Shape>("in"))};
  }
};

}  // namespace

Tensor Tensor::view(Shape shape) const {
  shape = infer_shape(std::move(shape), numel(), sizes(), "view");
  auto st = view_strides(sizes(), strides(), shape);
  MINIDL_CHECK(st.has_value(), "view: cannot view ", shape_str(sizes()), " with strides ", shape_str(strides()), " as ",
               shape_str(shape), " without a copy (use reshape)");
  return ViewFn::apply(*this, shape, *st);
}

Tensor Tensor::reshape(Shape shape) const {
  shape = infer_shape(std::move(shape), numel(), sizes(), "reshape");
  if (auto st = view_strides(sizes(), strides(), shape)) return ViewFn::apply(*this, shape, *st);
  return contiguous().view(shape);
}

Tensor Tensor::permute(std::vector<int64_t> dims) const {
  MINIDL_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(),
               " dims given for a tensor of rank ", dim(), " ", shape_str(sizes()));
  std::vector<bool> seen(dims.size(), false);
  for (auto& d : dims) {
    d = wrap_dim(d, dim(), "permute");
    MINIDL_CHECK(!seen[static_cast<size_t>(d)], "permute: dimension ", d, " repeated in ", shape_str(dims));
    seen[static_cast<size_t>(d)] = true;
  }
  return PermuteFn::apply(*this, std::move(dims));
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> dims(static_cast<size_t>(dim()));
  std::iota(dims.begin(), dims.end(), 0);
  // checked first: a 0-dim tensor accepts dims 0 and -1 only, as in PyTorch (it accepted any dims)
  d0 = wrap_dim(d0, dim(), "transpose");
  d1 = wrap_dim(d1, dim(), "transpose");
  if (dim() == 0) return permute(dims);
  std::swap(dims[static_cast<size_t>(d0)], dims[static_cast<size_t>(d1)]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  MINIDL_CHECK(dim() > 0, "slice: cannot slice a 0-dim tensor");
  d = wrap_dim(d, dim(), "slice");
  MINIDL_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = size(d);
  // Python semantics: negative bounds count from the end, out-of-range bounds are clamped.
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  SliceSpec s{d, start, (end - start + step - 1) / step, step, false};
  return SliceFn::apply(*this, s);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  MINIDL_CHECK(dim() > 0, "narrow: cannot narrow a 0-dim tensor");
  d = wrap_dim(d, dim(), "narrow");
  const int64_t n = size(d);
  if (start < 0) start += n;
  MINIDL_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: start ", start, " and length ", length,
               " are out of range for dimension ", d, " of ", shape_str(sizes()));
  return SliceFn::apply(*this, SliceSpec{d, start, length, 1, false});
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  MINIDL_CHECK(dim() > 0, "select: cannot select from a 0-dim tensor");
  d = wrap_dim(d, dim(), "select");
  const int64_t n = size(d);
  MINIDL_CHECK(index >= -n && index < n, "select: index ", index, " is out of range for dimension ", d, " of ",
               shape_str(sizes()));
  if (index < 0) index += n;
  return SliceFn::apply(*this, SliceSpec{d, index, 1, 1, true});
}

Tensor Tensor::expand(Shape shape) const {
  const size_t r = shape.size(), xr = sizes().size();
  MINIDL_CHECK(r >= xr, "expand: cannot expand ", shape_str(sizes()), " to ", shape_str(shape), " (fewer dimensions)");
  for (size_t i = 0; i < r; ++i) {
    if (i < r - xr) {
      MINIDL_CHECK(shape[i] >= 0, "expand: new leading dimension cannot be ", shape[i], " in ", shape_str(shape));
      continue;
    }
    const int64_t s = sizes()[i - (r - xr)];
    if (shape[i] == -1) shape[i] = s;
    // a size-1 dimension expands to any size, but not a negative one (it made a tensor of negative size)
    MINIDL_CHECK(shape[i] >= 0, "expand: size ", shape[i], " at dimension ", i, " of ", shape_str(shape),
                 " (only -1, keeping the size, may be negative)");
    MINIDL_CHECK(s == shape[i] || s == 1, "expand: cannot expand ", shape_str(sizes()), " to ", shape_str(shape),
                 " (dimension ", i, ": ", s, " vs ", shape[i], ")");
  }
  return ExpandFn::apply(*this, std::move(shape));
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");  // first: a 0-dim tensor accepts dims 0 and -1 only, as in PyTorch
  if (dim() == 0) return view({});
  Shape s = sizes(), st = strides();
  if (s[static_cast<size_t>(d)] != 1) return ViewFn::apply(*this, s, st);  // PyTorch: not size 1 -> unchanged
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return ViewFn::apply(*this, s, st);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = sizes(), st = strides();
  const int64_t new_stride = d < dim() ? st[static_cast<size_t>(d)] * s[static_cast<size_t>(d)] : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, new_stride);
  return ViewFn::apply(*this, s, st);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  // checked first: a 0-dim tensor accepts dims 0 and -1 only, as in PyTorch (it returned [1] for any dims)
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  if (dim() == 0) return reshape({1});
  MINIDL_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " is after end_dim ", end_dim);
  Shape s;
  for (int64_t i = 0; i < start_dim; ++i) s.push_back(size(i));
  int64_t mid = 1;
  for (int64_t i = start_dim; i <= end_dim; ++i) mid *= size(i);
  s.push_back(mid);
  for (int64_t i = end_dim + 1; i < dim(); ++i) s.push_back(size(i));
  return reshape(s);
}

}  // namespace minidl
