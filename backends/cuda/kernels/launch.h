// The launcher interface of the shared kernels: one argument struct per primitive family (raw pointers,
// dtypes, strided walks; no Tensor, no CUDA types) and the launch functions, templated on the executor:
// HostExec (host_exec.h, loops on the CPU: the cuda-host backend) or DeviceExec (device_exec.cuh, __global__
// kernels on the default stream: the cuda backend). launch_impl.h defines them once for both; nvcc
// instantiates the DeviceExec ones (backends/cuda/*.cu), the host compiler the HostExec ones.
//
// Pointers point at the first element of the view (storage + offset), on the executor's memory. Outputs that
// are optional are nullptr when not wanted. Launchers never allocate: scratch space (`ws`, `error`) comes from
// the caller, so that memory management stays with the tensor allocator.
#pragma once

#include <cstdint>

#include "backends/cuda/kernels/geometry.h"
#include "backends/op_params.h"
#include "tensor/dtype.h"

namespace minidl::cuda::kern {

struct HostExec;
struct DeviceExec;

struct FillArgs {
  void* out = nullptr;
  DType dtype = DType::f32;
  double value = 0;
  int64_t n = 0;
  Walk<1> walk;
};

struct CopyArgs {  // dst[i] = cast(src[i]), any two dtypes
  void* dst = nullptr;
  const void* src = nullptr;
  DType dst_dtype = DType::f32, src_dtype = DType::f32;
  int64_t n = 0;
  Walk<2> walk;  // dst, src
};

struct UnaryArgs {
  UnaryOp op = UnaryOp::Neg;
  void* out = nullptr;
  const void* in = nullptr;
  DType dtype = DType::f32;
  double a = 0, b = 0;
  int64_t n = 0;
  Walk<2> walk;  // out, in
};

struct BinaryArgs {
  BinaryOp op = BinaryOp::Add;
  void* out = nullptr;
  const void* a = nullptr;
  const void* b = nullptr;
  DType dtype = DType::f32, out_dtype = DType::f32;  // out_dtype differs only for comparisons
  int64_t n = 0;
  Walk<3> walk;  // out, a, b
};

struct ReduceArgs {
  ReduceOp op = ReduceOp::Sum;
  void* out = nullptr;
  const void* in = nullptr;
  DType dtype = DType::f32;
  int64_t groups = 0, len = 0;  // output cells; input elements folded into each
  Walk<2> kept;                 // over the kept dims: in, out
  Walk<1> reduced;              // over the reduced dims: in
};

struct LogSoftmaxArgs {  // rows over the leading dims, C along the last
  DType dtype = DType::f32;
  int64_t rows = 0, C = 0;
  const void* x = nullptr;                  // forward: x; backward: y (the forward's output)
  const void* gy = nullptr;                 // backward only
  void* out = nullptr;                      // forward: y; backward: gx
  int64_t x_cs = 0, gy_cs = 0, out_cs = 0;  // strides along C
  Walk<3> walk;                             // row offsets: x, gy, out
};

struct NllArgs {
  DType dtype = DType::f32;
  int64_t N = 0, C = 0;
  const void* in = nullptr;  // forward: logp (N, C); backward: gloss (one element)
  void* out = nullptr;       // forward: loss (one element); backward: glogp (N, C)
  int64_t s0 = 0, s1 = 0;    // strides of the (N, C) operand
  const void* target = nullptr;
  bool target_i64 = true;
  int64_t target_stride = 1;
  double smoothing = 0;
  int* error = nullptr;  // set to 1 when a target is not a class index (zeroed by the caller)
};

struct BnArgs {
  DType dtype = DType::f32;
  Dims4 dims;  // (N, C, H, W); an (N, C) input has H = W = 1
  double eps = 0;
  bool relu = false;  // fused ReLU (forward) / ReLU mask from yr (backward)
  const void* x = nullptr;
  void* y = nullptr;
  const void* residual = nullptr;  // forward: added before the ReLU
  const void* gy = nullptr;
  const void* yr = nullptr;  // backward: the fused forward's output, for the ReLU mask
  void* gx = nullptr;
  void* gresidual = nullptr;
  Nchw x_st, y_st, residual_st, gy_st, yr_st, gx_st, gresidual_st;
  // per-channel vectors (pointer, stride); nullptr where undefined (weight 1, bias 0)
  const void* weight = nullptr;
  const void* bias = nullptr;
  const void* mean = nullptr;  // inference: running mean; backward: saved mean
  const void* var = nullptr;   // inference: running var; backward: saved inverse std
  void* save_mean = nullptr;
  void* save_invstd = nullptr;
  void* gweight = nullptr;
  void* gbias = nullptr;
  int64_t weight_s = 0, bias_s = 0, mean_s = 0, var_s = 0, save_mean_s = 0, save_invstd_s = 0, gweight_s = 0,
          gbias_s = 0;
  double* ws = nullptr;  // 2 * C doubles of scratch on the executor's memory
};

struct PoolArgs {
  DType dtype = DType::f32;
  Dims4 plane;           // the (N, C, H, W) side: x forward, gx backward
  int64_t P = 0, Q = 0;  // the pooled (N, C, P, Q) side: y forward, gy backward
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  bool count_include_pad = true;
  const void* in = nullptr;  // forward: x; backward: gy
  void* out = nullptr;       // forward: y; backward: gx
  void* indices = nullptr;   // max pool: i64, the pooled side's shape (written forward, read backward)
  Nchw in_st, out_st, idx_st;
};

struct QuantArgs {
  DType dtype = DType::f32;
  int64_t n = 0;
  Walk<4> walk;  // out, mask, coef, x (mask / coef strides are out's when they are not wanted)
  void* out = nullptr;
  uint8_t* mask = nullptr;
  void* coef = nullptr;
  const void* x = nullptr;
  const void* alpha = nullptr;   // one element of x's dtype
  const void* levels = nullptr;  // sorted ascending; nullptr: the uniform path
  int64_t levels_s = 1, nlevels = 0;
  bool symmetric = false;  // project_to_levels
  double steps = 0, lo = 0, hi = 0, k = 0;
};

struct QuantBackwardArgs {
  DType dtype = DType::f32;
  int64_t n = 0;
  Walk<4> walk;  // gx, gy, mask, coef
  void* gx = nullptr;
  const void* gy = nullptr;
  const uint8_t* mask = nullptr;
  const void* coef = nullptr;
  void* galpha = nullptr;  // one element
  double scale = 1;
};

struct ActnnArgs {           // the ActNN codec (actnn.h; layout and arithmetic: backends/actnn_codec.h)
  DType dtype = DType::f32;  // x's (quantize) or out's (dequantize); the codec itself computes in f32
  const void* x = nullptr;   // quantize: the input, dense, read in memory order
  void* out = nullptr;       // dequantize: the output, dense, written in memory order
  uint8_t* codes = nullptr;  // quantize writes codes and meta, dequantize reads them
  uint8_t* meta = nullptr;
  int64_t n = 0, f = 0;       // samples, elements per sample
  int64_t fp = 0, group = 0;  // padded sample length (a multiple of group), group size G (a multiple of 8)
  int64_t ng = 0;             // groups per sample (fp / group)
  bool per_group = true, bf16 = true;
  uint64_t key = 0;
  int uniform_bits = 0;                     // every sample's bit width, or 0: per sample, below
  const uint8_t* sample_bits = nullptr;     // n widths, on the executor's memory (uniform_bits == 0)
  const int64_t* sample_offsets = nullptr;  // n byte offsets of each sample's codes (uniform_bits == 0)
  float* range = nullptr;                   // !per_group: 2 floats of scratch for the tensor's (min, max)
};

struct MaskBitsArgs {  // 1-bit masks (actnn.h): bit i % 8 of byte i / 8 <-> values[i] != 0, memory order
  DType dtype = DType::f32;
  void* values = nullptr;   // pack: read; unpack: written (0 / 1)
  uint8_t* bits = nullptr;  // pack: written; unpack: read
  int64_t n = 0;            // values
};

// X(name, args type): every launcher, for declarations and explicit instantiations.
#define MINIDL_CUDA_LAUNCHERS(X)                      \
  X(launch_fill, FillArgs)                            \
  X(launch_copy, CopyArgs)                            \
  X(launch_unary, UnaryArgs)                          \
  X(launch_binary, BinaryArgs)                        \
  X(launch_reduce, ReduceArgs)                        \
  X(launch_log_softmax_forward, LogSoftmaxArgs)       \
  X(launch_log_softmax_backward, LogSoftmaxArgs)      \
  X(launch_nll_forward, NllArgs)                      \
  X(launch_nll_backward, NllArgs)                     \
  X(launch_bn_forward_training, BnArgs)               \
  X(launch_bn_forward_inference, BnArgs)              \
  X(launch_bn_backward, BnArgs)                       \
  X(launch_max_pool_forward, PoolArgs)                \
  X(launch_max_pool_backward, PoolArgs)               \
  X(launch_avg_pool_forward, PoolArgs)                \
  X(launch_avg_pool_backward, PoolArgs)               \
  X(launch_adaptive_pool_forward, PoolArgs)           \
  X(launch_adaptive_pool_backward, PoolArgs)          \
  X(launch_project_to_levels, QuantArgs)              \
  X(launch_quantize_clip_forward, QuantArgs)          \
  X(launch_pact_forward, QuantArgs)                   \
  X(launch_quantize_clip_backward, QuantBackwardArgs) \
  X(launch_actnn_quantize, ActnnArgs)                 \
  X(launch_actnn_dequantize, ActnnArgs)               \
  X(launch_pack_mask_bits, MaskBitsArgs)              \
  X(launch_unpack_mask_bits, MaskBitsArgs)

#define MINIDL_CUDA_DECLARE_LAUNCHER(name, Args) \
  template <class Exec>                          \
  void name(const Args& args);
MINIDL_CUDA_LAUNCHERS(MINIDL_CUDA_DECLARE_LAUNCHER)
#undef MINIDL_CUDA_DECLARE_LAUNCHER

}  // namespace minidl::cuda::kern
