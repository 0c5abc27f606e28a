// Train/test datasets for a Config: the reader for --dataset, the seeds' augmentation and normalisation.
#pragma once

#include <data/dataset.h>

#include "config.h"

namespace cifar_resnet20 {

struct Datasets {
  minidl::data::DatasetPtr train, test;
  int64_t num_classes = 10;
  int64_t in_channels = 3;
};

/// Throws minidl::Error naming the directory/file when the data cannot be read.
Datasets make_datasets(const Config& c);

/// Input channels and classes of --dataset, known without reading it (so a bad model flag fails first).
std::pair<int64_t, int64_t> dataset_channels_classes(const Config& c);

}  // namespace cifar_resnet20
