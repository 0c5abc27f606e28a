// Broadcasting binary arithmetic (add, sub, mul, div, pow) and the scalar forms of + - * /, as Functions.
// Forward passes the inputs to backend.binary as stride-0 broadcast views of the output shape; backward sums
// each gradient back down to its input's shape with sum_to (the reverse of broadcasting).
#include "autograd/ops/op_utils.h"

namespace minidl {

using namespace ops_detail;

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    // Align from the right; a missing leading dim acts as 1.
    const int64_t x = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t y = i < r - b.size() ? 1 : b[i - (r - b.size())];
    MINIDL_CHECK(x == y || x == 1 || y == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                 " cannot be broadcast");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.sizes() == shape) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  MINIDL_CHECK(lead >= 0, "sum_to: cannot sum ", shape_str(g.sizes()), " down to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t i = 0; i < g.dim(); ++i) {
    if (i < lead) {
      dims.push_back(i);
      continue;
    }
    const int64_t target = shape[static_cast<size_t>(i - lead)];
    if (target == g.size(i)) continue;
    MINIDL_CHECK(target == 1, "sum_to: cannot sum ", shape_str(g.sizes()), " down to ", shape_str(shape));
    dims.push_back(i);
  }
  if (dims.empty()) return reshaped_contiguous(g.contiguous(), shape);
  Tensor r = reduce_raw(ReduceOp::Sum, g, dims);
  return reshaped_contiguous(r, shape);
}

namespace {

// Shared forward for the broadcasting binaries; saves nothing (each op saves what its backward needs).
Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_floating(name, a);
  check_floating(name, b);
  return binary_raw(op, a, b, name);
}

struct AddFn : autograd::Function<AddFn> {
  static constexpr const char* kName = "add";
  static Tensor forward(Context& ctx, const Tensor& a, const Tensor& b) {
    ctx.data["a"] = a.sizes();
    ctx.data["b"] = b.sizes();
    return binary_forward(BinaryOp::Add, a, b, kName);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor ga, gb;
    if (ctx.needs_input_grad(0)) ga = sum_to(g[0], ctx.get<Shape>("a"));
    if (ctx.needs_input_grad(1)) gb = sum_to(g[0], ctx.get<Shape>("b"));
    return {ga, gb};
  }
};

struct SubFn : autograd::Function<SubFn> {
  static constexpr const char* kName = "sub";
  static Tensor forward(Context& ctx, const Tensor& a, const Tensor& b) {
    ctx.data["a"] = a.sizes();
    ctx.data["b"] = b.sizes();
    return binary_forward(BinaryOp::Sub, a, b, kName);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor ga, gb;
    if (ctx.needs_input_grad(0)) ga = sum_to(g[0], ctx.get<Shape>("a"));
    if (ctx.needs_input_grad(1)) gb = unary_raw(UnaryOp::Neg, sum_to(g[0], ctx.get<Shape>("b")));
    return {ga, gb};
  }
};

struct MulFn : autograd::Function<MulFn> {
  static constexpr const char* kName = "mul";
  static Tensor forward(Context& ctx, const Tensor& a, const Tensor& b) {
    // d/da needs b and d/db needs a: save only what a needed gradient uses.
    ctx.save(ctx.needs_input_grad(1) ? a : Tensor());
    ctx.save(ctx.needs_input_grad(0) ? b : Tensor());
    ctx.data["a"] = a.sizes();
    ctx.data["b"] = b.sizes();
    return binary_forward(BinaryOp::Mul, a, b, kName);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor ga, gb;
    if (ctx.needs_input_grad(0)) ga = sum_to(binary_raw(BinaryOp::Mul, g[0], ctx.saved(1), kName), ctx.get<Shape>("a"));
    if (ctx.needs_input_grad(1)) gb = sum_to(binary_raw(BinaryOp::Mul, g[0], ctx.saved(0), kName), ctx.get<Shape>("b"));
    return {ga, gb};
  }
};

struct DivFn : autograd::Function<DivFn> {
  static constexpr const char* kName = "div";
  static Tensor forward(Context& ctx, const Tensor& a, const Tensor& b) {
    Tensor y = binary_forward(BinaryOp::Div, a, b, kName);
    ctx.save(b);
    ctx.save(ctx.needs_input_grad(1) ? y : Tensor(), SaveKind::Output);
    ctx.data["a"] = a.sizes();
    ctx.data["b"] = b.sizes();
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor b = ctx.saved(0);
    Tensor ga, gb;
    Tensor g_over_b = binary_raw(BinaryOp::Div, g[0], b, kName);
    if (ctx.needs_input_grad(0)) ga = sum_to(g_over_b, ctx.get<Shape>("a"));
    // d(a/b)/db = -a/b^2 = -y/b, so gb = -(g/b) * y.
    if (ctx.needs_input_grad(1)) {
      Tensor t = binary_raw(BinaryOp::Mul, g_over_b, ctx.saved(1), kName);
      gb = unary_raw(UnaryOp::Neg, sum_to(t, ctx.get<Shape>("b")));
    }
    return {ga, gb};
  }
};

struct PowFn : autograd::Function<PowFn> {
  static constexpr const char* kName = "pow";
  static Tensor forward(Context& ctx, const Tensor& a, const Tensor& b) {
    Tensor y = binary_forward(BinaryOp::Pow, a, b, kName);
    ctx.save(a);
    ctx.save(b);
    ctx.save(ctx.needs_input_grad(1) ? y : Tensor(), SaveKind::Output);
    ctx.data["a"] = a.sizes();
    ctx.data["b"] = b.sizes();
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor a = ctx.saved(0), b = ctx.saved(1);
    Tensor ga, gb;
    if (ctx.needs_input_grad(0)) {
      // d(a^b)/da = b * a^(b-1)
      Tensor bm1 = unary_raw(UnaryOp::AddScalar, b, -1.0);
      Tensor t = binary_raw(BinaryOp::Mul, b, binary_raw(BinaryOp::Pow, a, bm1, kName), kName);
      ga = sum_to(binary_raw(BinaryOp::Mul, g[0], t, kName), ctx.get<Shape>("a"));
    }
    if (ctx.needs_input_grad(1)) {
      // d(a^b)/db = a^b * log(a) (NaN for a negative base, as in PyTorch).
      Tensor t = binary_raw(BinaryOp::Mul, ctx.saved(2), unary_raw(UnaryOp::Log, a), kName);
      gb = sum_to(binary_raw(BinaryOp::Mul, g[0], t, kName), ctx.get<Shape>("b"));
    }
    return {ga, gb};
  }
};

// y = x * scale + shift: the scalar forms of + - * (gradient g * scale).
struct AffineFn : autograd::Function<AffineFn> {
  static constexpr const char* kName = "affine";
  static Tensor forward(Context& ctx, const Tensor& x, double scale, double shift) {
    check_floating("affine", x);
    ctx.data["scale"] = scale;
    if (scale == 1.0) return unary_raw(UnaryOp::AddScalar, x, shift);
    if (shift == 0.0) return unary_raw(UnaryOp::MulScalar, x, scale);
    return unary_raw(UnaryOp::Affine, x, scale, shift);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    const double scale = ctx.get<double>("scale");
    if (scale == 1.0) return {g[0]};
    return {unary_raw(UnaryOp::MulScalar, g[0], scale)};
  }
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return AddFn::apply(a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return SubFn::apply(a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return MulFn::apply(a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return DivFn::apply(a, b); }
Tensor pow(const Tensor& base, const Tensor& exponent) { return PowFn::apply(base, exponent); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }

Tensor operator+(const Tensor& a, double s) { return AffineFn::apply(a, 1.0, s); }
Tensor operator-(const Tensor& a, double s) { return AffineFn::apply(a, 1.0, -s); }
Tensor operator*(const Tensor& a, double s) { return AffineFn::apply(a, s, 0.0); }
// Division by a scalar divides exactly (a broadcast 0-dim divisor), rather than multiplying by a rounded 1/s.
Tensor operator/(const Tensor& a, double s) { return div(a, scalar_like(s, a)); }
Tensor operator+(double s, const Tensor& a) { return AffineFn::apply(a, 1.0, s); }
Tensor operator-(double s, const Tensor& a) { return AffineFn::apply(a, -1.0, s); }
Tensor operator*(double s, const Tensor& a) { return AffineFn::apply(a, s, 0.0); }
Tensor operator/(double s, const Tensor& a) { return div(scalar_like(s, a), a); }

}  // namespace minidl
