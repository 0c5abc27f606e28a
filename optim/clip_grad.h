// Gradient clipping as torch.nn.utils: clip_grad_norm_ scales all gradients together so their joint p-norm is
// at most max_norm (coefficient max_norm / (norm + 1e-6), applied only when below 1), and returns the norm
// before clipping; clip_grad_value_ clamps each gradient element to [-clip, clip]. Parameters without a
// gradient are skipped.
#pragma once

#include <limits>
#include <vector>

#include "tensor/tensor.h"

namespace minidl::optim {

/// norm_type: any p >= 1, or infinity for the max-norm. Throws on a non-finite norm when error_if_nonfinite.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace minidl::optim
