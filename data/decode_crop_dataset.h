// The ImageNet training pipeline with the crop decided before the decode: for each sample, read the file,
// take the image size from the JPEG header, draw the RandomResizedCrop window, decode only that window
// (jpeg_region.h; DCT-domain scaling when the window is at least twice the output), resize it, flip, and
// normalise. Draws come from SampleRng(seed, epoch, index) in the order Compose{RandomResizedCrop,
// RandomHorizontalFlip, Normalize} makes them, so without DCT scaling the result equals that composition on
// the fully decoded image; PNGs (and other stb formats) take exactly that path.
#pragma once

#include <memory>
#include <vector>

#include "data/image_folder.h"
#include "data/resize_crop.h"

namespace minidl::data {

struct DecodeCropOptions {
  int64_t height = 224, width = 224;
  RandomResizedCropOptions crop;
  double flip_p = 0.5;
  std::vector<double> mean{0.485, 0.456, 0.406}, stdev{0.229, 0.224, 0.225};
  bool dct_scaling = true;  // false: always decode the window at full resolution
};

class DecodeCropDataset : public Dataset {
 public:
  DecodeCropDataset(std::shared_ptr<const ImageFolder> folder, DecodeCropOptions options, uint64_t seed = 0);
  int64_t size() const override { return folder_->size(); }
  Example get(int64_t index) const override { return get_for_epoch(index, 0); }
  /// float32 CHW, normalised; a corrupt file throws naming it.
  Example get_for_epoch(int64_t index, int64_t epoch) const override;
  int64_t num_classes() const override { return folder_->num_classes(); }
  std::string describe() const override;

 private:
  std::shared_ptr<const ImageFolder> folder_;
  DecodeCropOptions opts_;
  uint64_t seed_;
  RandomHorizontalFlip flip_;
  Normalize normalize_;
};

}  // namespace minidl::data
