// The cuda-host executor of the optimizer-update kernels (backends/cuda/kernels/optim_update.h): the same
// bodies the GPU runs, looped over on the CPU, so CI checks them against ref without a GPU. The cuda-host
// backend's sgd_update / adam_update / hysteresis_update forward here; `who` names it in errors.
#pragma once

#include <string>

#include "backends/optim_params.h"
#include "tensor/tensor.h"

namespace minidl::cuda::host {

void sgd_update(const std::string& who, Tensor& param, Tensor& momentum_buf, const Tensor& grad,
                const SgdUpdateParams& p);
void adam_update(const std::string& who, Tensor& param, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const Tensor& grad, const AdamUpdateParams& p);
int64_t hysteresis_update(const std::string& who, Tensor& param, Tensor& latent, Tensor& sign, Tensor& momentum_buf,
                          const Tensor& grad, const HysteresisUpdateParams& p);

}  // namespace minidl::cuda::host
