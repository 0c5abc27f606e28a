// ActNN's sensitivity model (spec/quant.md 2.4) as pure functions and one small state class: the per-sample
// range term R^2_n from the codec's per-group min/max, the per-sample coefficient C_n of a conv/linear or a
// batch norm, and the gradient scale S (one running scalar per layer, or with --usegradient one running value
// per training sample, looked up by the loader's sample indices).
#pragma once

#include <cstdint>
#include <vector>

namespace minidl::quant::actnn {

/// R^2_n = (G / P) * sum over sample n's groups of (mx - mn)^2, for N samples of `groups_per_sample` groups of G
/// elements each; P = elements per sample / input channels ("pixels": H*W for a conv input, 1 for a 2-D linear
/// input). mn/mx hold N * groups_per_sample values, sample-major.
std::vector<float> range_sqr(const float* mn, const float* mx, int64_t n, int64_t groups_per_sample, int64_t group_size,
                             double pixels);

/// Conv/linear: C_n = (K / 4 / groups) * R^2_n * S_n, K = kernel area (1 for linear), groups = conv groups.
/// `scale` holds one S per sample, or a single S shared by all.
std::vector<float> conv_sensitivity(const std::vector<float>& range_sqr, const std::vector<float>& scale,
                                    int64_t kernel_area, int64_t conv_groups);
/// Batch norm: C_n = R^2_n (no kernel term, no gradient term).
std::vector<float> bn_sensitivity(const std::vector<float>& range_sqr);

/// The gradient scale S of one compressed layer, fed at the start of its backward with the squared norm of
/// each sample's output gradient.
/// - per_sample = false: S = mean_n ||g_n||^2, one scalar, overwritten every backward; 0 before the first.
/// - per_sample = true (--usegradient): S[idx] <- 0.5 * S[idx] + 0.5 * ||g_n||^2 for the batch's dataset
///   indices, kept for the whole training set; a read gives each index its S, with indices never seen (S = 0)
///   set to the batch mean + 1e-9.
class GradientScale {
 public:
  GradientScale() = default;
  /// `dataset_size` is needed (> 0) only when per_sample.
  GradientScale(bool per_sample, int64_t dataset_size);

  bool per_sample() const { return per_sample_; }
  /// Records a backward: one squared norm per sample; `indices` (dataset indices, same length) when per_sample.
  void update(const std::vector<float>& grad_sqnorm, const std::vector<int64_t>& indices);
  /// The S of a batch: one value per index when per_sample, else the single scalar (indices unused).
  std::vector<float> get(const std::vector<int64_t>& indices) const;
  /// True once an update has been recorded (all-zero sensitivities before that).
  bool seen() const { return seen_; }

 private:
  bool per_sample_ = false;
  bool seen_ = false;
  std::vector<float> scales_ = {0.0f};
};

}  // namespace minidl::quant::actnn
