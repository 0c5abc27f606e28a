// The optimizer-update kernels' bodies (Backend::sgd_update, adam_update, hysteresis_update), written once as
// MINIDL_HD functions of one element index over raw pointers: backends/cuda/cuda_optim.cu runs them in
// __global__ kernels, backends/cuda/host/optim_host.cpp loops over them on the CPU (the cuda-host rows). The
// arithmetic is the host reference's (backends/optim_update.cpp) term for term, in the parameter's dtype, so
// the host loop matches ref bit for bit; on the GPU, nvcc's FMA contraction may change the last bit.
#pragma once

#include <cmath>
#include <cstdint>

#include "backends/cuda/kernels/hd.h"
#include "backends/optim_params.h"

namespace minidl::cuda::kern {

// ---- SGD ----
template <typename T>
struct SgdCoef {
  T lr, momentum, damp1, wd, decay;  // damp1 = 1 - dampening, decay = 1 - lr * wd
  bool l2, decoupled, nesterov, first;
};

template <typename T>
SgdCoef<T> sgd_coef(const SgdUpdateParams& p) {
  return {T(p.lr),
          T(p.momentum),
          T(1.0 - p.dampening),
          T(p.weight_decay),
          T(1.0 - p.lr * p.weight_decay),
          p.weight_decay != 0.0 && !p.decoupled_weight_decay,
          p.decoupled_weight_decay,
          p.nesterov,
          p.first_step};
}

/// w: parameter, b: momentum buffer or null, g: gradient.
template <typename T>
MINIDL_HD void sgd_element(int64_t i, T* w, T* b, const T* g, const SgdCoef<T>& c) {
  T d = g[i];
  if (c.decoupled) {
    w[i] *= c.decay;
  } else if (c.l2) {
    d += c.wd * w[i];
  }
  if (b) {
    b[i] = c.first ? d : c.momentum * b[i] + c.damp1 * d;
    d = c.nesterov ? d + c.momentum * b[i] : b[i];
  }
  w[i] -= c.lr * d;
}

// ---- Adam / AdamW ----
template <typename T>
struct AdamCoef {
  T b1, b2, ob1, ob2, wd, eps, step, isb, decay;  // ob* = 1 - beta*, isb = 1 / sqrt(1 - beta2^t)
  bool l2, decoupled;
};

template <typename T>
AdamCoef<T> adam_coef(const AdamUpdateParams& p) {
  return {T(p.beta1),
          T(p.beta2),
          T(1.0 - p.beta1),
          T(1.0 - p.beta2),
          T(p.weight_decay),
          T(p.eps),
          T(p.step_size),
          T(p.inv_sqrt_bc2),
          T(1.0 - p.lr * p.weight_decay),
          p.weight_decay != 0.0 && !p.decoupled_weight_decay,
          p.decoupled_weight_decay};
}

/// m, v: first and second moments; vmax: the amsgrad maximum or null.
template <typename T>
MINIDL_HD void adam_element(int64_t i, T* w, T* m, T* v, T* vmax, const T* g, const AdamCoef<T>& c) {
  T gi = g[i];
  if (c.decoupled) {
    w[i] *= c.decay;
  } else if (c.l2) {
    gi += c.wd * w[i];
  }
  m[i] = c.b1 * m[i] + c.ob1 * gi;
  v[i] = c.b2 * v[i] + c.ob2 * gi * gi;
  T second = v[i];
  if (vmax) {
    vmax[i] = vmax[i] < v[i] ? v[i] : vmax[i];  // std::max's choice: the first when equal
    second = vmax[i];
  }
  w[i] -= c.step * m[i] / (std::sqrt(second) * c.isb + c.eps);
}

// ---- hysteresis (binary parameters) ----
template <typename T>
struct HysteresisCoef {
  T lr, momentum, damp1, wd, threshold;
  bool l2, nesterov, first, one_step;
};

template <typename T>
HysteresisCoef<T> hysteresis_coef(const HysteresisUpdateParams& p) {
  return {T(p.lr),           T(p.momentum),  T(1.0 - p.dampening),
          T(p.weight_decay), T(p.threshold), p.weight_decay != 0.0,
          p.nesterov,        p.first_step,   p.one_step};
}

/// Phase 1: the SGD step of latent v, decay taken on the parameter w; v_old (one-step mode) keeps V before it.
template <typename T>
MINIDL_HD void hysteresis_sgd_element(int64_t i, const T* w, T* v, T* b, const T* g, T* v_old,
                                      const HysteresisCoef<T>& c) {
  T d = g[i];
  if (c.l2) d += c.wd * w[i];
  if (b) {
    b[i] = c.first ? d : c.momentum * b[i] + c.damp1 * d;
    d = c.nesterov ? d + c.momentum * b[i] : b[i];
  }
  if (v_old) v_old[i] = v[i];
  v[i] -= c.lr * d;
}

template <typename T>
MINIDL_HD T sign_of(T v) {
  return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0));
}

/// Phase 2 (after alpha = mean |V| over the whole tensor): writes the sign s and the parameter w; returns 1
/// when the element's sign flipped.
template <typename T>
MINIDL_HD int hysteresis_sign_element(int64_t i, T* w, const T* v, const T* v_old, T* s, T alpha,
                                      const HysteresisCoef<T>& c) {
  if (c.one_step) {
    const T vo = v_old[i], vn = v[i];
    const T before = sign_of(w[i]);
    if ((vo > T(0) && vn > T(0)) || (vo < T(0) && vn < T(0))) {
      w[i] = alpha * sign_of(vn);
    } else if (vo < T(0) && vn > T(0) && vn >= c.threshold) {
      w[i] = alpha;
    } else if (vo > T(0) && vn < T(0) && vn <= -c.threshold) {
      w[i] = -alpha;
    } else {
      w[i] = alpha * vn;
    }
    s[i] = sign_of(w[i]);
    return sign_of(w[i]) != before ? 1 : 0;
  }
  const T prev = s[i];
  const T now = v[i] >= c.threshold ? T(1) : (v[i] <= -c.threshold ? T(-1) : prev);
  s[i] = now;
  w[i] = alpha * now;
  return now != prev ? 1 : 0;
}

}  // namespace minidl::cuda::kern
