// Optimizer-update kernels of the cuda backend (see cuda_optim.h): grid-stride loops over the shared bodies
// of kernels/optim_update.h. The hysteresis step's mean |V| is a deterministic two-pass sum in double (fixed
// per-block partials, then one block folds them in a fixed order), so a run repeats bit for bit.
#include <cuda_runtime.h>

#include <algorithm>

#include "backends/cuda/cuda_check.cuh"
#include "backends/cuda/cuda_optim.h"
#include "backends/cuda/kernels/optim_update.h"
#include "backends/optim_checks.h"

namespace minidl::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 1024;  // also the number of partial sums of the mean |V| reduction

unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, kMaxBlocks)));
}

__device__ int64_t first_index() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ int64_t grid_stride() { return static_cast<int64_t>(blockDim.x) * gridDim.x; }

template <typename T>
__global__ void sgd_kernel(int64_t n, T* w, T* b, const T* g, kern::SgdCoef<T> c) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) kern::sgd_element(i, w, b, g, c);
}

template <typename T>
__global__ void adam_kernel(int64_t n, T* w, T* m, T* v, T* vmax, const T* g, kern::AdamCoef<T> c) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) kern::adam_element(i, w, m, v, vmax, g, c);
}

template <typename T>
__global__ void hysteresis_sgd_kernel(int64_t n, const T* w, T* v, T* b, const T* g, T* v_old,
                                      kern::HysteresisCoef<T> c) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) kern::hysteresis_sgd_element(i, w, v, b, g, v_old, c);
}

// Block-level tree sum in shared memory (blockDim.x == kThreads, a power of two).
__device__ double block_sum(double x) {
  __shared__ double part[kThreads];
  part[threadIdx.x] = x;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  return part[0];
}

// Pass 1: partial[block] = sum of |v| over the block's grid-stride elements.
template <typename T>
__global__ void abs_sum_partials(int64_t n, const T* v, double* partial) {
  double acc = 0;
  for (int64_t i = first_index(); i < n; i += grid_stride()) acc += fabs(static_cast<double>(v[i]));
  const double s = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Pass 2 (one block): alpha = sum(partials) / n, rounded to T.
template <typename T>
__global__ void mean_from_partials(int64_t n, int parts, const double* partial, T* alpha) {
  double acc = 0;
  for (int i = static_cast<int>(threadIdx.x); i < parts; i += kThreads) acc += partial[i];
  const double s = block_sum(acc);
  if (threadIdx.x == 0) *alpha = static_cast<T>(n ? s / static_cast<double>(n) : 0.0);
}

template <typename T>
__global__ void hysteresis_sign_kernel(int64_t n, T* w, const T* v, const T* v_old, T* s, const T* alpha,
                                       kern::HysteresisCoef<T> c, unsigned long long* flips) {
  const T a = *alpha;
  unsigned long long mine = 0;
  for (int64_t i = first_index(); i < n; i += grid_stride())
    mine += static_cast<unsigned long long>(kern::hysteresis_sign_element(i, w, v, v_old, s, a, c));
  if (mine) atomicAdd(flips, mine);  // an integer count: the order of the additions does not matter
}

template <typename T>
T* ptr_or_null(Tensor& t) {
  return t.defined() ? static_cast<T*>(device_ptr(t)) : nullptr;
}
template <typename T>
T* dptr(const Tensor& t) {
  return static_cast<T*>(device_ptr(t));
}

void check_device(const std::string& who, const Tensor& param) {
  MINIDL_CHECK(param.device().is_cuda(), who, ": the parameter lives on ", param.device().str());
  require_device(who.c_str());
}

void check_launch(const std::string& who) { MINIDL_CUDA_CHECK(cudaGetLastError(), who, ": kernel launch failed"); }

}  // namespace

void sgd_update(const std::string& who, Tensor& param, Tensor& momentum_buf, const Tensor& grad,
                const SgdUpdateParams& p) {
  check_sgd_update(who, param, momentum_buf, grad, p);
  check_device(who, param);
  const int64_t n = param.numel();
  if (n == 0) return;
  dispatch_floating(param.dtype(), who.c_str(), [&](auto tag) {
    using T = decltype(tag);
    sgd_kernel<T><<<blocks_for(n), kThreads>>>(n, dptr<T>(param), ptr_or_null<T>(momentum_buf), dptr<T>(grad),
                                               kern::sgd_coef<T>(p));
  });
  check_launch(who);
  param.bump_version();
}

void adam_update(const std::string& who, Tensor& param, Tensor& exp_avg, Tensor& exp_avg_sq, Tensor& max_exp_avg_sq,
                 const Tensor& grad, const AdamUpdateParams& p) {
  check_adam_update(who, param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, p);
  check_device(who, param);
  const int64_t n = param.numel();
  if (n == 0) return;
  dispatch_floating(param.dtype(), who.c_str(), [&](auto tag) {
    using T = decltype(tag);
    adam_kernel<T><<<blocks_for(n), kThreads>>>(n, dptr<T>(param), dptr<T>(exp_avg), dptr<T>(exp_avg_sq),
                                                ptr_or_null<T>(max_exp_avg_sq), dptr<T>(grad), kern::adam_coef<T>(p));
  });
  check_launch(who);
  param.bump_version();
}

int64_t hysteresis_update(const std::string& who, Tensor& param, Tensor& latent, Tensor& sign, Tensor& momentum_buf,
                          const Tensor& grad, const HysteresisUpdateParams& p) {
  check_hysteresis_update(who, param, latent, sign, momentum_buf, grad, p);
  check_device(who, param);
  const int64_t n = param.numel();
  if (n == 0) return 0;
  const auto dev = TensorOptions{}.device(param.device());
  // Scratch from the caching allocator: V before the step (one-step mode), the partial sums, alpha, the count.
  Tensor v_old =
      p.one_step ? empty(param.sizes(), TensorOptions{}.dtype(param.dtype()).device(param.device())) : Tensor();
  Tensor partial = empty({kMaxBlocks}, dev.dtype(DType::f64));
  Tensor alpha = empty({1}, dev.dtype(param.dtype()));
  Tensor flips = zeros({1}, dev.dtype(DType::i64));
  const unsigned blocks = blocks_for(n);
  dispatch_floating(param.dtype(), who.c_str(), [&](auto tag) {
    using T = decltype(tag);
    const auto c = kern::hysteresis_coef<T>(p);
    T *w = dptr<T>(param), *v = dptr<T>(latent), *s = dptr<T>(sign), *vo = ptr_or_null<T>(v_old);
    hysteresis_sgd_kernel<T><<<blocks, kThreads>>>(n, w, v, ptr_or_null<T>(momentum_buf), dptr<T>(grad), vo, c);
    abs_sum_partials<T><<<blocks, kThreads>>>(n, v, dptr<double>(partial));
    mean_from_partials<T><<<1, kThreads>>>(n, static_cast<int>(blocks), dptr<double>(partial), dptr<T>(alpha));
    hysteresis_sign_kernel<T>
        <<<blocks, kThreads>>>(n, w, v, vo, s, dptr<T>(alpha), c, static_cast<unsigned long long*>(device_ptr(flips)));
  });
  check_launch(who);
  param.bump_version();
  int64_t count = 0;
  MINIDL_CUDA_CHECK(cudaMemcpy(&count, device_ptr(flips), sizeof(count), cudaMemcpyDeviceToHost), who,
                    ": reading the flip count failed");
  return count;
}

}  // namespace minidl::cuda
