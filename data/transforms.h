// Transforms on one sample, in torchvision's order: geometric ones on uint8 HWC images (RandomCrop with
// padding, RandomHorizontalFlip), then ToTensor / Normalize to float32 CHW. Random choices come from a
// SampleRng keyed by (seed, epoch, index), handed in by TransformDataset, so augmentation is reproducible and
// independent of the loader's threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/sample_rng.h"

namespace minidl::data {

class Transform {
 public:
  virtual ~Transform() = default;
  /// Returns the transformed image (a new tensor; the input is not modified). Must be thread-safe.
  virtual Tensor apply(const Tensor& image, SampleRng& rng) const = 0;
  virtual std::string describe() const = 0;
};

using TransformPtr = std::shared_ptr<const Transform>;

/// Pads by `padding` zero pixels on every side, then crops a random height x width window
/// (torchvision RandomCrop(size, padding) with fill 0). uint8 HWC in and out.
class RandomCrop : public Transform {
 public:
  RandomCrop(int64_t size, int64_t padding = 0) : RandomCrop(size, size, padding) {}
  RandomCrop(int64_t height, int64_t width, int64_t padding);
  Tensor apply(const Tensor& image, SampleRng& rng) const override;
  std::string describe() const override;

 private:
  int64_t height_, width_, padding_;
};

/// Mirrors the image left-right with probability p. uint8 HWC in and out.
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(double p = 0.5);
  Tensor apply(const Tensor& image, SampleRng& rng) const override;
  std::string describe() const override;

 private:
  double p_;
};

/// uint8 HWC -> float32 CHW scaled to [0, 1].
class ToTensor : public Transform {
 public:
  Tensor apply(const Tensor& image, SampleRng& rng) const override;
  std::string describe() const override { return "ToTensor()"; }
};

/// (x - mean[c]) / std[c] per channel on float32 CHW; a uint8 HWC input is first scaled to [0, 1] (ToTensor
/// fused in, one pass). mean/std have one entry per channel, or one entry for all channels.
class Normalize : public Transform {
 public:
  Normalize(std::vector<double> mean, std::vector<double> stdev);
  Tensor apply(const Tensor& image, SampleRng& rng) const override;
  std::string describe() const override;

 private:
  std::vector<double> mean_, std_;
};

/// Applies transforms in order, sharing one SampleRng (each draws what it needs, in sequence).
class Compose : public Transform {
 public:
  explicit Compose(std::vector<TransformPtr> transforms);
  Tensor apply(const Tensor& image, SampleRng& rng) const override;
  std::string describe() const override;

 private:
  std::vector<TransformPtr> transforms_;
};

/// A dataset whose samples pass through a transform; the sample at (epoch, index) draws from
/// SampleRng(seed, epoch, index). get(index) is the epoch-0 view.
class TransformDataset : public Dataset {
 public:
  TransformDataset(DatasetPtr base, TransformPtr transform, uint64_t seed = 0);
  int64_t size() const override { return base_->size(); }
  Example get(int64_t index) const override { return get_for_epoch(index, 0); }
  Example get_for_epoch(int64_t index, int64_t epoch) const override;
  int64_t num_classes() const override { return base_->num_classes(); }
  std::string describe() const override;
  const DatasetPtr& base() const { return base_; }

 private:
  DatasetPtr base_;
  TransformPtr transform_;
  uint64_t seed_;
};

/// The standard CIFAR pipeline: RandomCrop(size, padding), RandomHorizontalFlip(0.5), Normalize(mean, stdev)
/// (the seeds use size 32, padding 4); with augment=false only Normalize.
TransformPtr standard_augmentation(int64_t size, int64_t padding, bool augment, std::vector<double> mean,
                                   std::vector<double> stdev);

}  // namespace minidl::data
