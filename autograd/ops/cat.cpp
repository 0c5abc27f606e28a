// cat: concatenation along one dim as a Function. Forward copies each input into its narrow view of a fresh
// output (backend.copy, any strides); backward hands each input the matching narrow view of the gradient.
#include "autograd/ops/op_utils.h"

namespace minidl {

using namespace ops_detail;

namespace {

/// The [start, start+length) view of t along dim (no autograd).
Tensor narrow_raw(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  Shape sizes = t.sizes();
  sizes[static_cast<size_t>(dim)] = length;
  return t.as_strided(sizes, t.strides(), t.offset() + start * t.stride(dim));
}

struct CatFn : autograd::Function<CatFn> {
  static constexpr const char* kName = "cat";
  static Tensor forward(Context& ctx, const std::vector<Tensor>& ts, int64_t dim) {
    MINIDL_CHECK(!ts.empty(), "cat: expected a non-empty list of tensors");
    const Tensor& first = ts[0];
    MINIDL_CHECK(first.defined(), "cat: tensor 0 is undefined");
    MINIDL_CHECK(first.dim() > 0, "cat: zero-dimensional tensor 0 cannot be concatenated");
    dim = wrap_dim(dim, first.dim(), "cat");
    Shape out_shape = first.sizes();
    out_shape[static_cast<size_t>(dim)] = 0;
    std::vector<int64_t> extents;
    for (size_t i = 0; i < ts.size(); ++i) {
      const Tensor& t = ts[i];
      MINIDL_CHECK(t.defined(), "cat: tensor ", i, " is undefined");
      check_compatible("cat", first, t);
      bool ok = t.dim() == first.dim();
      for (int64_t d = 0; ok && d < t.dim(); ++d) ok = d == dim || t.size(d) == first.size(d);
      MINIDL_CHECK(ok, "cat: tensor ", i, " of shape ", shape_str(t.sizes()), " does not match tensor 0 of shape ",
                   shape_str(first.sizes()), " outside dimension ", dim);
      extents.push_back(t.size(dim));
      out_shape[static_cast<size_t>(dim)] += t.size(dim);
    }
    Tensor out = new_like(out_shape, first);
    int64_t start = 0;
    for (size_t i = 0; i < ts.size(); ++i) {
      Tensor dst = narrow_raw(out, dim, start, extents[i]);
      if (extents[i] > 0) backend_for(out).copy(dst, ts[i]);
      start += extents[i];
    }
    ctx.data["dim"] = dim;
    ctx.data["extents"] = extents;
    return out;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    const int64_t dim = ctx.get<int64_t>("dim");
    const auto& extents = ctx.get<std::vector<int64_t>>("extents");
    std::vector<Tensor> grads(extents.size());
    int64_t start = 0;
    for (size_t i = 0; i < extents.size(); ++i) {
      if (ctx.needs_input_grad(i)) grads[i] = narrow_raw(g[0], dim, start, extents[i]);
      start += extents[i];
    }
    return grads;
  }
};

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) { return CatFn::apply(tensors, dim); }

}  // namespace minidl
