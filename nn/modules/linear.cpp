// nn::Linear (see linear.h).
#include "nn/modules/linear.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/init.h"

namespace minidl::nn {

Linear::Linear(int64_t in_f, int64_t out_f, bool with_bias)
    : Module("Linear"), in_features(in_f), out_features(out_f) {
  MINIDL_CHECK(in_f > 0 && out_f > 0, "nn::Linear: features must be positive, got in=", in_f, " out=", out_f);
  weight = register_parameter("weight", empty({out_f, in_f}));
  if (with_bias) bias = register_parameter("bias", empty({out_f}));
  reset_parameters();
}

void Linear::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) {
  MINIDL_CHECK(x.dim() == 2 && x.size(1) == in_features, "nn::Linear ('", path(), "'): expected input (N, ",
               in_features, "), got ", shape_str(x.sizes()));
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features) +
         ", bias=" + (bias.defined() ? "True" : "False");
}

}  // namespace minidl::nn
