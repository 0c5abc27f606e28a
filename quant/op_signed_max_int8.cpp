// The first/last layer "8-bit" weights of APoT (spec/quant.md sections 1.9, 4.2): m = max(w) (the signed
// maximum, a constant for autograd), out = round(127 * w / m) / 127 * m in the reference's operation order,
// identity gradient. minidl's default clamps the codes to [-127, 127]; APoT-C (and the released checkpoints)
// does not.
#include "autograd/function.h"
#include "quant/ops.h"
#include "quant/op_utils.h"

namespace minidl::quant {

using namespace detail;

namespace {

struct SignedMaxInt8Fn : autograd::Function<SignedMaxInt8Fn> {
  static constexpr const char* kName = "quant_signed_max_int8";
  static Tensor forward(autograd::Context&, const Tensor& w, bool clamp_codes) {
    check_floating(kName, w);
    MINIDL_CHECK(w.numel() > 0, kName, ": empty weight tensor");
    const Tensor m = reshaped_contiguous(reduce_raw(ReduceOp::Max, w, normalize_dims({}, w.dim(), kName)), {});
    const double mv = m.item<double>();
    MINIDL_CHECK(mv > 0.0 && std::isfinite(mv), kName, ": the largest weight of the tensor of shape ",
                 shape_str(w.sizes()), " is ", mv, "; the signed-max 8-bit rule needs a positive maximum");
    // w.div_raw(max).mul_raw(127).round().div_raw(127).mul_raw(max), as the reference.
    Tensor codes = unary_raw(UnaryOp::Round, unary_raw(UnaryOp::MulScalar, div_raw(w, m), 127.0));
    if (clamp_codes) codes = unary_raw(UnaryOp::Clamp, codes, -127.0, 127.0);
    return mul_raw(div_raw(codes, scalar_like(127.0, w)), m);
  }
  static std::vector<Tensor> backward(autograd::Context&, std::vector<Tensor> g) { return {g[0]}; }
};

}  // namespace

Tensor signed_max_int8(const Tensor& w, bool clamp_codes) { return SignedMaxInt8Fn::apply(w, clamp_codes); }

}  // namespace minidl::quant
