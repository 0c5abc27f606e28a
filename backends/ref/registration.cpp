// Registers the ref backend under the name "ref" at static-init time and answers supports(): fill and copy
// take every dtype, every math primitive float32/float64. Quantize (project_to_levels, quantize_clip_forward /
// _backward, pact_forward) and the fused conv2d_inference / batch_norm_relu_* / batch_norm_add_relu_* are the
// host references ref inherits from the Backend base class, also float32/float64.
#include "backends/ref/ref_backend.h"

namespace minidl {

bool RefBackend::supports(OpKind op, DType dtype) const {
  switch (op) {
    case OpKind::Fill:
    case OpKind::Copy: return true;
    case OpKind::Unary:
    case OpKind::Binary:
    case OpKind::Reduce:
    case OpKind::Matmul:
    case OpKind::Conv2d:
    case OpKind::BatchNorm:
    case OpKind::MaxPool2d:
    case OpKind::AvgPool2d:
    case OpKind::AdaptiveAvgPool2d:
    case OpKind::LogSoftmax:
    case OpKind::NllLoss:
    case OpKind::Quantize:
    case OpKind::OptimUpdate: return is_floating(dtype);
    case OpKind::kCount: return false;
  }
  return false;
}

namespace {

RefBackend& ref_instance() {
  static RefBackend instance;
  return instance;
}

// Static-init registration: the registry itself is a function-local static, so the order of static
// initialisation between this file and backends/registry.cpp does not matter.
[[maybe_unused]] const bool kRegistered = [] {
  register_backend("ref", &ref_instance());
  return true;
}();

}  // namespace
}  // namespace minidl
