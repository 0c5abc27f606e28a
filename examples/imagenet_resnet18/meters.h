// Running averages and top-k accuracy as PyTorch's ImageNet example prints them:
//   Epoch: [0][ 10/469]  Time  0.503 ( 0.503)  Data  0.001 ( 0.003)  Loss 2.3026e+00 (2.3026e+00)  Acc@1 ...
#pragma once

#include <minidl.h>

#include <cstdint>
#include <string>

namespace imagenet_resnet18 {

struct Average {
  double sum = 0, last = 0;
  int64_t count = 0;
  void add(double v, int64_t n = 1) {
    last = v;
    sum += v * static_cast<double>(n);
    count += n;
  }
  double avg() const { return count ? sum / static_cast<double>(count) : 0.0; }
};

/// Percentages of rows of logits (N, C) whose label is the arg-max (top-1) or among the 5 largest (top-5).
std::pair<double, double> topk_accuracy(const minidl::Tensor& logits, const minidl::Tensor& labels);

}  // namespace imagenet_resnet18
