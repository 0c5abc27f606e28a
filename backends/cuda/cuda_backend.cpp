// The CUDA backend ("cuda"). What it does today: fill (a kernel, any dtype) and copy (contiguous, same dtype,
// between host and device or within the device, by cudaMemcpy). Every other primitive throws
// "cuda backend: <op> is not implemented yet" — never a silent fallback to the host — until the cuDNN/cuBLAS
// kernels land. Tensors move to and from the device through Tensor::to, which routes through copy() here.
#include <string>

#include "backends/backend.h"
#include "backends/cuda/cuda_check.cuh"
#include "backends/cuda/cuda_optim.h"
#include "backends/cuda/cublas_matmul.h"
#include "backends/cuda/cudnn_conv.h"

namespace minidl::cuda {
namespace {

[[noreturn]] void not_yet(const char* op) { MINIDL_FAIL("cuda backend: ", op, " is not implemented yet"); }

class CudaBackend final : public Backend {
 public:
  std::string name() const override { return "cuda"; }

  bool supports(OpKind op, DType dt) const override {
    const bool libs = op == OpKind::Matmul || op == OpKind::Conv2d || op == OpKind::OptimUpdate;  // cuBLAS, cuDNN, ours
    return op == OpKind::Fill || op == OpKind::Copy || (libs && is_floating(dt));
  }

  void fill(Tensor& out, double value) override {
    MINIDL_CHECK(out.device().is_cuda(), "cuda backend: fill: output lives on ", out.device().str());
    if (!out.is_contiguous()) not_yet("fill of a strided view");
    if (out.numel() == 0) return;
    require_device("fill");
    launch_fill(device_ptr(out), out.numel(), out.dtype(), value);
  }

  // Host<->device and device->device transfers of contiguous, same-dtype tensors. Tensor::to / copy_ make the
  // source contiguous with the target dtype on its own device first, so this is all a transfer needs.
  void copy(Tensor& dst, const Tensor& src) override {
    MINIDL_CHECK(dst.sizes() == src.sizes(), "cuda backend: copy: destination shape ", shape_str(dst.sizes()),
                 " and source shape ", shape_str(src.sizes()), " differ");
    MINIDL_CHECK(dst.device().is_cuda() || src.device().is_cuda(), "cuda backend: copy between ", src.device().str(),
                 " and ", dst.device().str(), " involves no CUDA device");
    if (dst.dtype() != src.dtype()) not_yet("copy with a dtype cast");
    if (!dst.is_contiguous() || !src.is_contiguous()) not_yet("copy of a strided view");
    if (dst.numel() == 0) return;
    require_device("copy");
    const cudaMemcpyKind kind = src.device().is_cpu()   ? cudaMemcpyHostToDevice
                                : dst.device().is_cpu() ? cudaMemcpyDeviceToHost
                                                        : cudaMemcpyDeviceToDevice;
    const void* s = src.device().is_cpu() ? src.raw_data() : device_ptr(src);
    void* d = dst.device().is_cpu() ? dst.raw_data() : device_ptr(dst);
    MINIDL_CUDA_CHECK(cudaMemcpy(d, s, dst.nbytes(), kind), "cuda backend: copy of ", dst.nbytes(), " bytes from ",
                      src.device().str(), " to ", dst.device().str(), " failed");
  }

  void unary(UnaryOp op, Tensor&, const Tensor&, const UnaryParams&) override {
    not_yet((std::string("unary ") + op_name(op)).c_str());
  }
  void binary(BinaryOp op, Tensor&, const Tensor&, const Tensor&) override {
    not_yet((std::string("binary ") + op_name(op)).c_str());
  }
  void reduce(ReduceOp op, Tensor&, const Tensor&, std::span<const int64_t>) override {
    not_yet((std::string("reduce ") + op_name(op)).c_str());
  }
  // cuBLAS (cublas_matmul.cpp) and cuDNN (cudnn_conv.cpp)
  void matmul(Tensor& out, const Tensor& a, const Tensor& b, bool ta, bool tb) override {
    cuda::matmul(out, a, b, ta, tb);
  }
  void conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                      OpStatePtr&) override {
    cuda::conv2d_forward(y, x, w, bias, p);
  }
  void conv2d_backward_data(Tensor& gx, const Tensor& gy, const Tensor& w, const Conv2dParams& p, OpStatePtr&) override {
    cuda::conv2d_backward_data(gx, gy, w, p);
  }
  void conv2d_backward_weight(Tensor& gw, Tensor& gbias, const Tensor& gy, const Tensor& x, const Conv2dParams& p,
                              OpStatePtr&) override {
    cuda::conv2d_backward_weight(gw, gbias, gy, x, p);
  }
  void conv2d_inference(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                        const Tensor& residual, bool relu) override {
    if (!cuda::conv2d_inference_fused(y, x, w, bias, p, residual, relu))
      Backend::conv2d_inference(y, x, w, bias, p, residual, relu);
  }
  void batch_norm_forward_training(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, double,
                                   OpStatePtr&) override {
    not_yet("batch_norm_forward_training");
  }
  void batch_norm_forward_inference(Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                    double) override {
    not_yet("batch_norm_forward_inference");
  }
  void batch_norm_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                           const Tensor&, double, OpStatePtr&) override {
    not_yet("batch_norm_backward");
  }
  void max_pool2d_forward(Tensor&, Tensor&, const Tensor&, const Pool2dParams&) override {
    not_yet("max_pool2d_forward");
  }
  void max_pool2d_backward(Tensor&, const Tensor&, const Tensor&, const Pool2dParams&) override {
    not_yet("max_pool2d_backward");
  }
  void avg_pool2d_forward(Tensor&, const Tensor&, const Pool2dParams&) override { not_yet("avg_pool2d_forward"); }
  void avg_pool2d_backward(Tensor&, const Tensor&, const Pool2dParams&) override { not_yet("avg_pool2d_backward"); }
  void adaptive_avg_pool2d_forward(Tensor&, const Tensor&) override { not_yet("adaptive_avg_pool2d_forward"); }
  void adaptive_avg_pool2d_backward(Tensor&, const Tensor&) override { not_yet("adaptive_avg_pool2d_backward"); }
  void log_softmax_forward(Tensor&, const Tensor&) override { not_yet("log_softmax_forward"); }
  void log_softmax_backward(Tensor&, const Tensor&, const Tensor&) override { not_yet("log_softmax_backward"); }
  void nll_loss_forward(Tensor&, const Tensor&, const Tensor&, double) override { not_yet("nll_loss_forward"); }
  void nll_loss_backward(Tensor&, const Tensor&, const Tensor&, double) override { not_yet("nll_loss_backward"); }
  void project_to_levels(Tensor&, const Tensor&, const Tensor&, bool) override { not_yet("project_to_levels"); }
  // optimizer updates: cuda_optim.cu
  void sgd_update(Tensor& w, Tensor& buf, const Tensor& g, const SgdUpdateParams& p) override {
    cuda::sgd_update("cuda backend: sgd_update", w, buf, g, p);
  }
  void adam_update(Tensor& w, Tensor& m, Tensor& v, Tensor& vmax, const Tensor& g, const AdamUpdateParams& p) override {
    cuda::adam_update("cuda backend: adam_update", w, m, v, vmax, g, p);
  }
  int64_t hysteresis_update(Tensor& w, Tensor& latent, Tensor& sign, Tensor& buf, const Tensor& g,
                            const HysteresisUpdateParams& p) override {
    return cuda::hysteresis_update("cuda backend: hysteresis_update", w, latent, sign, buf, g, p);
  }
};

[[maybe_unused]] const bool registered = [] {
  static CudaBackend backend;
  register_backend("cuda", &backend);
  return true;
}();

}  // namespace
}  // namespace minidl::cuda
