// See meters.h.
#include "meters.h"

#include <algorithm>

namespace imagenet_resnet18 {

std::pair<double, double> topk_accuracy(const minidl::Tensor& logits, const minidl::Tensor& labels) {
  const auto lv = logits.to(minidl::kCPU).to(minidl::DType::f32).to_vector<float>();
  const auto yv = labels.to(minidl::kCPU).to_vector<int64_t>();
  const int64_t n = logits.size(0), c = logits.size(1);
  int64_t top1 = 0, top5 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = &lv[static_cast<size_t>(i * c)];
    const float target = row[yv[static_cast<size_t>(i)]];
    // Rank of the label: classes scoring higher (ties count for the label, as torch.topk keeps the first).
    int64_t higher = 0;
    for (int64_t j = 0; j < c; ++j) higher += row[j] > target || (row[j] == target && j < yv[static_cast<size_t>(i)]);
    top1 += higher == 0;
    top5 += higher < std::min<int64_t>(5, c);
  }
  const double d = static_cast<double>(std::max<int64_t>(n, 1));
  return {100.0 * static_cast<double>(top1) / d, 100.0 * static_cast<double>(top5) / d};
}

}  // namespace imagenet_resnet18
