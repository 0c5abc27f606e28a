// The CUDA backend ("cuda"). Its own kernels (kernels/*.h, instantiated for the device in cuda_kernels.cu) do
// fill, copy / cast of any layout, elementwise, reductions, batch norm (with the fused ReLU / add + ReLU),
// pooling, log-softmax + NLL and the quantizers, through KernelBackend; this class adds where tensors must live
// (the current CUDA device, with a clear error on a machine without one) and host <-> device transfers of any
// layout and dtype. Convolution goes to cuDNN (cudnn_conv.cpp), matmul to cuBLAS (cublas_matmul.cpp), the
// optimizer updates to cuda_optim.cu. The ActNN codec and the 1-bit masks are own kernels too (kernels/actnn.h):
// the same bytes as ref's host codec for the same seed.
#include <string>

#include "backends/cuda/cublas_matmul.h"
#include "backends/cuda/cuda_check.cuh"
#include "backends/cuda/cuda_optim.h"
#include "backends/cuda/cudnn_conv.h"
#include "backends/cuda/kernel_backend.h"

namespace minidl::cuda {
namespace {

class CudaBackend final : public KernelBackend<kern::DeviceExec> {
 public:
  std::string name() const override { return "cuda"; }

  bool supports(OpKind op, DType dtype) const override {
    const bool libs = op == OpKind::Matmul || op == OpKind::Conv2d || op == OpKind::OptimUpdate;  // cuBLAS, cuDNN, ours
    return kernel_supports(op, dtype) || (libs && is_floating(dtype));
  }

  /// Any shapes-equal pair: within the device by the copy kernel (strides and casts included); between the
  /// host and the device by cudaMemcpy of a contiguous staging buffer, the strided / casting part done by the
  /// kernel on the device side and by ref's copy on the host side.
  void copy(Tensor& dst, const Tensor& src) override {
    MINIDL_CHECK(dst.defined() && src.defined(), "cuda copy: undefined tensor");
    MINIDL_CHECK(dst.sizes() == src.sizes(), "cuda copy: destination shape ", shape_str(dst.sizes()),
                 " and source shape ", shape_str(src.sizes()), " differ");
    MINIDL_CHECK(dst.device().is_cuda() || src.device().is_cuda(), "cuda copy: between ", src.device().str(), " and ",
                 dst.device().str(), " involves no CUDA device");
    if (dst.device().is_cuda() && src.device().is_cuda()) {
      KernelBackend::copy(dst, src);
      return;
    }
    require_device("copy");
    if (dst.numel() == 0) return;
    Backend& host = backend_by_name("ref");
    const TensorOptions host_opts = TensorOptions{}.dtype(dst.dtype());
    if (src.device().is_cpu()) {
      // host -> device: contiguous host bytes of dst's dtype, one transfer, then the kernel scatters them
      Tensor staged = src;
      if (!src.is_contiguous() || src.dtype() != dst.dtype()) {
        staged = empty(src.sizes(), host_opts);
        host.copy(staged, src);
      }
      if (dst.is_contiguous()) {
        transfer(elem_ptr(dst), staged.raw_data(), dst.nbytes(), cudaMemcpyHostToDevice);
        return;
      }
      Tensor dev = empty(dst.sizes(), TensorOptions{}.dtype(dst.dtype()).device(dst.device()));
      transfer(elem_ptr(dev), staged.raw_data(), dst.nbytes(), cudaMemcpyHostToDevice);
      KernelBackend::copy(dst, dev);
      return;
    }
    // device -> host: the kernel gathers into contiguous device bytes of dst's dtype, one transfer back
    Tensor dev = src;
    if (!src.is_contiguous() || src.dtype() != dst.dtype()) {
      dev = empty(src.sizes(), TensorOptions{}.dtype(dst.dtype()).device(src.device()));
      KernelBackend::copy(dev, src);
    }
    if (dst.is_contiguous()) {
      transfer(dst.raw_data(), elem_ptr(dev), dst.nbytes(), cudaMemcpyDeviceToHost);
      return;
    }
    Tensor staged = empty(dst.sizes(), host_opts);
    transfer(staged.raw_data(), elem_ptr(dev), dst.nbytes(), cudaMemcpyDeviceToHost);
    host.copy(dst, staged);
  }

  // cuBLAS (cublas_matmul.cpp) and cuDNN (cudnn_conv.cpp)
  void matmul(Tensor& out, const Tensor& a, const Tensor& b, bool ta, bool tb) override {
    cuda::matmul(out, a, b, ta, tb);
  }
  void conv2d_forward(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p,
                      OpStatePtr&) override {
    cuda::conv2d_forward(y, x, w, bias, p);
  }
  void conv2d_backward_data(Tensor& gx, const Tensor& gy, const Tensor& w, const Conv2dParams& p,
                            OpStatePtr&) override {
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

 protected:
  void check_memory(const Tensor& t, const char* op, const char* what) const override {
    MINIDL_CHECK(t.device().is_cuda(), "cuda ", op, ": ", what, " lives on ", t.device().str(),
                 "; the cuda backend's kernels need device memory");
    require_device(op);
  }

 private:
  static void transfer(void* d, const void* s, size_t n, cudaMemcpyKind kind) {
    MINIDL_CUDA_CHECK(cudaMemcpy(d, s, n, kind), "cuda copy: transfer of ", n, " bytes failed");
  }
};

[[maybe_unused]] const bool registered = [] {
  static CudaBackend backend;
  register_backend("cuda", &backend);
  return true;
}();

}  // namespace
}  // namespace minidl::cuda
