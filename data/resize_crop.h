// The ImageNet transforms on uint8 HWC images, with torchvision 0.14's semantics on PIL images (the path the
// ImageNet reference scripts use): Resize (shorter side or exact size, bilinear with Pillow's antialiasing),
// CenterCrop (zero padding when the crop is larger, Python's round-half-even centring) and RandomResizedCrop
// (scale (0.08, 1), log-uniform ratio (3/4, 4/3), 10 attempts, then the central-crop fallback). Random draws
// come from the sample's SampleRng, so they differ from torch's generator but follow the same distribution.
#pragma once

#include <cstdint>
#include <utility>

#include "data/transforms.h"

namespace minidl::data {

/// A crop window in pixels; may reach outside the image (the outside reads as zero).
struct CropWindow {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

/// torchvision's crop: the window of a uint8 HWC image, zeros where it lies outside.
Tensor crop_u8(const Tensor& image, const CropWindow& w);

/// The output size (h, w) of torchvision's Resize(size) for an h x w image: the shorter side becomes `size`,
/// the longer int(size * long / short).
std::pair<int64_t, int64_t> resized_shorter_side(int64_t h, int64_t w, int64_t size);

/// Resize(size) (shorter side) or Resize((height, width)) (exact size): bilinear with antialiasing.
class Resize : public Transform {
 public:
  explicit Resize(int64_t shorter_side);
  Resize(int64_t height, int64_t width);
  Tensor apply(const Tensor& image, SampleRng& rng) const override;
  std::string describe() const override;

 private:
  int64_t shorter_ = 0, height_ = 0, width_ = 0;
};

/// The central height x width window (torchvision CenterCrop: pads with zeros when the image is smaller).
class CenterCrop : public Transform {
 public:
  explicit CenterCrop(int64_t size) : CenterCrop(size, size) {}
  CenterCrop(int64_t height, int64_t width);
  Tensor apply(const Tensor& image, SampleRng& rng) const override;
  std::string describe() const override;
  /// The window for an image_h x image_w image.
  CropWindow window(int64_t image_h, int64_t image_w) const;

 private:
  int64_t height_, width_;
};

struct RandomResizedCropOptions {
  double scale_min = 0.08, scale_max = 1.0;
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
};

/// RandomResizedCrop.get_params: up to 10 draws of (area fraction, log-uniform aspect ratio) whose window fits
/// the image, else the central crop clamped to the ratio range. The window always lies inside the image.
CropWindow random_resized_crop_window(int64_t image_h, int64_t image_w, const RandomResizedCropOptions& o,
                                      SampleRng& rng);

/// A random window (random_resized_crop_window) resized to height x width (bilinear, antialiased).
class RandomResizedCrop : public Transform {
 public:
  RandomResizedCrop(int64_t height, int64_t width, RandomResizedCropOptions options = {});
  Tensor apply(const Tensor& image, SampleRng& rng) const override;
  std::string describe() const override;
  const RandomResizedCropOptions& options() const { return opts_; }

 private:
  int64_t height_, width_;
  RandomResizedCropOptions opts_;
};

}  // namespace minidl::data
