// Argument checks shared by every backend's optimizer-update primitives, so each states a bad call the same way.
#pragma once

#include <string>

#include "backends/optim_params.h"
#include "tensor/tensor.h"

namespace minidl {

/// Throws "<who>: <what> ..." unless t has param's shape, dtype and device and is contiguous.
void check_optim_operand(const std::string& who, const char* what, const Tensor& param, const Tensor& t);

/// The checks of sgd_update / adam_update / hysteresis_update (every operand, the optional ones by the rule's
/// options); `who` starts each message ("cuda backend: sgd_update").
void check_sgd_update(const std::string& who, const Tensor& param, const Tensor& momentum_buf, const Tensor& grad,
                      const SgdUpdateParams& p);
void check_adam_update(const std::string& who, const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                       const Tensor& max_exp_avg_sq, const Tensor& grad, const AdamUpdateParams& p);
void check_hysteresis_update(const std::string& who, const Tensor& param, const Tensor& latent, const Tensor& sign,
                             const Tensor& momentum_buf, const Tensor& grad, const HysteresisUpdateParams& p);

}  // namespace minidl
