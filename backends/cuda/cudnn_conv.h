// cuDNN 9 convolutions of the cuda backend (cudnn_conv.cpp); no CUDA header here, so cuda_backend.cpp forwards
// with one line each. The algorithm of each (direction, shapes, strides, parameters, dtype, TF32, determinism)
// is chosen once, by cuDNN's heuristics or by timing (cudnn_benchmark()), within cudnn_workspace_limit(), and
// cached (backends/cuda_settings.h has the switches).
#pragma once

#include <cstddef>

#include "backends/op_params.h"
#include "tensor/tensor.h"

namespace minidl::cuda {

void conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p);
void conv2d_backward_data(Tensor& gx, const Tensor& gy, const Tensor& w, const Conv2dParams& p);
void conv2d_backward_weight(Tensor& gw, Tensor& gbias, const Tensor& gy, const Tensor& x, const Conv2dParams& p);
/// y = relu(conv(x, w) + bias [+ residual]) in one cuDNN call (cudnnConvolutionBiasActivationForward). Returns
/// false, having written nothing, where cuDNN has no fused form (no ReLU, or not supported for this shape): the
/// caller then composes it from conv2d_forward, Add and Relu.
bool conv2d_inference_fused(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                            const Tensor& residual, bool relu);

/// Number of cached algorithm choices (all directions), and a way to drop them (tests, settings changes).
size_t conv_algo_cache_size();
void clear_conv_algo_cache();

}  // namespace minidl::cuda
