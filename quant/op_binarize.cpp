// Binary weights with a per-layer scale (spec/quant.md section 3.3): out = mean(|w|) * sign(w), sign(0) = 0.
// The gradient is the identity straight-through estimator: the reference applies the gradient taken at the
// binarised value to the latent weights unchanged (no clipping, no scale factor).
#include "autograd/function.h"
#include "quant/ops.h"
#include "quant/op_utils.h"

namespace minidl::quant {

using namespace detail;

namespace {

struct BinarizeFn : autograd::Function<BinarizeFn> {
  static constexpr const char* kName = "quant_binarize";
  static Tensor forward(autograd::Context&, const Tensor& w) {
    check_floating(kName, w);
    MINIDL_CHECK(w.numel() > 0, kName, ": empty weight tensor");
    const Tensor scale =
        reshaped_contiguous(reduce_raw(ReduceOp::Mean, unary_raw(UnaryOp::Abs, w), normalize_dims({}, w.dim(), kName)), {});
    return mul_raw(unary_raw(UnaryOp::Sign, w), scale);
  }
  static std::vector<Tensor> backward(autograd::Context&, std::vector<Tensor> g) { return {g[0]}; }
};

}  // namespace

Tensor binarize(const Tensor& w) { return BinarizeFn::apply(w); }

}  // namespace minidl::quant
