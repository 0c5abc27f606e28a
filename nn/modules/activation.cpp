// ReLU, Flatten, Dropout (see activation.h).
#include "nn/modules/activation.h"

#include "autograd/ops.h"

namespace minidl::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor Flatten::forward(const Tensor& x) { return x.flatten(start_dim, end_dim); }

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim);
}

Dropout::Dropout(double prob) : Module("Dropout"), p(prob) {
  MINIDL_CHECK(prob >= 0.0 && prob < 1.0, "nn::Dropout: probability must be in [0, 1), got ", prob);
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training()); }

std::string Dropout::extra_repr() const { return "p=" + std::to_string(p); }

}  // namespace minidl::nn
