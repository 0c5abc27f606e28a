// The "cuda-host" backend: the cuda backend's own kernels (kernels/*.h) run on the CPU through the host
// executor, on host memory, so every kernel body is checked against ref by the conformance suite in every
// build, GPU or not. Convolution and matmul, which go to cuDNN / cuBLAS on the GPU rather than to own kernels,
// delegate to ref here. It is a test vehicle, not a fast backend: MINIDL_BACKEND never selects it.
#include "backends/cuda/host/optim_host.h"
#include "backends/cuda/kernel_backend.h"

namespace minidl::cuda {
namespace {

class CudaHostBackend final : public KernelBackend<kern::HostExec> {
 public:
  std::string name() const override { return "cuda-host"; }

  bool supports(OpKind op, DType dtype) const override {
    if (op == OpKind::Matmul || op == OpKind::Conv2d) return is_floating(dtype);  // through ref
    if (op == OpKind::OptimUpdate) return is_floating(dtype);                     // optim_host.cpp
    return kernel_supports(op, dtype);
  }

  // The optimizer-update kernel bodies (kernels/optim_update.h) looped on the host.
  void sgd_update(Tensor& w, Tensor& buf, const Tensor& g, const SgdUpdateParams& p) override {
    host::sgd_update("cuda-host backend: sgd_update", w, buf, g, p);
  }
  void adam_update(Tensor& w, Tensor& m, Tensor& v, Tensor& vmax, const Tensor& g, const AdamUpdateParams& p) override {
    host::adam_update("cuda-host backend: adam_update", w, m, v, vmax, g, p);
  }
  int64_t hysteresis_update(Tensor& w, Tensor& latent, Tensor& sign, Tensor& buf, const Tensor& g,
                            const HysteresisUpdateParams& p) override {
    return host::hysteresis_update("cuda-host backend: hysteresis_update", w, latent, sign, buf, g, p);
  }

  void matmul(Tensor& out, const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) override {
    ref().matmul(out, a, b, trans_a, trans_b);
  }
  void conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                      OpStatePtr& state) override {
    ref().conv2d_forward(y, x, w, bias, p, state);
  }
  void conv2d_backward_data(Tensor& gx, const Tensor& gy, const Tensor& w, const Conv2dParams& p,
                            OpStatePtr& state) override {
    ref().conv2d_backward_data(gx, gy, w, p, state);
  }
  void conv2d_backward_weight(Tensor& gw, Tensor& gbias, const Tensor& gy, const Tensor& x, const Conv2dParams& p,
                              OpStatePtr& state) override {
    ref().conv2d_backward_weight(gw, gbias, gy, x, p, state);
  }

 protected:
  void check_memory(const Tensor& t, const char* op, const char* what) const override {
    MINIDL_CHECK(t.device().is_cpu(), "cuda-host ", op, ": ", what, " lives on ", t.device().str(),
                 "; the cuda-host backend runs the CUDA kernels on host memory only");
  }

 private:
  static Backend& ref() { return backend_by_name("ref"); }
};

[[maybe_unused]] const bool registered = [] {
  static CudaHostBackend backend;
  register_backend("cuda-host", &backend);
  return true;
}();

}  // namespace
}  // namespace minidl::cuda
