// CIFAR binary reader (see cifar.h). Validation happens before any pixel is used: the file size must be a
// whole number of records and every label must be in range, and each error names the file (and offset).
#include "data/cifar.h"

#include <cstring>

#include "core/error.h"
#include "data/file_io.h"

namespace minidl::data {

namespace {

const char* variant_name(CifarVariant v) { return v == CifarVariant::cifar10 ? "CIFAR-10" : "CIFAR-100"; }

constexpr int64_t kPixels = CifarDataset::kHeight * CifarDataset::kWidth * CifarDataset::kChannels;  // 3072

}  // namespace

int64_t CifarDataset::record_size(CifarVariant variant) { return (variant == CifarVariant::cifar10 ? 1 : 2) + kPixels; }

std::vector<std::string> CifarDataset::split_files(const std::string& root, bool train, CifarVariant variant) {
  const char* who = variant_name(variant);
  detail::require_directory(root, who);
  const std::string sub = variant == CifarVariant::cifar10 ? "cifar-10-batches-bin" : "cifar-100-binary";
  const std::string probe = variant == CifarVariant::cifar10 ? "test_batch.bin" : "test.bin";
  std::string dir = root;
  // Accept the directory that contains the extracted archive folder as well as the folder itself.
  if (!detail::file_exists(detail::path_join(dir, probe)) &&
      detail::file_exists(detail::path_join(detail::path_join(root, sub), probe)))
    dir = detail::path_join(root, sub);

  std::vector<std::string> files;
  if (variant == CifarVariant::cifar10) {
    if (train)
      for (int i = 1; i <= 5; ++i) files.push_back(detail::path_join(dir, "data_batch_" + std::to_string(i) + ".bin"));
    else
      files.push_back(detail::path_join(dir, "test_batch.bin"));
  } else {
    files.push_back(detail::path_join(dir, train ? "train.bin" : "test.bin"));
  }
  for (const auto& f : files)
    MINIDL_CHECK(detail::file_exists(f), who, ": missing file '", f, "' (expected the binary version of ", who,
                 " under '", root, "')");
  return files;
}

CifarDataset::CifarDataset(const std::string& root, bool train, CifarVariant variant, bool coarse_labels)
    : variant_(variant), coarse_(coarse_labels), split_(train ? "train" : "test") {
  MINIDL_CHECK(!coarse_labels || variant == CifarVariant::cifar100, "CIFAR-10 has no coarse labels");
  load(split_files(root, train, variant));
}

CifarDataset::CifarDataset(const std::vector<std::string>& files, CifarVariant variant, bool coarse_labels)
    : variant_(variant), coarse_(coarse_labels) {
  MINIDL_CHECK(!coarse_labels || variant == CifarVariant::cifar100, "CIFAR-10 has no coarse labels");
  MINIDL_CHECK(!files.empty(), variant_name(variant), ": no files given");
  split_ = ::minidl::detail::concat(files.size(), files.size() == 1 ? " file" : " files");
  load(files);
}

void CifarDataset::load(const std::vector<std::string>& files) {
  const char* who = variant_name(variant_);
  const int64_t rec = record_size(variant_);
  const int64_t label_bytes = rec - kPixels;
  const int64_t classes = num_classes();
  for (const auto& path : files) {
    std::vector<uint8_t> bytes = detail::read_file_bytes(path, who);
    const auto n = static_cast<int64_t>(bytes.size());
    MINIDL_CHECK(n > 0, who, ": '", path, "' is empty");
    MINIDL_CHECK(n % rec == 0, who, ": '", path, "' has ", n, " bytes, not a whole number of ", rec, "-byte records (",
                 label_bytes, " label byte", label_bytes > 1 ? "s" : "", " + ", kPixels,
                 " pixel bytes); the file is truncated or not a ", who, " binary file");
    const int64_t count = n / rec;
    const size_t base = pixels_.size();
    pixels_.resize(base + static_cast<size_t>(count * kPixels));
    for (int64_t r = 0; r < count; ++r) {
      const uint8_t* record = bytes.data() + r * rec;
      // CIFAR-100: byte 0 is the coarse label, byte 1 the fine label.
      const int64_t label = variant_ == CifarVariant::cifar10 ? record[0] : record[coarse_ ? 0 : 1];
      MINIDL_CHECK(label < classes, who, ": '", path, "' record ", r, " (offset ", r * rec, ") has label ", label,
                   ", outside [0, ", classes, "); not a ", who, " binary file?");
      labels_.push_back(label);
      // Planar R, G, B (CHW) on disk -> interleaved HWC in memory, the layout the transforms work on.
      const uint8_t* planes = record + label_bytes;
      uint8_t* out = pixels_.data() + base + static_cast<size_t>(r * kPixels);
      constexpr int64_t hw = kHeight * kWidth;
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t c = 0; c < kChannels; ++c) out[p * kChannels + c] = planes[c * hw + p];
    }
  }
}

Example CifarDataset::get(int64_t index) const {
  detail::check_index(variant_name(variant_), index, size());
  Tensor img = empty({kHeight, kWidth, kChannels}, TensorOptions{}.dtype(DType::u8));
  std::memcpy(img.data<uint8_t>(), pixels_.data() + index * kPixels, kPixels);
  return {img, labels_[static_cast<size_t>(index)]};
}

int64_t CifarDataset::num_classes() const {
  if (variant_ == CifarVariant::cifar10) return 10;
  return coarse_ ? 20 : 100;
}

std::string CifarDataset::describe() const {
  return ::minidl::detail::concat(
      variant_name(variant_), " ", split_, " (", size(), " images",
      variant_ == CifarVariant::cifar100 ? (coarse_ ? ", coarse labels" : ", fine labels") : "", ")");
}

}  // namespace minidl::data
