// The datasets of a run: train = crop-before-decode RandomResizedCrop + flip + normalise (data/
// decode_crop_dataset.h); val = Resize(image_size * 256/224) + CenterCrop(image_size) + normalise on the whole
// decoded image (torchvision's ImageNet evaluation, not the Resize((256, 256)) of some reference scripts);
// or --synthetic random tensors that take I/O out of a measurement.
#pragma once

#include <data/dataset.h>
#include <data/skip_bad_samples.h>

#include <memory>
#include <vector>

#include "config.h"

namespace imagenet_resnet18 {

struct Datasets {
  minidl::data::DatasetPtr train, val;
  int64_t num_classes = 0;
  /// The --skip-bad-images wrappers (empty without the flag), for the skipped-image count.
  std::vector<std::shared_ptr<const minidl::data::SkipBadSamples>> skippers;
  int64_t skipped() const;
};

/// Throws minidl::Error naming the folder when train/ or val/ cannot be read or their classes differ.
Datasets make_datasets(const Config& c, bool need_train);

}  // namespace imagenet_resnet18
