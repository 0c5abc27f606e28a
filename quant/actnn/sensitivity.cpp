// ActNN sensitivity model (see sensitivity.h).
#include "quant/actnn/sensitivity.h"

#include "core/error.h"

namespace minidl::quant::actnn {

std::vector<float> range_sqr(const float* mn, const float* mx, int64_t n, int64_t groups_per_sample, int64_t group_size,
                             double pixels) {
  MINIDL_CHECK(n > 0 && groups_per_sample > 0 && group_size > 0 && pixels > 0, "actnn::range_sqr: ", n, " samples, ",
               groups_per_sample, " groups of ", group_size, ", ", pixels, " pixels (expected > 0)");
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) {
    double sum = 0;
    for (int64_t g = s * groups_per_sample; g < (s + 1) * groups_per_sample; ++g) {
      const double r = static_cast<double>(mx[g]) - static_cast<double>(mn[g]);
      sum += r * r;
    }
    out[static_cast<size_t>(s)] = static_cast<float>(sum * static_cast<double>(group_size) / pixels);
  }
  return out;
}

std::vector<float> conv_sensitivity(const std::vector<float>& r2, const std::vector<float>& scale, int64_t kernel_area,
                                    int64_t conv_groups) {
  MINIDL_CHECK(scale.size() == 1 || scale.size() == r2.size(), "actnn::conv_sensitivity: ", scale.size(),
               " gradient scales for ", r2.size(), " samples (expected 1 or one per sample)");
  MINIDL_CHECK(kernel_area > 0 && conv_groups > 0, "actnn::conv_sensitivity: kernel area ", kernel_area, " and groups ",
               conv_groups, " must be positive");
  const double k = static_cast<double>(kernel_area) / 4.0 / static_cast<double>(conv_groups);
  std::vector<float> C(r2.size());
  for (size_t i = 0; i < r2.size(); ++i) C[i] = static_cast<float>(k * r2[i] * scale[scale.size() == 1 ? 0 : i]);
  return C;
}

std::vector<float> bn_sensitivity(const std::vector<float>& r2) { return r2; }

GradientScale::GradientScale(bool per_sample, int64_t dataset_size) : per_sample_(per_sample) {
  if (per_sample) {
    MINIDL_CHECK(dataset_size > 0, "actnn::GradientScale: --usegradient needs the dataset size, got ", dataset_size);
    scales_.assign(static_cast<size_t>(dataset_size), 0.0f);
  }
}

void GradientScale::update(const std::vector<float>& sq, const std::vector<int64_t>& indices) {
  MINIDL_CHECK(!sq.empty(), "actnn::GradientScale::update: empty batch");
  seen_ = true;
  if (!per_sample_) {
    double sum = 0;
    for (float v : sq) sum += v;
    scales_[0] = static_cast<float>(sum / static_cast<double>(sq.size()));
    return;
  }
  MINIDL_CHECK(indices.size() == sq.size(), "actnn::GradientScale::update: ", sq.size(), " gradient norms but ",
               indices.size(), " sample indices (--usegradient needs the loader's indices)");
  for (size_t i = 0; i < sq.size(); ++i) {
    MINIDL_CHECK(indices[i] >= 0 && indices[i] < static_cast<int64_t>(scales_.size()),
                 "actnn::GradientScale::update: sample index ", indices[i], " outside the dataset of ", scales_.size());
    float& s = scales_[static_cast<size_t>(indices[i])];
    s = 0.5f * s + 0.5f * sq[i];
  }
}

std::vector<float> GradientScale::get(const std::vector<int64_t>& indices) const {
  if (!per_sample_) return {scales_[0]};
  MINIDL_CHECK(!indices.empty(), "actnn::GradientScale::get: --usegradient needs the batch's sample indices");
  std::vector<float> out(indices.size());
  double sum = 0;
  for (size_t i = 0; i < indices.size(); ++i) {
    MINIDL_CHECK(indices[i] >= 0 && indices[i] < static_cast<int64_t>(scales_.size()),
                 "actnn::GradientScale::get: sample index ", indices[i], " outside the dataset of ", scales_.size());
    out[i] = scales_[static_cast<size_t>(indices[i])];
    sum += out[i];
  }
  // The reference's fill-in for samples never seen: the mean of the batch (zeros included) + 1e-9.
  const float fill = static_cast<float>(sum / static_cast<double>(out.size()) + 1e-9);
  for (float& v : out)
    if (v == 0.0f) v = fill;
  return out;
}

}  // namespace minidl::quant::actnn
