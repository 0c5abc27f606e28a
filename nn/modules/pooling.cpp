// Pooling layers (see pooling.h).
#include "nn/modules/pooling.h"

#include "autograd/ops.h"

namespace minidl::nn {
namespace {

Pool2dParams make_params(const char* op, int64_t k, int64_t s, int64_t pad) {
  if (s == 0) s = k;
  MINIDL_CHECK(k > 0 && s > 0 && pad >= 0 && 2 * pad <= k, "nn::", op, ": invalid kernel_size=", k, " stride=", s,
               " padding=", pad, " (padding must be at most half the kernel)");
  Pool2dParams p;
  p.kernel_h = p.kernel_w = k;
  p.stride_h = p.stride_w = s;
  p.pad_h = p.pad_w = pad;
  return p;
}

std::string pool_repr(const Pool2dParams& p) {
  return "kernel_size=" + std::to_string(p.kernel_h) + ", stride=" + std::to_string(p.stride_h) +
         ", padding=" + std::to_string(p.pad_h);
}

void check_4d(const char* op, const std::string& path, const Tensor& x) {
  MINIDL_CHECK(x.dim() == 4, "nn::", op, " ('", path, "'): expected input (N, C, H, W), got ", shape_str(x.sizes()));
}

}  // namespace

MaxPool2d::MaxPool2d(int64_t k, int64_t s, int64_t pad) : Module("MaxPool2d"), params(make_params("MaxPool2d", k, s, pad)) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_4d("MaxPool2d", path(), x);
  return max_pool2d(x, params);
}

std::string MaxPool2d::extra_repr() const { return pool_repr(params); }

AvgPool2d::AvgPool2d(int64_t k, int64_t s, int64_t pad, bool count_include_pad)
    : Module("AvgPool2d"), params(make_params("AvgPool2d", k, s, pad)) {
  params.count_include_pad = count_include_pad;
}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_4d("AvgPool2d", path(), x);
  return avg_pool2d(x, params);
}

std::string AvgPool2d::extra_repr() const { return pool_repr(params); }

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t oh, int64_t ow) : Module("AdaptiveAvgPool2d"), out_h(oh), out_w(ow) {
  MINIDL_CHECK(oh > 0 && ow > 0, "nn::AdaptiveAvgPool2d: output size must be positive, got (", oh, ", ", ow, ")");
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  check_4d("AdaptiveAvgPool2d", path(), x);
  return adaptive_avg_pool2d(x, out_h, out_w);
}

std::string AdaptiveAvgPool2d::extra_repr() const {
  return "output_size=(" + std::to_string(out_h) + ", " + std::to_string(out_w) + ")";
}

}  // namespace minidl::nn
