// The cuda backend's optimizer updates (cuda_optim.cu): the kernel bodies of kernels/optim_update.h in
// __global__ kernels on the device's stream. No CUDA header here, so cuda_backend.cpp forwards with one line.
#pragma once

#include <string>

#include "backends/optim_params.h"
#include "tensor/tensor.h"

namespace minidl::cuda {

void sgd_update(const std::string& who, Tensor& param, Tensor& momentum_buf, const Tensor& grad,
                const SgdUpdateParams& p);
void adam_update(const std::string& who, Tensor& param, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const Tensor& grad, const AdamUpdateParams& p);
/// Returns the flip count, which costs one device-to-host copy (the optimizer reports it every step).
int64_t hysteresis_update(const std::string& who, Tensor& param, Tensor& latent, Tensor& sign, Tensor& momentum_buf,
                          const Tensor& grad, const HysteresisUpdateParams& p);

}  // namespace minidl::cuda
