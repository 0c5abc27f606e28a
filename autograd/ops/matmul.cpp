// matmul ((M,K)@(K,N), (B,M,K)@(B,K,N), (B,M,K)@(K,N)) and linear (x @ w^T + b) as Functions.
// Transposes are never materialised: backward passes trans_a / trans_b to backend.matmul. A (B,M,K)@(K,N)
// product is computed as one (B*M,K)@(K,N) gemm, which also makes its weight gradient a single gemm.
#include "autograd/ops/op_utils.h"

namespace minidl {

using namespace ops_detail;

namespace {

Tensor matmul_raw(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const int64_t r = a.dim();
  const int64_t m = ta ? a.size(r - 1) : a.size(r - 2);
  const int64_t n = tb ? b.size(r - 2) : b.size(r - 1);
  Shape s = r == 3 ? Shape{a.size(0), m, n} : Shape{m, n};
  Tensor out = new_like(s, a);
  backend_for(a).matmul(out, a, b, ta, tb);
  return out;
}

/// A (rows*cols...) tensor viewed as 2-D (prod of leading dims, last dim); copies only if not viewable.
Tensor as_2d(const Tensor& t) {
  Tensor c = t.is_contiguous() ? t : t.contiguous();
  return reshaped_contiguous(c, {t.numel() / t.size(-1), t.size(-1)});
}

void check_matmul(const Tensor& a, const Tensor& b) {
  check_floating("matmul", a);
  check_floating("matmul", b);
  check_compatible("matmul", a, b);
  const bool ok_rank = (a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && (b.dim() == 3 || b.dim() == 2));
  MINIDL_CHECK(ok_rank, "matmul: shapes ", shape_str(a.sizes()), " and ", shape_str(b.sizes()),
               " are not supported (expected (M,K)@(K,N), (B,M,K)@(B,K,N) or (B,M,K)@(K,N))");
  const int64_t ka = a.size(-1), kb = b.size(-2);
  MINIDL_CHECK(ka == kb, "matmul: shapes ", shape_str(a.sizes()), " and ", shape_str(b.sizes()), " are incompatible (",
               ka, " != ", kb, ")");
  if (a.dim() == 3 && b.dim() == 3) {
    MINIDL_CHECK(a.size(0) == b.size(0), "matmul: shapes ", shape_str(a.sizes()), " and ", shape_str(b.sizes()),
                 " have different batch sizes (", a.size(0), " != ", b.size(0), ")");
  }
}

struct MatmulFn : autograd::Function<MatmulFn> {
  static constexpr const char* kName = "matmul";
  static Tensor forward(Context& ctx, const Tensor& a, const Tensor& b) {
    check_matmul(a, b);
    ctx.save(ctx.needs_input_grad(1) ? a : Tensor());
    ctx.save(ctx.needs_input_grad(0) ? b : Tensor());
    ctx.data["fold"] = a.dim() == 3 && b.dim() == 2;
    if (a.dim() == 3 && b.dim() == 2) {
      Tensor out = matmul_raw(as_2d(a), b, false, false);
      return reshaped_contiguous(out, {a.size(0), a.size(1), b.size(1)});
    }
    return matmul_raw(a, b, false, false);
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> grads) {
    Tensor a = ctx.saved(0), b = ctx.saved(1);
    const Tensor& g = grads[0];
    Tensor ga, gb;
    if (ctx.get<bool>("fold")) {
      // (B,M,K)@(K,N): fold the batch into rows.
      Tensor g2 = as_2d(g);
      if (ctx.needs_input_grad(0)) {
        ga = reshaped_contiguous(matmul_raw(g2, b, false, true), {g.size(0), g.size(1), b.size(0)});
      }
      if (ctx.needs_input_grad(1)) gb = matmul_raw(as_2d(a), g2, true, false);
      return {ga, gb};
    }
    if (ctx.needs_input_grad(0)) ga = matmul_raw(g, b, false, true);  // g @ b^T
    if (ctx.needs_input_grad(1)) gb = matmul_raw(a, g, true, false);  // a^T @ g
    return {ga, gb};
  }
};

struct LinearFn : autograd::Function<LinearFn> {
  static constexpr const char* kName = "linear";
  static Tensor forward(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias) {
    check_floating("linear", x);
    check_floating("linear", w);
    check_compatible("linear", x, w);
    MINIDL_CHECK(x.dim() == 2 && w.dim() == 2, "linear: expected input (N, in) and weight (out, in), got ",
                 shape_str(x.sizes()), " and ", shape_str(w.sizes()));
    MINIDL_CHECK(x.size(1) == w.size(1), "linear: input ", shape_str(x.sizes()), " has ", x.size(1),
                 " features but weight ", shape_str(w.sizes()), " expects ", w.size(1));
    if (bias.defined()) {
      check_compatible("linear", x, bias);
      MINIDL_CHECK(bias.dim() == 1 && bias.size(0) == w.size(0), "linear: bias ", shape_str(bias.sizes()),
                   " does not match weight ", shape_str(w.sizes()), " (expected [", w.size(0), "])");
    }
    ctx.save(ctx.needs_input_grad(1) ? x : Tensor(), SaveKind::Activation);  // the input, whatever its grad flags
    ctx.save(w, SaveKind::Parameter);  // alive anyway as a parameter: saving it costs nothing
    Tensor y = matmul_raw(x, w, false, true);
    if (bias.defined()) backend_for(y).binary(BinaryOp::Add, y, y, broadcast_view(bias, y.sizes()));
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> grads) {
    const Tensor& g = grads[0];
    Tensor x = ctx.saved(0), w = ctx.saved(1);  // unpack every saved tensor (hooks see each round-trip)
    Tensor gx, gw, gb;
    if (ctx.needs_input_grad(0)) gx = matmul_raw(g, w, false, false);  // g @ w
    if (ctx.needs_input_grad(1)) gw = matmul_raw(g, x, true, false);   // g^T @ x
    if (ctx.needs_input_grad(2)) gb = reshaped_contiguous(reduce_raw(ReduceOp::Sum, g, {0}), {g.size(1)});
    return {gx, gw, gb};
  }
};

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) { return MatmulFn::apply(a, b); }
Tensor Tensor::matmul(const Tensor& other) const { return minidl::matmul(*this, other); }

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (x.dim() == 1) return LinearFn::apply(x.unsqueeze(0), w, b).squeeze(0);  // one sample (in)
  // Extra leading dims (..., in) are folded into rows and restored after.
  if (x.dim() > 2) {
    Shape out = x.sizes();
    out.back() = w.dim() == 2 ? w.size(0) : -1;
    return LinearFn::apply(x.reshape({-1, x.size(-1)}), w, b).reshape(out);
  }
  return LinearFn::apply(x, w, b);
}

}  // namespace minidl
