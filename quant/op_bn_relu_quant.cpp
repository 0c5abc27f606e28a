// Training batch norm + ReLU + the activation quantizer after it as one op (quant/ops.h: batch_norm_relu_quantize for
// APoT / PoT / uniform, batch_norm_relu_pact for PACT). On the cpu (channels-last float32, C a multiple of 16; a
// levels quantizer needs its AVX2 / AVX-512 kernels) the forward is one
// Backend::batch_norm_relu_quantize_forward_training: the ReLU's output y stays in cache between the batch norm and
// the quantizer and is not kept for backward, which recomputes it from x (the op saves x, the statistics and the
// per-channel affine coefficients, not y: 4 bytes per element less than the two ops). Elsewhere the forward runs
// batch_norm_relu then the quantizer's primitives and keeps y. The backward is one
// Backend::batch_norm_relu_quantize_backward, which the cpu backend interleaves block by block. Either way the
// results are the two ops' bits: tests/quant/test_bn_relu_quant.cpp.
#include <atomic>
#include <limits>

#include "autograd/function.h"
#include "autograd/saved_tensor.h"
#include "backends/codebook.h"
#include "core/env.h"
#include "quant/coded_saves.h"
#include "quant/op_utils.h"
#include "quant/ops.h"

namespace minidl::quant {

using namespace detail;

namespace {

std::atomic<bool>& fused_flag() {
  static std::atomic<bool> on{env_string("MINIDL_QAT_FUSE_BN").value_or("1") != "0"};
  return on;
}

// The quantizer after the ReLU, as the op records it (alpha and the levels are tensors it saves).
struct QuantizerDesc {
  const LevelSet* levels = nullptr;  // quantize_clip's level set (PACT: null)
  double lo = 0;                     // quantize_clip's lower clip bound
  double pact_k = 0;                 // > 0: PACT with this grid maximum
};

// Inputs x, weight, bias, alpha; outputs q, the batch mean and the inverse std (the last two for the running
// statistics, not differentiable). Saves x, weight, the statistics, alpha and the levels, and either y (the ReLU's
// output: its mask and the quantizer's input) or the coefficients to recompute it from x.
struct BnReluQuantFn : autograd::Function<BnReluQuantFn> {
  static constexpr const char* kName = "batch_norm_relu_quantize";
  static std::vector<Tensor> forward(autograd::Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                     const Tensor& alpha, double eps, const QuantizerDesc& desc, double grad_scale,
                                     CodedTensor* coded) {
    const int64_t c = x.size(1);
    Backend& be = backend_for(x);
    checked_alpha(kName, x, alpha);
    ActQuantizer quantizer;
    quantizer.alpha = alpha_scalar(alpha);
    quantizer.pact_k = desc.pact_k;
    if (!quantizer.is_pact()) {
      quantizer.levels = desc.levels->rounding ? Tensor() : levels_like(*desc.levels, x);
      quantizer.steps = static_cast<double>(desc.levels->steps);
      quantizer.lo = desc.lo;
      quantizer.hi = 1.0;
    }
    const Tensor& a = quantizer.alpha;
    const MemoryFormat fmt = follow_format(x.sizes(), {x});
    Tensor q = new_like(x.sizes(), x, fmt);
    Tensor mean = new_like({c}, x), invstd = new_like({c}, x);
    // the codes only where the code book lists exactly the values the kernel computes
    Tensor book;
    if (coded != nullptr)
      book = quantizer.is_pact() ? pact_forward_codebook(a, quantizer.pact_k)
                                 : quantize_clip_codebook(a, quantizer.levels, quantizer.steps);
    Tensor codes =
        book.defined() ? empty(x.sizes(), TensorOptions().dtype(DType::u8).device(x.device()), fmt) : Tensor();
    Tensor y, y_scale = new_like({c}, x), y_shift = new_like({c}, x);
    if (!be.batch_norm_relu_quantize_forward_training(q, codes, mean, invstd, y_scale, y_shift, x, weight, bias, eps,
                                                      quantizer, ctx.op_state)) {
      // batch_norm_relu's training op, then the quantizer's, as they run without saved-tensor hooks
      y_scale = y_shift = Tensor();
      y = new_like(x.sizes(), x, follow_format(x.sizes(), {x}));
      be.batch_norm_relu_forward_training(y, mean, invstd, x, weight, bias, eps, ctx.op_state);
      const ActQuantizer& Q = quantizer;
      Tensor no_mask, no_coef;
      if (codes.defined()) {
        const bool all_coded = Q.is_pact()
                                   ? be.pact_forward_coded(q, codes, y, a, Q.pact_k)
                                   : be.quantize_clip_forward_coded(q, codes, y, a, Q.levels, Q.steps, Q.lo, Q.hi);
        if (!all_coded) codes = Tensor();
      } else if (Q.is_pact()) {
        be.pact_forward(q, no_mask, no_coef, y, a, Q.pact_k);
      } else {
        be.quantize_clip_forward(q, no_mask, no_coef, y, a, Q.levels, Q.steps, Q.lo, Q.hi);
      }
    }
    if (coded != nullptr) *coded = codes.defined() ? CodedTensor{codes, book} : CodedTensor{};
    ctx.save(x, autograd::SaveKind::Activation);
    ctx.save(weight, autograd::SaveKind::Parameter);
    ctx.save(mean, autograd::SaveKind::Statistic);
    ctx.save(invstd, autograd::SaveKind::Statistic);
    ctx.save(y, autograd::SaveKind::Activation);
    ctx.save(a, autograd::SaveKind::Parameter);
    ctx.save(quantizer.levels, autograd::SaveKind::Parameter);
    ctx.save(y_scale, autograd::SaveKind::Statistic);
    ctx.save(y_shift, autograd::SaveKind::Statistic);
    // a level set's codes are its level indices: backward reads them instead of searching the levels again (the
    // same tensor the conv after this op saves, so no memory more)
    ctx.save(quantizer.levels.defined() ? codes : Tensor(), autograd::SaveKind::Index);
    ctx.data["eps"] = eps;
    ctx.data["steps"] = quantizer.steps;
    ctx.data["lo"] = quantizer.lo;
    ctx.data["pact_k"] = quantizer.pact_k;
    ctx.data["grad_scale"] = grad_scale;
    ctx.data["alpha_shape"] = alpha.sizes();
    ctx.mark_non_differentiable(mean);
    ctx.mark_non_differentiable(invstd);
    return {q, mean, invstd};
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> grads) {
    const Tensor x = ctx.saved(0), weight = ctx.saved(1), mean = ctx.saved(2), invstd = ctx.saved(3);
    const Tensor saved_y = ctx.saved(4);
    const Tensor y = saved_y.defined() ? in_forward_layout(saved_y) : Tensor();
    ActQuantizer quantizer;
    quantizer.alpha = ctx.saved(5);
    quantizer.levels = ctx.saved(6);
    quantizer.steps = ctx.get<double>("steps");
    quantizer.lo = ctx.get<double>("lo");
    quantizer.hi = 1.0;
    quantizer.pact_k = ctx.get<double>("pact_k");
    const Tensor y_scale = ctx.saved(7), y_shift = ctx.saved(8), codes = ctx.saved(9);
    Tensor gx, gw, gb, ga;
    // gx over the incoming gradient when this backward owns it alone (both kernels read an element before
    // writing it), as the two ops did
    const MemoryFormat x_format = follow_format(x.sizes(), {x, grads[0]});
    if (ctx.needs_input_grad(0)) gx = reuse_or_new(grads[0], x.sizes(), grads[0], x_format);
    if (ctx.needs_input_grad(1)) gw = new_like({x.size(1)}, grads[0]);
    if (ctx.needs_input_grad(2)) gb = new_like({x.size(1)}, grads[0]);
    if (ctx.needs_input_grad(3)) ga = new_like(ctx.get<Shape>("alpha_shape"), grads[0]);
    backend_for(grads[0]).batch_norm_relu_quantize_backward(
        gx, gw, gb, ga, grads[0], y, x, mean, invstd, weight, ctx.get<double>("eps"), quantizer,
        ctx.get<double>("grad_scale"), y_scale, y_shift, codes, ctx.op_state);
    return {gx, gw, gb, ga};
  }
};

// The checks both entry points share; returns the values per channel.
int64_t checked_bn_input(const char* op, const Tensor& x) {
  MINIDL_CHECK(x.defined() && x.dim() == 4, op, ": expected an (N, C, H, W) input, got ",
               x.defined() ? shape_str(x.sizes()) : "undefined");
  const int64_t n = x.numel() / x.size(1);
  MINIDL_CHECK(n > 1, op, ": expected more than 1 value per channel when training, got input ", shape_str(x.sizes()));
  return n;
}

}  // namespace

bool fused_bn_relu_quantize() { return fused_flag().load(std::memory_order_relaxed); }
void set_fused_bn_relu_quantize(bool on) { fused_flag().store(on, std::memory_order_relaxed); }

Tensor batch_norm_relu_quantize(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                                const Tensor& weight, const Tensor& bias, double momentum, double eps,
                                const Tensor& alpha, const LevelSet& levels, Semantics sem, double grad_scale,
                                CodedTensor* coded) {
  const int64_t n = checked_bn_input("batch_norm_relu_quantize", x);
  MINIDL_CHECK(!levels.is_signed, "batch_norm_relu_quantize: activations need an unsigned level set, got ",
               levels.str());
  QuantizerDesc desc;
  desc.levels = &levels;
  desc.lo = sem == Semantics::APoT_I ? 0.0 : -std::numeric_limits<double>::infinity();
  std::vector<Tensor> outs = BnReluQuantFn::apply(x, weight, bias, alpha, eps, desc, grad_scale, coded);
  update_running_stats(running_mean, running_var, outs[1], outs[2], n, momentum, eps);
  return outs[0];
}

Tensor batch_norm_relu_pact(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                            const Tensor& weight, const Tensor& bias, double momentum, double eps, const Tensor& alpha,
                            int bits, CodedTensor* coded) {
  const int64_t n = checked_bn_input("batch_norm_relu_pact", x);
  QuantizerDesc desc;
  desc.pact_k = static_cast<double>(grid_max("batch_norm_relu_pact", bits));
  std::vector<Tensor> outs = BnReluQuantFn::apply(x, weight, bias, alpha, eps, desc, 1.0, coded);
  update_running_stats(running_mean, running_var, outs[1], outs[2], n, momentum, eps);
  return outs[0];
}

}  // namespace minidl::quant
