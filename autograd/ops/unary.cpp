// Elementwise unary ops as Functions: neg, exp, log, sqrt, abs, pow (scalar exponent), clamp, relu, sigmoid,
// tanh, and their Tensor member forms. Each forward is one backend.unary call; backward saves the cheapest
// tensor that determines the derivative (the output where it suffices, e.g. exp, sqrt, relu, sigmoid, tanh).
#include "autograd/ops/op_utils.h"

namespace minidl {

using namespace ops_detail;

namespace {

Tensor unary_forward(UnaryOp op, const Tensor& x, const char* name, double a = 0.0, double b = 0.0) {
  check_floating(name, x);
  return unary_raw(op, x, a, b);
}

Tensor mul_raw(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Mul, a, b, "mul"); }

struct NegFn : autograd::Function<NegFn> {
  static constexpr const char* kName = "neg";
  static Tensor forward(Context&, const Tensor& x) { return unary_forward(UnaryOp::Neg, x, kName); }
  static std::vector<Tensor> backward(Context&, std::vector<Tensor> g) { return {unary_raw(UnaryOp::Neg, g[0])}; }
};

struct ExpFn : autograd::Function<ExpFn> {
  static constexpr const char* kName = "exp";
  static Tensor forward(Context& ctx, const Tensor& x) {
    Tensor y = unary_forward(UnaryOp::Exp, x, kName);
    ctx.save(y, SaveKind::Output);
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) { return {mul_raw(g[0], ctx.saved(0))}; }
};

struct LogFn : autograd::Function<LogFn> {
  static constexpr const char* kName = "log";
  static Tensor forward(Context& ctx, const Tensor& x) {
    ctx.save(x);
    return unary_forward(UnaryOp::Log, x, kName);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    return {binary_raw(BinaryOp::Div, g[0], ctx.saved(0), kName)};
  }
};

struct SqrtFn : autograd::Function<SqrtFn> {
  static constexpr const char* kName = "sqrt";
  static Tensor forward(Context& ctx, const Tensor& x) {
    Tensor y = unary_forward(UnaryOp::Sqrt, x, kName);
    ctx.save(y, SaveKind::Output);
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    // d sqrt(x)/dx = 1 / (2 sqrt(x)) = 0.5 / y
    Tensor half_g = unary_raw(UnaryOp::MulScalar, g[0], 0.5);
    return {binary_raw(BinaryOp::Div, half_g, ctx.saved(0), kName)};
  }
};

struct AbsFn : autograd::Function<AbsFn> {
  static constexpr const char* kName = "abs";
  static Tensor forward(Context& ctx, const Tensor& x) {
    ctx.save(x);
    return unary_forward(UnaryOp::Abs, x, kName);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    // Note: subgradient at 0 is 0 (sign(0) = 0), as in PyTorch.
    return {mul_raw(g[0], unary_raw(UnaryOp::Sign, ctx.saved(0)))};
  }
};

struct PowScalarFn : autograd::Function<PowScalarFn> {
  static constexpr const char* kName = "pow";
  static Tensor forward(Context& ctx, const Tensor& x, double p) {
    ctx.save(x);
    ctx.data["p"] = p;
    return unary_forward(UnaryOp::PowScalar, x, kName, p);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    const double p = ctx.get<double>("p");
    Tensor x = ctx.saved(0);
    // x^0 is constant: its gradient is 0 everywhere, even at x = 0 where p * x^(p-1) would be 0 * inf.
    if (p == 0.0) return {zeros(x.sizes(), TensorOptions().dtype(x.dtype()).device(x.device()))};
    Tensor d = p == 1.0 ? Tensor() : unary_raw(UnaryOp::PowScalar, x, p - 1.0);
    if (!d.defined()) return {g[0]};
    return {mul_raw(g[0], unary_raw(UnaryOp::MulScalar, d, p))};
  }
};

struct ClampFn : autograd::Function<ClampFn> {
  static constexpr const char* kName = "clamp";
  static Tensor forward(Context& ctx, const Tensor& x, double lo, double hi) {
    MINIDL_CHECK(lo <= hi, "clamp: lower bound ", lo, " is above upper bound ", hi);
    ctx.save(x);
    ctx.data["lo"] = lo;
    ctx.data["hi"] = hi;
    return unary_forward(UnaryOp::Clamp, x, kName, lo, hi);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    // Note: at a bound (x == lo or x == hi) the gradient passes (1), PyTorch's choice; 0 strictly outside.
    Tensor x = ctx.saved(0);
    Tensor ge = binary_raw(BinaryOp::Ge, x, scalar_like(ctx.get<double>("lo"), x), kName);
    Tensor le = binary_raw(BinaryOp::Le, x, scalar_like(ctx.get<double>("hi"), x), kName);
    return {mul_raw(g[0], mul_raw(ge, le))};
  }
};

struct ReluFn : autograd::Function<ReluFn> {
  static constexpr const char* kName = "relu";
  static Tensor forward(Context& ctx, const Tensor& x) {
    Tensor y = unary_forward(UnaryOp::Relu, x, kName);
    ctx.save(y, SaveKind::Mask);  // read only as y > 0 (exactly where x > 0): a mask
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    // Note: subgradient at 0 is 0 (ReluBackward passes g only where y > 0).
    return {binary_raw(BinaryOp::ReluBackward, g[0], ctx.saved(0), kName)};
  }
};

struct SigmoidFn : autograd::Function<SigmoidFn> {
  static constexpr const char* kName = "sigmoid";
  static Tensor forward(Context& ctx, const Tensor& x) {
    Tensor y = unary_forward(UnaryOp::Sigmoid, x, kName);
    ctx.save(y, SaveKind::Output);
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    return {binary_raw(BinaryOp::SigmoidBackward, g[0], ctx.saved(0), kName)};
  }
};

struct TanhFn : autograd::Function<TanhFn> {
  static constexpr const char* kName = "tanh";
  static Tensor forward(Context& ctx, const Tensor& x) {
    Tensor y = unary_forward(UnaryOp::Tanh, x, kName);
    ctx.save(y, SaveKind::Output);
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    return {binary_raw(BinaryOp::TanhBackward, g[0], ctx.saved(0), kName)};
  }
};

}  // namespace

Tensor neg(const Tensor& x) { return NegFn::apply(x); }
Tensor exp(const Tensor& x) { return ExpFn::apply(x); }
Tensor log(const Tensor& x) { return LogFn::apply(x); }
Tensor pow(const Tensor& x, double exponent) { return PowScalarFn::apply(x, exponent); }
Tensor sqrt(const Tensor& x) { return SqrtFn::apply(x); }
Tensor abs(const Tensor& x) { return AbsFn::apply(x); }
Tensor clamp(const Tensor& x, double lo, double hi) { return ClampFn::apply(x, lo, hi); }
Tensor relu(const Tensor& x) { return ReluFn::apply(x); }
Tensor sigmoid(const Tensor& x) { return SigmoidFn::apply(x); }
Tensor tanh(const Tensor& x) { return TanhFn::apply(x); }

Tensor Tensor::operator-() const { return neg(*this); }
Tensor Tensor::exp() const { return minidl::exp(*this); }
Tensor Tensor::log() const { return minidl::log(*this); }
Tensor Tensor::sqrt() const { return minidl::sqrt(*this); }
Tensor Tensor::abs() const { return minidl::abs(*this); }
Tensor Tensor::pow(double exponent) const { return minidl::pow(*this, exponent); }
Tensor Tensor::relu() const { return minidl::relu(*this); }
Tensor Tensor::sigmoid() const { return minidl::sigmoid(*this); }
Tensor Tensor::tanh() const { return minidl::tanh(*this); }
Tensor Tensor::clamp(double lo, double hi) const { return minidl::clamp(*this, lo, hi); }

}  // namespace minidl
