// cuDNN convolutions (see cudnn_conv.h), on cuDNN 9's convolution API (libcudnn_cnn). Each call runs in one
// layout, NCHW or NHWC, for its activations and its filter alike: cuDNN 9 offers no algorithm (backward) or
// refuses the fused forward when they mix (seen on an H200 for every channels-last backward case of the
// conformance suite, where the weights are NCHW). As PyTorch does, the layout follows one activation (the input
// forward, the output gradient's producer backward: see each function); an operand in another layout is copied
// into it, and an output in another layout is computed into a temporary and copied back. fp32 runs with CUDNN_FMA_MATH
// (no TF32) unless cuda_allow_tf32(): an algorithm whose math type would use tensor cores on fp32 data is never picked
// then, so results round like the CPU's.
#include "backends/cuda/cudnn_conv.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/cuda_handles.cuh"
#include "backends/cuda_settings.h"

namespace minidl::cuda {
namespace {

constexpr const char* kWho = "cuda backend";

cudnnDataType_t data_type(DType dt, const char* op) {
  switch (dt) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f64: return CUDNN_DATA_DOUBLE;
    default: MINIDL_FAIL(kWho, ": ", op, ": cuDNN convolutions take float32 or float64, got ", dtype_name(dt));
  }
}

// ---- one layout per call ----

/// The layout of a call: NHWC when the deciding activation is channels-last (and not also plain contiguous).
bool nhwc_for(const Tensor& t) { return t.memory_format() == MemoryFormat::ChannelsLast; }

/// Dense in the call's layout (a tensor with size-1 dims can be both).
bool in_layout(const Tensor& t, bool nhwc) { return nhwc ? t.is_channels_last() : t.is_contiguous(); }

Tensor empty_in_layout(const Tensor& like, bool nhwc) {
  return empty(like.sizes(), TensorOptions{}.dtype(like.dtype()).device(like.device()),
               nhwc ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
}

/// t itself when it is in the call's layout, else a copy in it (by the backend's copy kernel: no autograd).
Tensor to_layout(const Tensor& t, bool nhwc) {
  if (in_layout(t, nhwc)) return t;
  Tensor c = empty_in_layout(t, nhwc);
  backend_by_name("cuda").copy(c, t);
  return c;
}

/// Where a call writes an output: the output itself when it is in the call's layout, else a temporary that
/// finish() copies into it.
struct OutputIn {
  Tensor& dst;
  Tensor work;
  OutputIn(Tensor& out, bool nhwc) : dst(out), work(in_layout(out, nhwc) ? out : empty_in_layout(out, nhwc)) {}
  void finish() {
    if (!work.is_same(dst)) backend_by_name("cuda").copy(dst, work);
  }
};

/// The strides of a dense 4-D tensor in the call's layout. A size-1 dim's stride never addresses memory, so these
/// describe the same elements as the tensor's own strides, without leaving cuDNN to guess the layout from them.
std::vector<int64_t> layout_strides(const Shape& s, bool nhwc) {
  if (nhwc) return {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]};
  return {s[1] * s[2] * s[3], s[2] * s[3], s[3], 1};
}

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  /// t must be dense in the call's layout (to_layout / OutputIn).
  TensorDesc(const Tensor& t, bool nhwc, const char* op) {
    MINIDL_CHECK(t.dim() == 4, kWho, ": ", op, ": expected a 4-D tensor, got shape ", shape_str(t.sizes()));
    MINIDL_CHECK(in_layout(t, nhwc), kWho, ": ", op, ": internal: tensor ", shape_str(t.sizes()), " strides ",
                 shape_str(t.strides()), " is not ", nhwc ? "NHWC" : "NCHW");
    MINIDL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d), kWho, ": ", op);
    const auto& s = t.sizes();
    const std::vector<int64_t> st = layout_strides(s, nhwc);
    auto i = [](int64_t v) { return static_cast<int>(v); };
    MINIDL_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(d, data_type(t.dtype(), op), i(s[0]), i(s[1]), i(s[2]), i(s[3]),
                                                    i(st[0]), i(st[1]), i(st[2]), i(st[3])),
                       kWho, ": ", op, ": tensor of shape ", shape_str(s), " strides ", shape_str(t.strides()));
  }
  /// (1, K, 1, 1) for a bias of K elements.
  TensorDesc(int64_t k, DType dt, const char* op) {
    MINIDL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d), kWho, ": ", op);
    MINIDL_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, data_type(dt, op), 1, static_cast<int>(k), 1, 1), kWho, ": ",
        op, ": bias of ", k, " elements");
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  /// w must be dense in the call's layout (to_layout / OutputIn).
  FilterDesc(const Tensor& w, bool nhwc, const char* op) {
    MINIDL_CHECK(w.dim() == 4, kWho, ": ", op, ": expected 4-D weights, got shape ", shape_str(w.sizes()));
    MINIDL_CHECK(in_layout(w, nhwc), kWho, ": ", op, ": internal: weights ", shape_str(w.sizes()), " are not ",
                 nhwc ? "NHWC" : "NCHW");
    MINIDL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d), kWho, ": ", op);
    const auto& s = w.sizes();
    MINIDL_CUDNN_CHECK(
        cudnnSetFilter4dDescriptor(d, data_type(w.dtype(), op), nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                   static_cast<int>(s[0]), static_cast<int>(s[1]), static_cast<int>(s[2]),
                                   static_cast<int>(s[3])),
        kWho, ": ", op, ": weights of shape ", shape_str(s));
  }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc(const Conv2dParams& p, DType dt, const char* op) {
    MINIDL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d), kWho, ": ", op);
    auto i = [](int64_t v) { return static_cast<int>(v); };
    MINIDL_CUDNN_CHECK(
        cudnnSetConvolution2dDescriptor(d, i(p.pad_h), i(p.pad_w), i(p.stride_h), i(p.stride_w), i(p.dilation_h),
                                        i(p.dilation_w), CUDNN_CROSS_CORRELATION, data_type(dt, op)),
        kWho, ": ", op, ": convolution parameters");
    MINIDL_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d, i(p.groups)), kWho, ": ", op, ": groups ", p.groups);
    set_math(tf32_allowed(dt) ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH, op);
  }
  void set_math(cudnnMathType_t m, const char* op) {
    MINIDL_CUDNN_CHECK(cudnnSetConvolutionMathType(d, m), kWho, ": ", op, ": math type");
  }
  static bool tf32_allowed(DType dt) { return dt == DType::f32 && cuda_allow_tf32(); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

struct ActDesc {
  cudnnActivationDescriptor_t d = nullptr;
  ActDesc() {
    MINIDL_CUDNN_CHECK(cudnnCreateActivationDescriptor(&d), kWho, ": conv2d_inference");
    MINIDL_CUDNN_CHECK(cudnnSetActivationDescriptor(d, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0), kWho,
                       ": conv2d_inference: ReLU descriptor");
  }
  ~ActDesc() { cudnnDestroyActivationDescriptor(d); }
  ActDesc(const ActDesc&) = delete;
  ActDesc& operator=(const ActDesc&) = delete;
};

// ---- algorithm choice, cached per problem ----

struct Choice {
  int algo = 0;
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

std::mutex g_cache_mu;
std::map<std::string, Choice> g_cache;

std::string problem_key(const char* dir, const Tensor& x, const Tensor& w, const Tensor& y, const Conv2dParams& p) {
  std::ostringstream k;
  int dev = 0;
  cudaGetDevice(&dev);
  k << dir << '|' << dev << '|' << dtype_name(x.dtype()) << '|' << shape_str(x.sizes()) << shape_str(x.strides()) << '|'
    << shape_str(w.sizes()) << shape_str(w.strides()) << '|' << shape_str(y.strides()) << '|' << p.stride_h << ','
    << p.stride_w << ',' << p.pad_h << ',' << p.pad_w << ',' << p.dilation_h << ',' << p.dilation_w << ',' << p.groups
    << '|' << cuda_allow_tf32() << cuda_deterministic() << cudnn_benchmark() << '|' << cudnn_workspace_limit();
  return k.str();
}

// Acceptable: ran, fits the workspace cap, deterministic when asked, and no tensor-core math on fp32 unless
// TF32 is allowed.
template <typename Perf>
bool acceptable(const Perf& r, DType dt) {
  if (r.status != CUDNN_STATUS_SUCCESS || r.memory > cudnn_workspace_limit()) return false;
  if (cuda_deterministic() && r.determinism != CUDNN_DETERMINISTIC) return false;
  if (dt == DType::f32 && !cuda_allow_tf32() && r.mathType != CUDNN_FMA_MATH && r.mathType != CUDNN_DEFAULT_MATH)
    return false;
  return true;
}

template <typename Perf>
Choice pick(const Perf* perf, int n, DType dt, const char* op, const std::string& key) {
  for (int i = 0; i < n; ++i) {
    if (acceptable(perf[i], dt))
      return Choice{static_cast<int>(perf[i].algo), perf[i].memory,
                    ConvDesc::tf32_allowed(dt) ? perf[i].mathType : CUDNN_FMA_MATH};
  }
  MINIDL_FAIL(kWho, ": ", op, ": cuDNN offers no algorithm within the workspace cap of ", cudnn_workspace_limit(),
              " bytes", cuda_deterministic() ? " that is deterministic" : "", " (problem ", key,
              "); raise MINIDL_CUDNN_WORKSPACE_MB");
}

// The largest workspace among the heuristic candidates that fit the cap: what a benchmark run may use.
template <typename Perf>
size_t bench_workspace(const Perf* perf, int n) {
  size_t ws = 0;
  for (int i = 0; i < n; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= cudnn_workspace_limit())
      ws = std::max(ws, perf[i].memory);
  return ws;
}

Tensor workspace_tensor(size_t bytes) {
  if (bytes == 0) return Tensor();
  return empty({static_cast<int64_t>(bytes)}, TensorOptions{}.dtype(DType::u8).device(Device::cuda(0)));
}
void* ws_ptr(const Tensor& ws) { return ws.defined() ? device_ptr(ws) : nullptr; }

template <typename F>
Choice cached(const std::string& key, F&& choose) {
  {
    std::lock_guard<std::mutex> lock(g_cache_mu);
    auto it = g_cache.find(key);
    if (it != g_cache.end()) return it->second;
  }
  const Choice c = choose();  // outside the lock: benchmarking runs kernels
  std::lock_guard<std::mutex> lock(g_cache_mu);
  return g_cache.emplace(key, c).first->second;
}

// alpha = 1, beta = 0 in the type cuDNN wants for the data type (double for float64, float otherwise).
struct Scalars {
  float f1 = 1.f, f0 = 0.f;
  double d1 = 1.0, d0 = 0.0;
  bool dbl;
  explicit Scalars(DType dt) : dbl(dt == DType::f64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return dbl ? static_cast<const void*>(&d0) : &f0; }
};

void check_common(const char* op, const Tensor& a, const Tensor& b) {
  MINIDL_CHECK(a.device().is_cuda() && b.device() == a.device(), kWho, ": ", op,
               ": operands must be on one CUDA device (", a.device().str(), ", ", b.device().str(), ")");
  MINIDL_CHECK(a.dtype() == b.dtype(), kWho, ": ", op, ": dtypes differ (", dtype_name(a.dtype()), ", ",
               dtype_name(b.dtype()), ")");
  require_device(op);
}

Choice forward_choice(const TensorDesc& xd, const FilterDesc& wd, const ConvDesc& cd, const TensorDesc& yd,
                      const Tensor& x, const Tensor& w, Tensor& y, const Conv2dParams& p, const char* op) {
  const std::string key = problem_key("fwd", x, w, y, p);
  return cached(key, [&] {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    MINIDL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(cudnn_handle(), xd.d, wd.d, cd.d, yd.d,
                                                              CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf),
                       kWho, ": ", op, ": algorithm heuristics");
    if (cudnn_benchmark()) {
      Tensor ws = workspace_tensor(bench_workspace(perf, n));
      MINIDL_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
                             cudnn_handle(), xd.d, device_ptr(x), wd.d, device_ptr(w), cd.d, yd.d, device_ptr(y),
                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, ws_ptr(ws), ws.defined() ? ws.nbytes() : 0),
                         kWho, ": ", op, ": algorithm benchmark");
    }
    return pick(perf, n, x.dtype(), op, key);
  });
}

}  // namespace

void conv2d_forward(Tensor& y_out, const Tensor& x_in, const Tensor& w_in, const Tensor& bias, const Conv2dParams& p) {
  const char* op = "conv2d_forward";
  check_common(op, x_in, w_in);
  const bool nhwc = nhwc_for(x_in);
  const Tensor x = to_layout(x_in, nhwc), w = to_layout(w_in, nhwc);
  OutputIn y(y_out, nhwc);
  TensorDesc xd(x, nhwc, op), yd(y.work, nhwc, op);
  FilterDesc wd(w, nhwc, op);
  ConvDesc cd(p, x.dtype(), op);
  const Choice c = forward_choice(xd, wd, cd, yd, x, w, y.work, p, op);
  cd.set_math(c.math, op);
  Tensor ws = workspace_tensor(c.workspace);
  const Scalars s(x.dtype());
  MINIDL_CUDNN_CHECK(cudnnConvolutionForward(cudnn_handle(), s.one(), xd.d, device_ptr(x), wd.d, device_ptr(w), cd.d,
                                             static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws_ptr(ws), c.workspace,
                                             s.zero(), yd.d, device_ptr(y.work)),
                     kWho, ": ", op, ": x ", shape_str(x.sizes()), " w ", shape_str(w.sizes()));
  if (bias.defined()) {
    const Tensor b = to_layout(bias, false);
    TensorDesc bd(b.numel(), b.dtype(), op);
    MINIDL_CUDNN_CHECK(cudnnAddTensor(cudnn_handle(), s.one(), bd.d, device_ptr(b), s.one(), yd.d, device_ptr(y.work)),
                       kWho, ": ", op, ": adding the bias");
  }
  y.finish();
}

// The layout follows the input gradient (the output here, allocated in the forward input's layout).
void conv2d_backward_data(Tensor& gx_out, const Tensor& gy_in, const Tensor& w_in, const Conv2dParams& p) {
  const char* op = "conv2d_backward_data";
  check_common(op, gy_in, w_in);
  const bool nhwc = nhwc_for(gx_out);
  const Tensor gy = to_layout(gy_in, nhwc), w = to_layout(w_in, nhwc);
  OutputIn gx(gx_out, nhwc);
  TensorDesc gxd(gx.work, nhwc, op), gyd(gy, nhwc, op);
  FilterDesc wd(w, nhwc, op);
  ConvDesc cd(p, gy.dtype(), op);
  const std::string key = problem_key("bwd-data", gx.work, w, gy, p);
  const Choice c = cached(key, [&] {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    MINIDL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnn_handle(), wd.d, gyd.d, cd.d, gxd.d,
                                                                   CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf),
                       kWho, ": ", op, ": algorithm heuristics");
    if (cudnn_benchmark()) {
      Tensor ws = workspace_tensor(bench_workspace(perf, n));
      MINIDL_CUDNN_CHECK(
          cudnnFindConvolutionBackwardDataAlgorithmEx(cudnn_handle(), wd.d, device_ptr(w), gyd.d, device_ptr(gy), cd.d,
                                                      gxd.d, device_ptr(gx.work), CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                                      &n, perf, ws_ptr(ws), ws.defined() ? ws.nbytes() : 0),
          kWho, ": ", op, ": algorithm benchmark");
    }
    return pick(perf, n, gy.dtype(), op, key);
  });
  cd.set_math(c.math, op);
  Tensor ws = workspace_tensor(c.workspace);
  const Scalars s(gy.dtype());
  MINIDL_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn_handle(), s.one(), wd.d, device_ptr(w), gyd.d, device_ptr(gy),
                                                  cd.d, static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws_ptr(ws),
                                                  c.workspace, s.zero(), gxd.d, device_ptr(gx.work)),
                     kWho, ": ", op, ": gy ", shape_str(gy.sizes()), " w ", shape_str(w.sizes()));
  gx.finish();
}

// The layout follows the forward input x; the weight gradient is computed in it and copied into gw (contiguous).
// float64 runs in NCHW: cuDNN 9 has no NHWC float64 backward-filter algorithm (none offered on an H200), while its
// NHWC float64 forward and backward-data ones exist.
void conv2d_backward_weight(Tensor& gw_out, Tensor& gbias, const Tensor& gy_in, const Tensor& x_in,
                            const Conv2dParams& p) {
  const char* op = "conv2d_backward_weight";
  check_common(op, gy_in, x_in);
  MINIDL_CHECK(gw_out.is_contiguous(), kWho, ": ", op, ": the weight gradient must be contiguous");
  const bool nhwc = nhwc_for(x_in) && x_in.dtype() != DType::f64;
  const Tensor gy = to_layout(gy_in, nhwc), x = to_layout(x_in, nhwc);
  OutputIn gw(gw_out, nhwc);
  TensorDesc xd(x, nhwc, op), gyd(gy, nhwc, op);
  FilterDesc gwd(gw.work, nhwc, op);
  ConvDesc cd(p, x.dtype(), op);
  const std::string key = problem_key("bwd-filter", x, gw.work, gy, p);
  const Choice c = cached(key, [&] {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int n = 0;
    MINIDL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnn_handle(), xd.d, gyd.d, cd.d, gwd.d,
                                                                     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf),
                       kWho, ": ", op, ": algorithm heuristics");
    if (cudnn_benchmark()) {
      Tensor ws = workspace_tensor(bench_workspace(perf, n));
      MINIDL_CUDNN_CHECK(
          cudnnFindConvolutionBackwardFilterAlgorithmEx(
              cudnn_handle(), xd.d, device_ptr(x), gyd.d, device_ptr(gy), cd.d, gwd.d, device_ptr(gw.work),
              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf, ws_ptr(ws), ws.defined() ? ws.nbytes() : 0),
          kWho, ": ", op, ": algorithm benchmark");
    }
    return pick(perf, n, x.dtype(), op, key);
  });
  cd.set_math(c.math, op);
  Tensor ws = workspace_tensor(c.workspace);
  const Scalars s(x.dtype());
  MINIDL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn_handle(), s.one(), xd.d, device_ptr(x), gyd.d, device_ptr(gy),
                                                    cd.d, static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo),
                                                    ws_ptr(ws), c.workspace, s.zero(), gwd.d, device_ptr(gw.work)),
                     kWho, ": ", op, ": x ", shape_str(x.sizes()), " gy ", shape_str(gy.sizes()));
  gw.finish();
  if (gbias.defined()) {
    MINIDL_CHECK(gbias.is_contiguous(), kWho, ": ", op, ": the bias gradient must be contiguous");
    TensorDesc bd(gbias.numel(), gbias.dtype(), op);
    MINIDL_CUDNN_CHECK(
        cudnnConvolutionBackwardBias(cudnn_handle(), s.one(), gyd.d, device_ptr(gy), s.zero(), bd.d, device_ptr(gbias)),
        kWho, ": ", op, ": bias gradient");
  }
}

namespace {
// cuDNN 9 splits "not supported" into sub-codes (CUDNN_STATUS_NOT_SUPPORTED_SHAPE, _LAYOUT, ...: 3001-3999).
bool not_supported(cudnnStatus_t st) {
  const int v = static_cast<int>(st), base = static_cast<int>(CUDNN_STATUS_NOT_SUPPORTED);
  return v >= base && v < base + 1000;
}
}  // namespace

bool conv2d_inference_fused(Tensor& y_out, const Tensor& x_in, const Tensor& w_in, const Tensor& bias,
                            const Conv2dParams& p, const Tensor& residual, bool relu) {
  const char* op = "conv2d_inference";
  if (!relu || !bias.defined()) return false;  // cuDNN fuses with a bias and a ReLU; the rest is composed
  check_common(op, x_in, w_in);
  const bool nhwc = nhwc_for(x_in);
  const Tensor x = to_layout(x_in, nhwc), w = to_layout(w_in, nhwc), b = to_layout(bias, false);
  OutputIn y(y_out, nhwc);
  const Tensor z = residual.defined() ? to_layout(residual, nhwc) : y.work;
  TensorDesc xd(x, nhwc, op), yd(y.work, nhwc, op), zd(z, nhwc, op), bd(b.numel(), b.dtype(), op);
  FilterDesc wd(w, nhwc, op);
  ConvDesc cd(p, x.dtype(), op);
  ActDesc act;
  const Choice c = forward_choice(xd, wd, cd, yd, x, w, y.work, p, op);
  cd.set_math(c.math, op);
  Tensor ws = workspace_tensor(c.workspace);
  const Scalars s(x.dtype());
  if (!residual.defined()) {
    // z = y with alpha2 = 0: zero it first (after any benchmark wrote y), so that whatever y held (a NaN) cannot leak
    // in as 0 * NaN
    MINIDL_CUDA_CHECK(cudaMemsetAsync(device_ptr(y.work), 0, y.work.nbytes(), current_stream()), kWho, ": ", op,
                      ": zeroing the output");
  }
  const cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
      cudnn_handle(), s.one(), xd.d, device_ptr(x), wd.d, device_ptr(w), cd.d,
      static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws_ptr(ws), c.workspace, residual.defined() ? s.one() : s.zero(),
      zd.d, device_ptr(z), bd.d, device_ptr(b), act.d, yd.d, device_ptr(y.work));
  if (not_supported(st)) return false;
  MINIDL_CUDNN_CHECK(st, kWho, ": ", op, ": fused bias + residual + ReLU, x ", shape_str(x.sizes()), " w ",
                     shape_str(w.sizes()));
  y.finish();
  return true;
}

size_t conv_algo_cache_size() {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  return g_cache.size();
}

void clear_conv_algo_cache() {
  std::lock_guard<std::mutex> lock(g_cache_mu);
  g_cache.clear();
}

}  // namespace minidl::cuda
