// Parameter structs of the optimizer-update primitives (Backend::sgd_update, adam_update, hysteresis_update).
// The optimizers (optim/) compute what depends on the step count on the host and pass plain numbers here, so
// a device backend needs no host round trip per parameter.
#pragma once

namespace minidl {

/// torch.optim.SGD's rule (optim/sgd.h): d = g (+ wd * p); buf = first_step ? d : momentum * buf +
/// (1 - dampening) * d; d = nesterov ? d + momentum * buf : buf; p -= lr * d. With decoupled_weight_decay the
/// decay is p *= 1 - lr * wd instead of the L2 term.
struct SgdUpdateParams {
  double lr = 0.0;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool decoupled_weight_decay = false;
  bool first_step = false;  // the momentum buffer is (re)started from d
};

/// torch.optim.Adam / AdamW (optim/adam.h). step_size = lr / (1 - beta1^t) and inv_sqrt_bc2 = 1 / sqrt(1 -
/// beta2^t) are formed in double by the caller (they depend on the step count t only).
struct AdamUpdateParams {
  double lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double step_size = 0.0;
  double inv_sqrt_bc2 = 1.0;
  bool decoupled_weight_decay = false;  // AdamW
  bool amsgrad = false;
};

/// The hysteresis optimizer's binary-parameter step (optim/hysteresis.h): SGD with L2 decay on P applied to
/// the latent copy V, then P = alpha * sign with alpha = mean |V| (classical hysteresis sign, or one-step).
struct HysteresisUpdateParams {
  double lr = 0.0;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  double threshold = 0.0;
  bool nesterov = false;
  bool one_step = false;
  bool first_step = false;
};

}  // namespace minidl
