// Evaluation loop, printing in the seeds' form:
//   Test: [0/100]	Time 0.366 (0.366)	Loss 0.2783 (0.2783)	Prec 93.000% (93.000%)
//    * Prec 92.260%
#include "evaluate.h"

#include <chrono>
#include <cstdio>

#include <minidl.h>

namespace cifar_resnet20 {

using namespace minidl;

int64_t count_correct(const Tensor& logits_any, const Tensor& labels_any) {
  const Tensor logits = logits_any.to(kCPU), labels = labels_any.to(kCPU);  // no-ops on the CPU
  const auto lv = logits.to_vector<float>();
  const auto yv = labels.to_vector<int64_t>();
  const int64_t n = logits.size(0), c = logits.size(1);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j)
      if (lv[i * c + j] > lv[i * c + best]) best = j;
    correct += best == yv[i];
  }
  return correct;
}

EvalResult evaluate(nn::Module& model, data::DataLoader& loader, int64_t print_freq, bool verbose, int64_t max_batches,
                    DType dtype) {
  NoGradGuard no_grad;
  model.eval();
  const auto params = model.parameters();
  const Device dev = params.empty() ? kCPU : params.front().device();  // batches go where the model is
  const int64_t nb = loader.num_batches();
  double loss_sum = 0, time_sum = 0;
  int64_t seen = 0, correct_sum = 0;
  auto t_prev = std::chrono::steady_clock::now();
  for (data::Batch& b : loader.epoch(0)) {
    if (max_batches > 0 && b.batch_index >= max_batches) break;
    Tensor logits = model((b.images.dtype() == dtype ? b.images : b.images.to(dtype)).to(dev));
    const double loss = cross_entropy(logits, b.labels.to(dev)).item<double>();
    const int64_t n = b.labels.numel();
    const int64_t correct = count_correct(logits, b.labels);
    loss_sum += loss * static_cast<double>(n);
    correct_sum += correct;
    seen += n;
    const auto now = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(now - t_prev).count();
    t_prev = now;
    time_sum += dt;
    if (verbose && b.batch_index % print_freq == 0) {
      std::printf("Test: [%lld/%lld]\tTime %.3f (%.3f)\tLoss %.4f (%.4f)\tPrec %.3f%% (%.3f%%)\n",
                  static_cast<long long>(b.batch_index), static_cast<long long>(nb), dt,
                  time_sum / static_cast<double>(b.batch_index + 1), loss, loss_sum / static_cast<double>(seen),
                  100.0 * static_cast<double>(correct) / static_cast<double>(n),
                  100.0 * static_cast<double>(correct_sum) / static_cast<double>(seen));
      std::fflush(stdout);
    }
  }
  EvalResult r;
  r.loss = seen ? loss_sum / static_cast<double>(seen) : 0.0;
  r.accuracy = seen ? 100.0 * static_cast<double>(correct_sum) / static_cast<double>(seen) : 0.0;
  if (verbose) std::printf(" * Prec %.3f%%\n", r.accuracy);
  return r;
}

}  // namespace cifar_resnet20
