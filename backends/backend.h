// The Backend interface: one entry per primitive family, forward/backward pairs for heavy primitives.
//
// Notes for implementers (every backend, ref, cpu and cuda, follows these):
// - Kernels OVERWRITE their outputs; only autograd accumulates gradients.
// - Outputs are allocated by the caller, contiguous (or channels-last, only for a backend that asks for it:
//   prefers_channels_last), with the right shape and dtype. Inputs may be arbitrary
//   strided views (including stride-0 broadcast views); a backend that needs contiguous inputs makes them so.
// - Elementwise inputs arrive already broadcast to the output's shape (stride 0 where expanded).
// - An op a backend cannot do throws minidl::Error naming the op and the backend: never a silent fallback.
// - Heavy primitives may keep backend-private data between forward and backward in an OpState.
// - Backends never see autograd: no grad_fn, no tape, no requires_grad here.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "backends/actnn_codec.h"
#include "backends/op_params.h"
#include "backends/optim_params.h"
#include "tensor/tensor.h"

namespace minidl {

/// Opaque per-call state a backend carries from a forward primitive to its backward (oneDNN workspace, ...).
struct OpState {
  virtual ~OpState() = default;
};
using OpStatePtr = std::shared_ptr<OpState>;

enum class OpKind : uint8_t {
  Fill,
  Copy,
  Unary,
  Binary,
  Reduce,
  Matmul,
  Conv2d,
  BatchNorm,
  MaxPool2d,
  AvgPool2d,
  AdaptiveAvgPool2d,
  LogSoftmax,
  NllLoss,
  Quantize,
  OptimUpdate,  // sgd_update, adam_update, hysteresis_update
  kCount
};
const char* op_name(OpKind k);

/// An activation quantizer as the batch norm + ReLU + quantizer primitives take it: quantize_clip's (alpha, levels
/// or the uniform grid of `steps`, the clip range [lo, hi]) or, with pact_k > 0, PACT's (alpha and the grid maximum
/// k = 2^bits - 1; levels, steps, lo and hi unused).
struct ActQuantizer {
  Tensor alpha, levels;
  double steps = 0, lo = 0, hi = 1;
  double pact_k = 0;
  bool is_pact() const { return pact_k > 0; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual bool supports(OpKind op, DType dtype) const = 0;
  /// True when this backend's kernels are fastest on channels-last 4-D activations of this dtype: the autograd
  /// ops then allocate conv outputs channels-last, and ops that follow (batch norm, elementwise, their
  /// gradients) keep their input's layout. Kernels of such a backend accept channels-last outputs for those ops
  /// (see MemoryFormat in tensor.h); other backends always get contiguous outputs.
  virtual bool prefers_channels_last(DType /*dtype*/) const { return false; }
  /// The layout a conv2d output of this shape should get (the layout the network then runs in until the next
  /// conv). Default: contiguous, or channels-last when prefers_channels_last(dtype).
  virtual MemoryFormat conv_output_format(const Shape& /*y_shape*/, DType dtype) const {
    return prefers_channels_last(dtype) ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
  }

  // ---- data movement: all dtypes ----
  virtual void fill(Tensor& out, double value) = 0;
  /// dst[i] = cast(src[i]); shapes equal, any strides, any dtypes, same device. A device backend (cuda) also
  /// copies between the host and its device when both sides are contiguous and of the same dtype.
  virtual void copy(Tensor& dst, const Tensor& src) = 0;

  // ---- elementwise (floating dtypes) ----
  virtual void unary(UnaryOp op, Tensor& out, const Tensor& in, const UnaryParams& p) = 0;
  virtual void binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) = 0;
  /// out has in's rank with every dim in `dims` (sorted, unique, non-negative) set to 1 (the keepdim shape);
  /// out = reduction of in over `dims`. Mean divides by the product of the reduced extents.
  virtual void reduce(ReduceOp op, Tensor& out, const Tensor& in, std::span<const int64_t> dims) = 0;

  // ---- linear algebra ----
  /// out (M,N) = op(a) (M,K) @ op(b) (K,N), op = transpose when trans_*; also batched: (B,M,K)@(B,K,N).
  virtual void matmul(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) = 0;

  // ---- convolution: x (N,C,H,W), w (K,C/groups,R,S), bias (K) or undefined, y (N,K,P,Q) ----
  virtual void conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                              OpStatePtr& state) = 0;
  virtual void conv2d_backward_data(Tensor& gx, const Tensor& gy, const Tensor& w, const Conv2dParams& p,
                                    OpStatePtr& state) = 0;
  /// gw (K,C/groups,R,S); gbias (K) when defined.
  virtual void conv2d_backward_weight(Tensor& gw, Tensor& gbias, const Tensor& gy, const Tensor& x,
                                      const Conv2dParams& p, OpStatePtr& state) = 0;
  /// Inference only: y = conv(x, w) + bias [+ residual] [then ReLU], residual (y's shape) optional. The caller
  /// folds an eval-mode batch norm into w and bias. The base class composes conv2d_forward, binary Add and unary
  /// Relu (so every backend has it); fast backends override it with one fused kernel (oneDNN post-ops).
  virtual void conv2d_inference(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                                const Tensor& residual, bool relu);

  // ---- batch norm over (N,C,H,W) or (N,C); weight/bias (C) may be undefined (= 1 / 0) ----
  /// Training: y, and the batch mean and inverse std (biased variance) saved for backward. Running stats are
  /// updated by the caller.
  virtual void batch_norm_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                           const Tensor& weight, const Tensor& bias, double eps, OpStatePtr& state) = 0;
  virtual void batch_norm_forward_inference(Tensor& y, const Tensor& x, const Tensor& running_mean,
                                            const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                                            double eps) = 0;
  /// gweight/gbias written when defined.
  virtual void batch_norm_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& x,
                                   const Tensor& save_mean, const Tensor& save_invstd, const Tensor& weight, double eps,
                                   OpStatePtr& state) = 0;
  /// Training batch norm with the ReLU that follows it in most networks: y = max(bn(x), 0). The base class runs
  /// batch_norm_forward_training then an in-place ReLU; fast backends fuse them (one pass less over y).
  virtual void batch_norm_relu_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                                const Tensor& weight, const Tensor& bias, double eps,
                                                OpStatePtr& state);
  /// Its backward from y (the ReLU output): gy masked by y > 0, then batch_norm_backward. The base class runs
  /// them as two primitives; fast backends fuse the mask into the batch-norm passes.
  virtual void batch_norm_relu_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& y,
                                        const Tensor& x, const Tensor& save_mean, const Tensor& save_invstd,
                                        const Tensor& weight, double eps, OpStatePtr& state);
  /// The same backward without y: the ReLU's mask recomputed from x (x * a + sh > 0, with the affine coefficients
  /// the forward call left in `state`: the same arithmetic, so the same mask), one activation-sized stream less per
  /// pass. Only for x exactly as the forward call read it (the op asks this only when its saved tensors are kept as
  /// they are, no pack hook). Returns false, having done nothing, when the backend or this call cannot (the base
  /// class always; then call batch_norm_relu_backward with y).
  virtual bool batch_norm_relu_backward_from_input(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy,
                                                   const Tensor& x, const Tensor& save_mean, const Tensor& save_invstd,
                                                   const Tensor& weight, double eps, OpStatePtr& state) {
    (void)gx, (void)gweight, (void)gbias, (void)gy, (void)x, (void)save_mean, (void)save_invstd, (void)weight,
        (void)eps, (void)state;
    return false;
  }
  /// The tail of a residual block in training: y = max(bn(x) + residual, 0), batch statistics as in
  /// batch_norm_forward_training; residual has x's shape, any layout, and does not alias y. The base class runs
  /// batch_norm_forward_training, binary Add and unary Relu; fast backends fuse them into the affine pass.
  virtual void batch_norm_add_relu_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                                    const Tensor& residual, const Tensor& weight, const Tensor& bias,
                                                    double eps, OpStatePtr& state);
  /// Its backward from y: m = gy masked by y > 0; gresidual = m, and gx / gweight / gbias are batch_norm_backward
  /// of m. Each output is written only when defined. The base class runs ReluBackward then batch_norm_backward.
  virtual void batch_norm_add_relu_backward(Tensor& gx, Tensor& gresidual, Tensor& gweight, Tensor& gbias,
                                            const Tensor& gy, const Tensor& y, const Tensor& x, const Tensor& save_mean,
                                            const Tensor& save_invstd, const Tensor& weight, double eps,
                                            OpStatePtr& state);
  /// Training batch norm + ReLU + the activation quantizer after it in one pass: q = quantizer(y) of
  /// y = relu(batch_norm(x)), with the quantizer's codes (quantize_clip_forward_coded's or pact_forward_coded's)
  /// into `codes` when it is defined (left undefined on return when some element has no code), the batch statistics
  /// into save_mean / save_invstd, and into y_scale / y_shift the per-channel a, sh of y = relu(x * a + sh) as the
  /// forward computed it, so that the backward can recompute y from x instead of keeping it. Returns false, writing
  /// nothing, when this backend has no such pass for these operands (the base class: never); the caller then runs
  /// batch_norm_relu_forward_training and the quantizer's forward and keeps y.
  virtual bool batch_norm_relu_quantize_forward_training(Tensor& q, Tensor& codes, Tensor& save_mean,
                                                         Tensor& save_invstd, Tensor& y_scale, Tensor& y_shift,
                                                         const Tensor& x, const Tensor& weight, const Tensor& bias,
                                                         double eps, const ActQuantizer& quantizer, OpStatePtr& state);
  /// Its backward, from g = dL/dq: gq and galpha as the quantizer's backward from its input y
  /// (quantize_clip_backward_from_input or pact_backward_from_input, galpha times scale), then
  /// batch_norm_relu_backward(gx, gweight, gbias, gq, y, x, ...). gx may be g itself. y undefined: recomputed from
  /// x, y_scale and y_shift (after the fused forward above; backends without that forward need y). codes (when
  /// defined): the forward's codes of q, which a backend may read in place of the quantizer's level search (the same
  /// results). The base class runs the two primitives; the cpu backend interleaves them block by block.
  virtual void batch_norm_relu_quantize_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, Tensor& galpha,
                                                 const Tensor& g, const Tensor& y, const Tensor& x,
                                                 const Tensor& save_mean, const Tensor& save_invstd,
                                                 const Tensor& weight, double eps, const ActQuantizer& quantizer,
                                                 double scale, const Tensor& y_scale, const Tensor& y_shift,
                                                 const Tensor& codes, OpStatePtr& state);

  // ---- pooling over (N,C,H,W) ----
  /// indices (i64, same shape as y): flat h*W+w position of the max inside the input plane.
  virtual void max_pool2d_forward(Tensor& y, Tensor& indices, const Tensor& x, const Pool2dParams& p) = 0;
  virtual void max_pool2d_backward(Tensor& gx, const Tensor& gy, const Tensor& indices, const Pool2dParams& p) = 0;
  virtual void avg_pool2d_forward(Tensor& y, const Tensor& x, const Pool2dParams& p) = 0;
  virtual void avg_pool2d_backward(Tensor& gx, const Tensor& gy, const Pool2dParams& p) = 0;
  /// PyTorch's adaptive average pooling: output cell i covers [floor(i*H/P), ceil((i+1)*H/P)).
  virtual void adaptive_avg_pool2d_forward(Tensor& y, const Tensor& x) = 0;
  virtual void adaptive_avg_pool2d_backward(Tensor& gx, const Tensor& gy) = 0;

  // ---- softmax and loss over the last dim of (N, C) ----
  virtual void log_softmax_forward(Tensor& y, const Tensor& x) = 0;
  /// gx = gy - exp(y) * sum(gy) per row.
  virtual void log_softmax_backward(Tensor& gx, const Tensor& gy, const Tensor& y) = 0;
  /// loss (0-dim) = mean over rows of -( (1-s) * logp[n, t_n] + s/C * sum_c logp[n, c] ); target i64 (N).
  virtual void nll_loss_forward(Tensor& loss, const Tensor& logp, const Tensor& target, double label_smoothing) = 0;
  /// glogp (N,C) = gloss * d(loss)/d(logp); gloss is a 0-dim tensor.
  virtual void nll_loss_backward(Tensor& glogp, const Tensor& gloss, const Tensor& target, double label_smoothing) = 0;

  // ---- quantization ----
  /// out[i] = the element of `levels` (1-D, sorted ascending, same dtype as x) nearest to x[i]; ties go to the
  /// lower level; below the first / above the last level clamps to it. With `symmetric`, out = sign(x) *
  /// nearest(|x|) (signed weights from a non-negative level set). A binary search over midpoints, not a scan.
  /// The base class implements it on host memory (the reference); fast backends override it.
  virtual void project_to_levels(Tensor& out, const Tensor& x, const Tensor& levels, bool symmetric);
  /// The activation quantizer's clip-and-quantize in one pass (spec/quant.md section 1.7). With a = alpha (one
  /// element, x's dtype), v = x / a and c = min(max(v, lo), hi): out = q * a, q = project_to_levels(c, levels)
  /// (unsigned), or nearbyint(c * steps) / steps when `levels` is undefined (the uniform path). When defined,
  /// mask (u8) = 1[v == c] (the straight-through mask) and coef (x's dtype) = q - v * mask (d out / d a).
  /// out, mask and coef have x's shape and one layout. The base class is the host reference.
  virtual void quantize_clip_forward(Tensor& out, Tensor& mask, Tensor& coef, const Tensor& x, const Tensor& alpha,
                                     const Tensor& levels, double steps, double lo, double hi);
  /// quantize_clip_forward without mask and coef that also writes each element's code (u8, x's shape, out's
  /// layout): its index in quantize_clip_codebook(alpha, levels, steps) (codebook.h), so that codebook[code] is out
  /// bit for bit. Returns false when an element has no entry there (the uniform path below 0, NaN) or the code book
  /// cannot be made: codes are then unspecified, out is written regardless. The base class runs
  /// quantize_clip_forward and then codebook_encode (host memory only, as the encode reference); the cpu backend
  /// writes the codes in its forward pass. (Device backends do not override it: the quantizer asks only on the host.)
  virtual bool quantize_clip_forward_coded(Tensor& out, Tensor& codes, const Tensor& x, const Tensor& alpha,
                                           const Tensor& levels, double steps, double lo, double hi);
  /// Its backward: gx = gy * mask (when gx is defined) and galpha (one element) = sum(gy * coef) * scale (when
  /// defined): the products in the dtype, summed in double, rounded to the dtype, then scaled.
  virtual void quantize_clip_backward(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& mask,
                                      const Tensor& coef, double scale);
  /// The same backward from the forward's input instead of its saved mask and coef (which it derives from x,
  /// alpha, levels, steps, lo and hi as quantize_clip_forward does): the same gx and galpha, bit for bit. Lets
  /// the op save x, which the op before it keeps anyway, instead of 5 bytes per element. The base class runs
  /// quantize_clip_forward into temporaries and then quantize_clip_backward (any backend, any device); the cpu
  /// backend fuses it into one pass.
  virtual void quantize_clip_backward_from_input(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                                                 const Tensor& alpha, const Tensor& levels, double steps, double lo,
                                                 double hi, double scale);
  /// quantize_clip_backward_from_input for a level set, with the forward's codes of x (quantize_clip_forward_coded's:
  /// each element's level index; u8, x's sizes and layout) standing in for the level search: the same gx and galpha
  /// bit for bit. Returns false, doing nothing, when this backend has no such pass for these operands (the base
  /// class: never); the caller then runs quantize_clip_backward_from_input.
  virtual bool quantize_clip_backward_from_codes(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                                                 const Tensor& codes, const Tensor& alpha, const Tensor& levels,
                                                 double lo, double hi, double scale) {
    (void)gx, (void)galpha, (void)gy, (void)x, (void)codes, (void)alpha, (void)levels, (void)lo, (void)hi, (void)scale;
    return false;
  }
  /// The signed weight quantizer's forward (spec/quant.md sections 1.5, 1.6) in one pass, a = alpha (one element,
  /// w's dtype): x = w / a, c = min(max(x, -1), 1), q = s * levels[k] with s = sign(c) (0 for 0, -0 and NaN) and k
  /// = the number of midpoints below |c| (levels: the sorted magnitudes), or with levels undefined q =
  /// nearbyint(c * steps) / steps; out = q * a. When defined (both or neither): inside = 1 - 1[|x| > 1] and coef =
  /// sign(x) * (1 - inside) + (q - x) * inside (sign(x) = x for 0, -0 and NaN), in w's dtype, each operation as the
  /// unfused chain of primitives computes it (no fused multiply-add). The base class is the host reference.
  virtual void quantize_weight_forward(Tensor& out, Tensor& coef, Tensor& inside, const Tensor& w, const Tensor& alpha,
                                       const Tensor& levels, double steps);
  /// Weight standardisation's forward (quant/op_weight_standardize.cpp) in one call, w of n elements and dtype T:
  /// mean = the Mean of w converted to float64, stdv = sqrt(ss / (n - 1)) with ss the Sum of (w64 - mean)^2 (both
  /// reductions as reduce() computes them), z = (w - (T)mean) / (T)stdv. Returns false, writing nothing, when this
  /// backend has no such call for these operands (the base class: never); the op then runs those primitives.
  virtual bool weight_standardize_forward(Tensor& z, double& mean, double& stdv, const Tensor& w) {
    (void)z, (void)mean, (void)stdv, (void)w;
    return false;
  }
  /// Its backward through the live statistics, gz and z of n elements and dtype T: gw = t * (T)(1 / stdv) +
  /// (T)(-gmean / stdv), t = gz - z * (T)(dot / (n - 1)), with gmean = Mean(gz) and dot = Sum(gz * z) as reduce()
  /// computes them (rounded to T). Returns false, writing nothing, as above.
  virtual bool weight_standardize_backward(Tensor& gw, const Tensor& gz, const Tensor& z, double stdv) {
    (void)gw, (void)gz, (void)z, (void)stdv;
    return false;
  }
  /// The signed weight quantizer's backward from its saved coef and inside (quantize_weight_forward's), g of n
  /// elements and dtype T: gw = g * inside and galpha = the Sum of g * coef as reduce() computes it (rounded to T),
  /// times (T)scale unless scale is 1; each written when defined (galpha: one element, any shape). Returns false,
  /// writing nothing, when this backend has no such call for these operands (the base class: never); the op then
  /// runs Mul, Sum and MulScalar.
  virtual bool quantize_weight_backward(Tensor& gw, Tensor& galpha, const Tensor& g, const Tensor& coef,
                                        const Tensor& inside, double scale) {
    (void)gw, (void)galpha, (void)g, (void)coef, (void)inside, (void)scale;
    return false;
  }
  /// PACT's activation quantizer in one pass (spec/quant.md section 3.4), k = 2^bits - 1, a = alpha (one element,
  /// x's dtype): out = min(max(nearbyint(x * k / (a + 1e-6)), 0), k) * a / k (a + 1e-6 formed in double, then
  /// rounded to the dtype). When defined, mask (u8) = 1[0 < x < a] and coef (x's dtype) = 1[x > a]: its
  /// straight-through gradients, for quantize_clip_backward. The base class is the host reference.
  virtual void pact_forward(Tensor& out, Tensor& mask, Tensor& coef, const Tensor& x, const Tensor& alpha, double k);
  /// pact_forward (no mask or coef) that also writes codes (u8, x's shape and layout): each output's index in
  /// pact_forward_codebook(alpha, k) (backends/codebook.h). Returns false, codes unspecified, when that book is
  /// undefined or an output is not in it (NaN). The base class encodes the output in a second pass; the cpu
  /// backend writes the codes in its forward pass.
  virtual bool pact_forward_coded(Tensor& out, Tensor& codes, const Tensor& x, const Tensor& alpha, double k);
  /// Its backward from the forward's input: quantize_clip_backward on the mask and coef pact_forward would make
  /// from x, alpha and k, the same gx and galpha bit for bit. The base class runs pact_forward into temporaries
  /// and then quantize_clip_backward (any backend, any device); the cpu backend fuses it into one pass.
  virtual void pact_backward_from_input(Tensor& gx, Tensor& galpha, const Tensor& gy, const Tensor& x,
                                        const Tensor& alpha, double k, double scale);

  // ---- activation compression (ActNN, spec/quant.md section 2.3; layout and arithmetic: actnn_codec.h) ----
  // x and out are dense with the sample dim outermost in memory (contiguous or channels-last); elements are taken
  // in logical (NCHW) order either way, so both layouts of a tensor give the same bytes. codes (u8, c.code_bytes()
  // elements) and meta (u8, c.meta_bytes()) are contiguous. The base class is the host reference; every backend writes
  // the same bytes for the same codec.
  /// Per-group min/max, stochastic rounding, packing at each sample's bits.
  virtual void actnn_quantize(Tensor& codes, Tensor& meta, const Tensor& x, const ActnnCodec& c);
  /// out (x's shape, dtype and layout) = the decoded codes.
  virtual void actnn_dequantize(Tensor& out, const Tensor& codes, const Tensor& meta, const ActnnCodec& c);
  /// bits (u8, ceil(numel / 8)): bit i % 8 of byte i / 8 = (x[i] != 0), i in x's memory order (x dense, any dtype).
  virtual void pack_mask_bits(Tensor& bits, const Tensor& x);
  /// out (dense, any dtype) = 1 where the bit is set, else 0, in out's memory order.
  virtual void unpack_mask_bits(Tensor& out, const Tensor& bits);
  /// g (dense, floating) in place: g[i] where bit i is set, else zero, i in g's memory order (bits as
  /// pack_mask_bits writes them). ReLU's backward from a 1-bit mask: the same values as unpack_mask_bits into
  /// a tensor y and then BinaryOp::ReluBackward(g, y), zeros' signs included (the default does exactly that;
  /// ref's ReluBackward multiplies, giving -0 for a negative g, the cpu backend's selects +0).
  virtual void mask_from_bits_(Tensor& g, const Tensor& bits);

  // ---- lossless code-book coding (a quantizer's output saved for backward as u8 codes; quant/coded_saves.h) ----
  // x / out and codes are dense (contiguous or channels-last) with one layout (equal strides); element i is taken
  // in memory order. codebook: 1-D contiguous, x's dtype, 1..256 entries whose bit patterns are strictly ascending
  // in the total order of IEEE values (-0 sorts below +0; codebook_key). The base class is the host reference.
  /// codes[i] = the index of the entry whose bits equal x[i]'s. Returns false when some element equals no entry
  /// bit for bit (codes are then unspecified): the caller keeps x itself.
  virtual bool codebook_encode(Tensor& codes, const Tensor& x, const Tensor& codebook);
  /// out[i] = codebook[codes[i]] (a code past the last entry gives NaN, never a read out of bounds).
  virtual void codebook_decode(Tensor& out, const Tensor& codes, const Tensor& codebook);

  // ---- optimizer updates (in place; the parameters and their state live on this backend's device) ----
  // Every tensor is contiguous, of one shape, dtype (floating) and device; an undefined state tensor means the
  // rule does not use it. The base class is the host reference (backends/optim_update.cpp): ref and cpu run it.
  /// SGD with momentum / Nesterov / weight decay; momentum_buf is defined iff p.momentum != 0.
  virtual void sgd_update(Tensor& param, Tensor& momentum_buf, const Tensor& grad, const SgdUpdateParams& p);
  /// Adam / AdamW; max_exp_avg_sq is defined iff p.amsgrad.
  virtual void adam_update(Tensor& param, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                           const Tensor& grad, const AdamUpdateParams& p);
  /// One hysteresis step of a binary parameter: latent V gets the SGD step (decay on param P), then P = alpha *
  /// sign with alpha = mean |V| (summed in double) and sign the hysteresis sign (classical) or the one-step rule.
  /// Returns the number of elements whose sign changed.
  virtual int64_t hysteresis_update(Tensor& param, Tensor& latent, Tensor& sign, Tensor& momentum_buf,
                                    const Tensor& grad, const HysteresisUpdateParams& p);
};

/// The backend for a tensor's device. On CPU: `ref` or `cpu`, chosen by MINIDL_BACKEND (default `cpu` when
/// built with oneDNN) or set_cpu_backend().
Backend& backend_for(const Tensor& t);
Backend& backend_for(Device d);
/// A backend by name ("ref", "cpu", "cuda"); throws when not built in.
Backend& backend_by_name(const std::string& name);
/// Overrides MINIDL_BACKEND for the CPU device ("ref" or "cpu").
void set_cpu_backend(const std::string& name);
std::string cpu_backend_name();
/// Called by backends at static-init time.
void register_backend(const std::string& name, Backend* b);
/// Names of the backends built into this library.
std::vector<std::string> available_backends();

}  // namespace minidl
