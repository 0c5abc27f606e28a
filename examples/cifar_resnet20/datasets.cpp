// Dataset construction. Normalisation constants are the usual per-channel means/stds of each training set.
#include "datasets.h"

#include <data/cifar.h>
#include <data/idx.h>
#include <data/transforms.h>
#include <filesystem>

#include <minidl.h>

namespace cifar_resnet20 {

using namespace minidl;
using namespace minidl::data;

std::pair<int64_t, int64_t> dataset_channels_classes(const Config& c) {
  if (c.dataset == "fashion-mnist") return {1, 10};
  return {3, c.dataset == "cifar100" ? 100 : 10};
}

Datasets make_datasets(const Config& c) {
  Datasets d;
  MINIDL_CHECK(!c.data_dir.empty(), "--data DIR is required for --dataset ", c.dataset);
  MINIDL_CHECK(std::filesystem::is_directory(c.data_dir), "data directory '", c.data_dir, "' does not exist");
  DatasetPtr train_raw, test_raw;
  std::vector<double> mean, stdev;
  int64_t size = 32, padding = 4;
  if (c.dataset == "fashion-mnist") {
    train_raw = std::make_shared<MnistDataset>(c.data_dir, true, "Fashion-MNIST");
    test_raw = std::make_shared<MnistDataset>(c.data_dir, false, "Fashion-MNIST");
    mean = {0.2860};
    stdev = {0.3530};
    size = 28;
    d.in_channels = 1;
    d.num_classes = 10;
  } else {
    const auto variant = c.dataset == "cifar100" ? CifarVariant::cifar100 : CifarVariant::cifar10;
    train_raw = std::make_shared<CifarDataset>(c.data_dir, true, variant);
    test_raw = std::make_shared<CifarDataset>(c.data_dir, false, variant);
    if (c.dataset == "cifar100") {
      mean = {0.5071, 0.4865, 0.4409};
      stdev = {0.2673, 0.2564, 0.2762};
    } else {
      mean = {0.4914, 0.4822, 0.4465};
      stdev = {0.2470, 0.2435, 0.2616};
    }
    d.num_classes = train_raw->num_classes();
  }
  std::vector<TransformPtr> train_tf, test_tf;
  if (c.augment == "crop-flip") {
    train_tf.push_back(std::make_shared<RandomCrop>(size, padding));
    train_tf.push_back(std::make_shared<RandomHorizontalFlip>(0.5));
  }
  for (auto* v : {&train_tf, &test_tf}) {
    v->push_back(std::make_shared<ToTensor>());
    v->push_back(std::make_shared<Normalize>(mean, stdev));
  }
  d.train = std::make_shared<TransformDataset>(train_raw, std::make_shared<Compose>(train_tf), c.seed);
  d.test = std::make_shared<TransformDataset>(test_raw, std::make_shared<Compose>(test_tf), c.seed);
  return d;
}

}  // namespace cifar_resnet20
