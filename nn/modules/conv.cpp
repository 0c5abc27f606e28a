// nn::Conv2d (see conv.h).
#include "nn/modules/conv.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/init.h"

namespace minidl::nn {

Conv2d::Conv2d(const Conv2dOptions& o) : Module("Conv2d"), options(o) {
  MINIDL_CHECK(o.in_channels > 0 && o.out_channels > 0 && o.kernel_h > 0 && o.kernel_w > 0 && o.stride > 0 &&
                   o.padding >= 0 && o.dilation > 0 && o.groups > 0,
               "nn::Conv2d: invalid options in=", o.in_channels, " out=", o.out_channels, " kernel=", o.kernel_h,
               "x", o.kernel_w, " stride=", o.stride, " padding=", o.padding, " dilation=", o.dilation,
               " groups=", o.groups);
  MINIDL_CHECK(o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0, "nn::Conv2d: channels in=",
               o.in_channels, " out=", o.out_channels, " must be divisible by groups=", o.groups);
  weight = register_parameter("weight", empty({o.out_channels, o.in_channels / o.groups, o.kernel_h, o.kernel_w}));
  if (o.bias) bias = register_parameter("bias", empty({o.out_channels}));
  reset_parameters();
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, bool with_bias)
    : Conv2d(Conv2dOptions{in, out, k, k, stride, padding, 1, 1, with_bias}) {}

void Conv2d::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double fan_in = static_cast<double>(init::calculate_fan_in_and_fan_out(weight).first);
    init::uniform_(bias, -1.0 / std::sqrt(fan_in), 1.0 / std::sqrt(fan_in));
  }
}

Conv2dParams Conv2d::params() const {
  Conv2dParams p;
  p.stride_h = p.stride_w = options.stride;
  p.pad_h = p.pad_w = options.padding;
  p.dilation_h = p.dilation_w = options.dilation;
  p.groups = options.groups;
  return p;
}

Tensor Conv2d::forward(const Tensor& x) {
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == options.in_channels, "nn::Conv2d ('", path(),
               "'): expected input (N, ", options.in_channels, ", H, W), got ", shape_str(x.sizes()));
  return conv2d(x, weight, bias, params());
}

std::string Conv2d::extra_repr() const {
  const auto& o = options;
  std::string s = std::to_string(o.in_channels) + ", " + std::to_string(o.out_channels) + ", kernel_size=(" +
                  std::to_string(o.kernel_h) + ", " + std::to_string(o.kernel_w) + "), stride=(" +
                  std::to_string(o.stride) + ", " + std::to_string(o.stride) + ")";
  if (o.padding) s += ", padding=(" + std::to_string(o.padding) + ", " + std::to_string(o.padding) + ")";
  if (o.dilation != 1) s += ", dilation=" + std::to_string(o.dilation);
  if (o.groups != 1) s += ", groups=" + std::to_string(o.groups);
  if (!o.bias) s += ", bias=False";
  return s;
}

}  // namespace minidl::nn
