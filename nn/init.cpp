// Parameter initialisers (see init.h). Values are drawn with the tensor factories (uniform/randn from the
// default generator) and copied into the target under no-grad, so a parameter requiring grad can be filled.
#include "nn/init.h"

#include <cmath>

#include "autograd/grad_mode.h"

namespace minidl::nn::init {
namespace {

void assign(Tensor& t, const Tensor& values) {
  autograd::NoGradGuard no_grad;
  Tensor dst = t.detach();
  dst.copy_(values);
}

int64_t fan(const Tensor& t, FanMode mode) {
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  return mode == FanMode::FanIn ? in : out;
}

}  // namespace

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  MINIDL_CHECK(t.dim() >= 2, "nn::init: fan in and fan out need a tensor with at least 2 dims, got shape ",
               shape_str(t.sizes()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(const std::string& nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv2d" || nonlinearity == "sigmoid") return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  MINIDL_FAIL("nn::init::calculate_gain: unsupported nonlinearity '", nonlinearity, "'");
}

Tensor& uniform_(Tensor& t, double lo, double hi) {
  assign(t, uniform(t.sizes(), lo, hi, TensorOptions{}.dtype(t.dtype()).device(t.device())));
  return t;
}

Tensor& normal_(Tensor& t, double mean, double std) {
  MINIDL_CHECK(std >= 0.0, "nn::init::normal_: std must be non-negative, got ", std);
  Tensor z = randn(t.sizes(), TensorOptions{}.dtype(t.dtype()).device(t.device()));
  {
    autograd::NoGradGuard no_grad;
    z = z * std + mean;
  }
  assign(t, z);
  return t;
}

Tensor& constant_(Tensor& t, double value) {
  autograd::NoGradGuard no_grad;
  Tensor dst = t.detach();
  dst.fill_(value);
  return t;
}

Tensor& zeros_(Tensor& t) { return constant_(t, 0.0); }
Tensor& ones_(Tensor& t) { return constant_(t, 1.0); }

Tensor& kaiming_uniform_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity) {
  const double gain = calculate_gain(nonlinearity, a);
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan(t, mode)));
  return uniform_(t, -bound, bound);
}

Tensor& kaiming_normal_(Tensor& t, double a, FanMode mode, const std::string& nonlinearity) {
  const double gain = calculate_gain(nonlinearity, a);
  return normal_(t, 0.0, gain / std::sqrt(static_cast<double>(fan(t, mode))));
}

Tensor& xavier_uniform_(Tensor& t, double gain) {
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(in + out));
  return uniform_(t, -bound, bound);
}

}  // namespace minidl::nn::init
