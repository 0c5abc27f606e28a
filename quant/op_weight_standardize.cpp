// Weight normalisation before quantization (spec/quant.md section 1.4): one mean and one unbiased std over the
// whole weight tensor. The statistics are computed in double and rounded to the weight's dtype (as PyTorch's
// float32 mean/std are, up to their last bit), then z = (w - mean) / std in the weight's dtype.
// Backward: detached statistics (APoT-C) give g / std; live statistics (APoT-I) give
// [g - mean(g) - z * sum(g * z) / (N - 1)] / std.
#include "autograd/function.h"
#include "quant/op_utils.h"
#include "quant/ops.h"

namespace minidl::quant {

using namespace detail;

namespace {

struct WeightStandardizeFn : autograd::Function<WeightStandardizeFn> {
  static constexpr const char* kName = "quant_weight_standardize";
  static Tensor forward(autograd::Context& ctx, const Tensor& w, bool detach_stats) {
    check_floating(kName, w);
    const int64_t n = w.numel();
    MINIDL_CHECK(n >= 2, kName, ": needs at least 2 elements for an unbiased std, got shape ", shape_str(w.sizes()));
    // one backend call where the backend has it (the cpu: the same bits), else the primitives
    Tensor z = new_like(w.sizes(), w);
    double mean = 0.0, stdv = 0.0;
    const bool fused = backend_for(w).weight_standardize_forward(z, mean, stdv, w);
    if (!fused) {
      const Tensor w64 = w.dtype() == DType::f64 ? w : w.to(DType::f64);
      const auto all = normalize_dims({}, w.dim(), kName);
      mean = reduce_raw(ReduceOp::Mean, w64, all).item<double>();
      const Tensor centred = binary_raw(BinaryOp::Sub, w64, scalar_like(mean, w64), kName);
      const double ss = reduce_raw(ReduceOp::Sum, unary_raw(UnaryOp::Square, centred), all).item<double>();
      stdv = std::sqrt(ss / static_cast<double>(n - 1));
    }
    MINIDL_CHECK(stdv > 0.0 && std::isfinite(stdv), kName, ": the weight tensor of shape ", shape_str(w.sizes()),
                 " has standard deviation ", stdv, " (constant or non-finite weights cannot be normalised)");
    const Tensor mean_t = scalar_like(mean, w), std_t = scalar_like(stdv, w);
    if (!fused) z = div_raw(sub_raw(w, mean_t), std_t);
    ctx.data["std"] = std_t.item<double>();
    ctx.data["detach"] = detach_stats;
    if (!detach_stats) ctx.save(z, autograd::SaveKind::Parameter);
    return z;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    const double stdv = ctx.get<double>("std");
    const Tensor& gz = g[0];
    if (ctx.get<bool>("detach")) return {unary_raw(UnaryOp::MulScalar, gz, 1.0 / stdv)};
    const Tensor z = ctx.saved(0);
    if (Tensor gw = new_like(gz.sizes(), gz); backend_for(gz).weight_standardize_backward(gw, gz, z, stdv)) return {gw};
    const int64_t n = z.numel();
    const auto all = normalize_dims({}, z.dim(), kName);
    const double gmean = reduce_raw(ReduceOp::Mean, gz, all).item<double>();
    const double gzdot = reduce_raw(ReduceOp::Sum, mul_raw(gz, z), all).item<double>();
    // (g - mean(g) - z * dot / (N - 1)) / std
    Tensor t = sub_raw(gz, unary_raw(UnaryOp::MulScalar, z, gzdot / static_cast<double>(n - 1)));
    t = unary_raw(UnaryOp::Affine, t, 1.0 / stdv, -gmean / stdv);
    return {t};
  }
};

}  // namespace

Tensor weight_standardize(const Tensor& w, bool detach_stats) { return WeightStandardizeFn::apply(w, detach_stats); }

}  // namespace minidl::quant
