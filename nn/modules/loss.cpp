// Loss modules (see loss.h).
#include "nn/modules/loss.h"

#include "autograd/ops.h"
#include "autograd/saved_tensor.h"

namespace minidl::nn {

CrossEntropyLoss::CrossEntropyLoss(double s) : Module("CrossEntropyLoss"), label_smoothing(s) {
  MINIDL_CHECK(s >= 0.0 && s <= 1.0, "nn::CrossEntropyLoss: label_smoothing must be in [0, 1], got ", s);
}

Tensor CrossEntropyLoss::forward(const Tensor& logits, const Tensor& target) {
  MINIDL_CHECK(logits.dim() == 2, "nn::CrossEntropyLoss: expected logits (N, C), got ", shape_str(logits.sizes()));
  MINIDL_CHECK(target.dim() == 1 && target.size(0) == logits.size(0) && target.dtype() == DType::i64,
               "nn::CrossEntropyLoss: expected int64 target (", logits.size(0), "), got ", dtype_name(target.dtype()),
               " ", shape_str(target.sizes()));
  return cross_entropy(logits, target, label_smoothing);
}

Tensor CrossEntropyLoss::operator()(const Tensor& logits, const Tensor& target) {
  autograd::ModuleNameGuard guard(path());
  return forward(logits, target);
}

std::string CrossEntropyLoss::extra_repr() const {
  return label_smoothing > 0 ? "label_smoothing=" + std::to_string(label_smoothing) : "";
}

Tensor MSELoss::forward(const Tensor& input, const Tensor& target) {
  MINIDL_CHECK(input.sizes() == target.sizes(), "nn::MSELoss: input shape ", shape_str(input.sizes()),
               " and target shape ", shape_str(target.sizes()), " differ");
  return mse_loss(input, target);
}

Tensor MSELoss::operator()(const Tensor& input, const Tensor& target) {
  autograd::ModuleNameGuard guard(path());
  return forward(input, target);
}

}  // namespace minidl::nn
