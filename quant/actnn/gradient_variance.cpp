// ActNN's Overall Bias / Var / SampleVar measurement (see gradient_variance.h).
#include "quant/actnn/gradient_variance.h"

#include <cstdio>

#include "autograd/ops.h"
#include "core/error.h"

namespace minidl::quant::actnn {
namespace {

using Grads = std::vector<std::vector<double>>;  // per weight, per element

// The conv / linear weights: parameters named "weight" with at least 2 dims (batch-norm weights have 1).
std::vector<std::pair<std::string, Tensor>> layer_weights(const nn::Module& model) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, p] : model.named_parameters()) {
    const bool is_weight = name == "weight" || (name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0);
    if (is_weight && p.dim() >= 2) out.emplace_back(name, p);
  }
  return out;
}

Grads backward_pass(nn::Module& model, const std::vector<std::pair<std::string, Tensor>>& weights,
                    const VarianceBatch& b, const autograd::SavedTensorHooks* hooks,
                    const std::shared_ptr<AdaptiveBits>& policy) {
  if (policy) policy->set_batch(b.indices);
  model.zero_grad();
  {
    std::unique_ptr<autograd::SavedTensorHooksGuard> guard;
    if (hooks) guard = std::make_unique<autograd::SavedTensorHooksGuard>(*hooks);
    Tensor loss = cross_entropy(model(b.images), b.labels);
    loss.backward();
  }
  Grads g;
  for (auto& [name, w] : weights) {
    MINIDL_CHECK(w.grad().defined(), "actnn::measure_gradient_variance: '", name, "' got no gradient");
    const auto v = w.grad().contiguous().to_vector<float>();
    g.emplace_back(v.begin(), v.end());
  }
  return g;
}

}  // namespace

std::string VarianceReport::overall() const {
  char buf[160];
  std::snprintf(buf, sizeof buf, "Overall Bias = %.8g, Var = %.8g, SampleVar = %.8g", bias, var, sample_var);
  return buf;
}

VarianceReport measure_gradient_variance(nn::Module& model, const std::vector<VarianceBatch>& batches,
                                         const autograd::SavedTensorHooks& hooks,
                                         const std::shared_ptr<AdaptiveBits>& policy, int samples) {
  MINIDL_CHECK(!batches.empty(), "actnn::measure_gradient_variance: no batches");
  MINIDL_CHECK(samples >= 2, "actnn::measure_gradient_variance: needs >= 2 compressed samples, got ", samples);
  model.train();
  const auto weights = layer_weights(model);
  MINIDL_CHECK(!weights.empty(), "actnn::measure_gradient_variance: the model has no conv / linear weights");
  TensorMap saved;
  for (auto& [k, t] : model.state_dict()) saved[k] = t.clone();
  const size_t L = weights.size();
  const auto nb = static_cast<double>(batches.size());

  // 1. exact gradients with the scales updated; their mean over the batches
  if (policy) {
    policy->set_update_scale(true);
    policy->set_auto_allocate(false);
  }
  Grads mean_grad(L);
  for (const auto& b : batches) {
    const Grads g = backward_pass(model, weights, b, nullptr, policy);
    for (size_t l = 0; l < L; ++l) {
      if (mean_grad[l].empty()) mean_grad[l].assign(g[l].size(), 0.0);
      for (size_t i = 0; i < g[l].size(); ++i) mean_grad[l][i] += g[l][i] / nb;
    }
  }
  if (policy) policy->set_update_scale(false);

  // 2. back to the measured state; per-layer allocation from one compressed pass
  model.load_state_dict(saved);
  if (policy && policy->options().per_layer) {
    backward_pass(model, weights, batches[0], &hooks, policy);
    policy->allocate_per_layer();
    // From here on the controller runs as in training (and in the reference, whose per-layer allocation follows
    // every backward with the scales frozen): each compressed pass re-allocates the budgets from the
    // sensitivities of the batch it just saw, so a batch's later samples use budgets fitted to that batch and
    // not batch 0's for the whole measurement.
    policy->set_auto_allocate(true);
  }

  // 3. per batch: exact vs `samples` compressed gradients
  VarianceReport r;
  r.batches = static_cast<int64_t>(batches.size());
  r.layers.resize(L);
  for (size_t l = 0; l < L; ++l) {
    r.layers[l].name = weights[l].first;
    for (double v : mean_grad[l]) r.layers[l].grad_sqnorm += v * v;
  }
  for (const auto& b : batches) {
    const Grads exact = backward_pass(model, weights, b, nullptr, policy);
    Grads sum(L), sq(L);
    for (int k = 0; k < samples; ++k) {
      const Grads g = backward_pass(model, weights, b, &hooks, policy);
      for (size_t l = 0; l < L; ++l) {
        if (sum[l].empty()) sum[l].assign(g[l].size(), 0.0), sq[l].assign(g[l].size(), 0.0);
        for (size_t i = 0; i < g[l].size(); ++i) sum[l][i] += g[l][i], sq[l][i] += g[l][i] * g[l][i];
      }
    }
    for (size_t l = 0; l < L; ++l) {
      LayerVariance& lv = r.layers[l];
      for (size_t i = 0; i < exact[l].size(); ++i) {
        const double m = sum[l][i] / samples, m2 = sq[l][i] / samples;
        lv.var += (m2 - m * m) / nb;
        lv.bias += (m - exact[l][i]) * (m - exact[l][i]) / nb;
        lv.sample_var += (exact[l][i] - mean_grad[l][i]) * (exact[l][i] - mean_grad[l][i]) / nb;
      }
    }
  }
  for (const auto& lv : r.layers) r.bias += lv.bias, r.var += lv.var, r.sample_var += lv.sample_var;
  model.load_state_dict(saved);
  if (policy) {
    policy->set_update_scale(true);
    policy->set_auto_allocate(true);
  }
  return r;
}

}  // namespace minidl::quant::actnn
