// CIFAR-10 / CIFAR-100 binary-format reader (the "binary version" archives from the CIFAR site).
// CIFAR-10 records are 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32); CIFAR-100 records carry a
// coarse and a fine label byte first. The whole split is read into memory (150 MB for CIFAR-10 train) and
// returned as uint8 HWC [32, 32, 3] images.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace minidl::data {

enum class CifarVariant { cifar10, cifar100 };

class CifarDataset : public Dataset {
 public:
  /// `root` holds data_batch_1..5.bin and test_batch.bin (CIFAR-10) or train.bin and test.bin (CIFAR-100);
  /// a root containing the archive's folder (cifar-10-batches-bin / cifar-100-binary) is accepted too.
  /// CIFAR-100 yields fine labels (100 classes) unless `coarse_labels` (20 superclasses).
  CifarDataset(const std::string& root, bool train, CifarVariant variant = CifarVariant::cifar10,
               bool coarse_labels = false);
  /// Reads exactly these files, in order.
  CifarDataset(const std::vector<std::string>& files, CifarVariant variant, bool coarse_labels = false);

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Example get(int64_t index) const override;
  int64_t num_classes() const override;
  std::string describe() const override;

  /// Bytes per record: 3073 (CIFAR-10) or 3074 (CIFAR-100).
  static int64_t record_size(CifarVariant variant);
  /// The files a split consists of, resolved under root (throws naming root when it is missing).
  static std::vector<std::string> split_files(const std::string& root, bool train, CifarVariant variant);

  static constexpr int64_t kHeight = 32, kWidth = 32, kChannels = 3;

 private:
  void load(const std::vector<std::string>& files);

  CifarVariant variant_;
  bool coarse_;
  std::string split_;            // "train", "test" or the file count, for describe()
  std::vector<uint8_t> pixels_;  // N x 32 x 32 x 3, HWC
  std::vector<int64_t> labels_;
};

/// Per-channel mean and standard deviation of the CIFAR-10 training set (RGB, on [0, 1] pixel values).
inline const std::vector<double> kCifar10Mean = {0.4914, 0.4822, 0.4465};
inline const std::vector<double> kCifar10Std = {0.2470, 0.2435, 0.2616};
/// The same for CIFAR-100.
inline const std::vector<double> kCifar100Mean = {0.5071, 0.4865, 0.4409};
inline const std::vector<double> kCifar100Std = {0.2673, 0.2564, 0.2762};

}  // namespace minidl::data
