// The "cuda-host" backend: the cuda backend's own kernels (kernels/*.h) run on the CPU through the host
// executor, on host memory, so every kernel body is checked against ref by the conformance suite in every
// build, GPU or not. Convolution and matmul, which go to cuDNN / cuBLAS on the GPU rather than to own kernels,
// delegate to ref here. It is a test vehicle, not a fast backend: MINIDL_BACKEND never selects it.
#include "backends/cuda/kernel_backend.h"

namespace minidl::cuda {
namespace {

class CudaHostBackend final : public KernelBackend<kern::HostExec> {
 public:
  std::string name() const override { return "cuda-host"; }

  bool supports(OpKind op, DType dtype) const override {
    if (op == OpKind::Matmul || op == OpKind::Conv2d) return is_floating(dtype);  // through ref
    return kernel_supports(op, dtype);
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
