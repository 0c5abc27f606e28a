// Reductions sum / mean / max over a set of dims (all dims when empty), with keepdim, as Functions.
// Forward reduces into the keepdim shape (backend.reduce's contract) and drops the reduced dims unless keepdim;
// backward reshapes the gradient back to the keepdim shape and broadcasts it over the input.
#include "autograd/ops/op_utils.h"

namespace minidl {

using namespace ops_detail;

namespace {

struct Reduced {
  std::vector<int64_t> dims;
  Shape keep;  // x's shape with reduced dims set to 1
};

Reduced prepare(const Tensor& x, std::vector<int64_t> dims, const char* op) {
  check_floating(op, x);
  Reduced r;
  r.dims = normalize_dims(std::move(dims), x.dim(), op);
  r.keep = keepdim_shape(x.sizes(), r.dims);
  return r;
}

Tensor finish(const Tensor& out_keep, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  if (keepdim) return out_keep;
  return reshaped_contiguous(out_keep, reduced_shape(x.sizes(), dims));
}

/// g (output shape) as a view with the keepdim shape (the reduced dims reinserted with size 1).
Tensor grad_keep(const Tensor& g, const Shape& keep) {
  if (g.sizes() == keep) return g;
  Tensor c = g.is_contiguous() ? g : g.contiguous();
  return reshaped_contiguous(c, keep);
}

struct SumFn : autograd::Function<SumFn> {
  static constexpr const char* kName = "sum";
  static Tensor forward(Context& ctx, const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
    Reduced r = prepare(x, std::move(dims), kName);
    ctx.data["keep"] = r.keep;
    ctx.data["x"] = x.sizes();
    return finish(reduce_raw(ReduceOp::Sum, x, r.dims), x, r.dims, keepdim);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    return {broadcast_view(grad_keep(g[0], ctx.get<Shape>("keep")), ctx.get<Shape>("x"))};
  }
};

struct MeanFn : autograd::Function<MeanFn> {
  static constexpr const char* kName = "mean";
  static Tensor forward(Context& ctx, const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
    Reduced r = prepare(x, std::move(dims), kName);
    int64_t count = 1;
    for (int64_t d : r.dims) count *= x.size(d);
    ctx.data["keep"] = r.keep;
    ctx.data["x"] = x.sizes();
    ctx.data["count"] = count;
    return finish(reduce_raw(ReduceOp::Mean, x, r.dims), x, r.dims, keepdim);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    const double count = static_cast<double>(ctx.get<int64_t>("count"));
    Tensor scaled = binary_raw(BinaryOp::Div, grad_keep(g[0], ctx.get<Shape>("keep")), scalar_like(count, g[0]), kName);
    return {broadcast_view(scaled, ctx.get<Shape>("x"))};
  }
};

struct MaxFn : autograd::Function<MaxFn> {
  static constexpr const char* kName = "max";
  static Tensor forward(Context& ctx, const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
    Reduced r = prepare(x, std::move(dims), kName);
    MINIDL_CHECK(x.numel() > 0, "max: cannot reduce an empty tensor ", shape_str(x.sizes()));
    Tensor out = reduce_raw(ReduceOp::Max, x, r.dims);
    ctx.save(x);
    ctx.save(out, SaveKind::Output);
    ctx.data["dims"] = r.dims;
    ctx.data["keep"] = r.keep;
    return finish(out, x, r.dims, keepdim);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    // Note: the gradient is split evenly among tied maxima (each gets g / number of ties), as in PyTorch's
    // amax; this keeps the gradient of a constant input a valid subgradient.
    Tensor x = ctx.saved(0), out = ctx.saved(1);
    const auto& dims = ctx.get<std::vector<int64_t>>("dims");
    Tensor mask = binary_raw(BinaryOp::Eq, x, broadcast_view(out, x.sizes()), kName);
    Tensor count = reduce_raw(ReduceOp::Sum, mask, dims);
    Tensor share = binary_raw(BinaryOp::Div, grad_keep(g[0], ctx.get<Shape>("keep")), count, kName);
    return {binary_raw(BinaryOp::Mul, mask, share, kName)};
  }
};

}  // namespace

Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  return SumFn::apply(x, std::move(dims), keepdim);
}
Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  return MeanFn::apply(x, std::move(dims), keepdim);
}
Tensor max(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  return MaxFn::apply(x, std::move(dims), keepdim);
}

Tensor Tensor::sum(std::vector<int64_t> dims, bool keepdim) const {
  return minidl::sum(*this, std::move(dims), keepdim);
}
Tensor Tensor::mean(std::vector<int64_t> dims, bool keepdim) const {
  return minidl::mean(*this, std::move(dims), keepdim);
}
Tensor Tensor::max(std::vector<int64_t> dims, bool keepdim) const {
  return minidl::max(*this, std::move(dims), keepdim);
}

}  // namespace minidl
