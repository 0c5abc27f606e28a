// IDX reader for MNIST, Fashion-MNIST and friends: gzip-compressed or raw files (zlib's gzread reads both).
// The magic number, the dimensions and the data length are checked, and every error names the file and the
// problem. Images are returned as uint8 HWC [rows, cols, 1].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace minidl::data {

inline constexpr uint32_t kIdxImageMagic = 0x00000803;  // unsigned bytes, 3 dims (count, rows, cols)
inline constexpr uint32_t kIdxLabelMagic = 0x00000801;  // unsigned bytes, 1 dim (count)

/// The contents of an IDX file of unsigned bytes.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

/// Reads an IDX file whose magic number must be `expected_magic` (kIdxImageMagic or kIdxLabelMagic).
IdxArray read_idx(const std::string& path, uint32_t expected_magic);

/// Where Debian's dataset-fashion-mnist package installs the four files.
inline const std::string kFashionMnistDefaultDir = "/usr/share/datasets/fashion-mnist";

struct MnistFiles {
  std::string images;
  std::string labels;
};

class MnistDataset : public Dataset {
 public:
  /// `root` holds {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte, each optionally .gz.
  /// `name` ("MNIST", "Fashion-MNIST") only labels messages.
  MnistDataset(const std::string& root, bool train, std::string name = "MNIST");
  /// Reads the given pair of files (a factory, not a constructor: a braced {"a", "b"} would otherwise bind to
  /// the std::string overload).
  static MnistDataset from_files(const MnistFiles& files, std::string name = "MNIST");

  /// The image and label files of a split under root (the .gz or the raw file); throws naming what is missing.
  static MnistFiles split_files(const std::string& root, bool train, const std::string& name = "MNIST");

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Example get(int64_t index) const override;
  int64_t num_classes() const override { return num_classes_; }
  std::string describe() const override;
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }

 private:
  MnistDataset(const MnistFiles& files, std::string name, std::string split);

  std::string name_;
  std::string split_;
  int64_t rows_ = 0, cols_ = 0, num_classes_ = 0;
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
};

/// Fashion-MNIST from `root` (default: Debian's location).
inline MnistDataset fashion_mnist(bool train, const std::string& root = kFashionMnistDefaultDir) {
  return MnistDataset(root, train, "Fashion-MNIST");
}

/// Per-channel mean and standard deviation of the training sets (on [0, 1] pixel values).
inline const std::vector<double> kMnistMean = {0.1307}, kMnistStd = {0.3081};
inline const std::vector<double> kFashionMnistMean = {0.2860}, kFashionMnistStd = {0.3530};

}  // namespace minidl::data
