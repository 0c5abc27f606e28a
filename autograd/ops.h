// Differentiable ops as free functions (each defined once with the Function API in autograd/ops/).
// Shapes in comments: (N, C, H, W) images, (N, C) logits, (K, C/groups, R, S) conv weights.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/op_params.h"
#include "tensor/tensor.h"

namespace minidl {

// ---- elementwise, broadcasting like NumPy/PyTorch ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor pow(const Tensor& base, const Tensor& exponent);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
/// Gradient 1 strictly inside (lo, hi), 0 outside; at a bound it passes (PyTorch's choice).
Tensor clamp(const Tensor& x, double lo, double hi);
/// Subgradient at 0 is 0.
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);

/// Shape of broadcasting a with b; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
/// Sums g down to `shape` (the reverse of broadcasting); no-op when shapes are equal. Not recorded.
Tensor sum_to(const Tensor& g, const Shape& shape);

// ---- reductions ----
Tensor sum(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
/// Gradient split evenly among tied maxima.
Tensor max(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);

// ---- linear algebra ----
/// (M,K)@(K,N), (B,M,K)@(B,K,N), and (B,M,K)@(K,N).
Tensor matmul(const Tensor& a, const Tensor& b);
/// x (N, in) @ w^T (out, in) + b (out).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = {});

// ---- shape ----
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);

// ---- convolution and normalisation ----
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias = {}, const Conv2dParams& p = {});
/// Training: normalises with batch statistics and updates running_mean/var in place (unbiased variance,
/// PyTorch's momentum convention: running = (1 - momentum) * running + momentum * batch). Eval: running stats.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);
/// relu(batch_norm(...)) as one op: in training one fused backend call forward and one backward (the cpu
/// backend saves a pass over the activation each way); in eval the two ops.
Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);
/// relu(batch_norm(x, ...) + residual) (the tail of a ResNet block) as one op; residual has x's shape (no
/// broadcasting), any layout. In training one fused backend call forward and one backward, which also gives the
/// residual its gradient (gy masked by the ReLU); in eval the three ops. x by value: a caller that moves its
/// only handle in lets the training op write y over x once a saved-tensor hook has stored its own copy of x
/// (activation compression), one activation less at a ResNet block's peak; a caller that keeps x gets a new y.
Tensor batch_norm_add_relu(Tensor x, const Tensor& residual, const Tensor& running_mean, const Tensor& running_var,
                           const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                           double eps = 1e-5);
/// Inference only (no autograd): relu?(batch_norm_eval(conv2d(x, w, conv_bias)) [+ residual]) as one backend
/// call, the eval-mode batch norm (running statistics, optional affine) folded into the conv's weights and bias.
/// Equal to the unfused ops up to float rounding. Throws when called with grad mode on and an input that
/// requires grad: use the separate ops to train.
Tensor conv2d_bn_inference(const Tensor& x, const Tensor& w, const Tensor& conv_bias, const Tensor& running_mean,
                           const Tensor& running_var, const Tensor& bn_weight, const Tensor& bn_bias, double eps,
                           const Conv2dParams& p, const Tensor& residual = {}, bool relu = false);

// ---- pooling ----
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);

// ---- regularisation ----
/// Inverted dropout: zeroes with probability p and scales the rest by 1/(1-p); identity when !training.
Tensor dropout(const Tensor& x, double p, bool training);

// ---- softmax and losses ----
/// Over the last dim of a 2-D tensor (N, C).
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
/// logp (N, C), target i64 (N): mean negative log-likelihood with label smoothing.
Tensor nll_loss(const Tensor& logp, const Tensor& target, double label_smoothing = 0.0);
/// logits (N, C), target i64 (N).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0);
/// mean((a - b)^2).
Tensor mse_loss(const Tensor& a, const Tensor& b);

}  // namespace minidl
