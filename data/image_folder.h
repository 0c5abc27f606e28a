// ImageFolder: the torchvision layout root/<class>/<image>, with class indices given by the sorted class
// folder names and samples sorted by path, so indices are stable across machines. Files are decoded lazily
// in get() (JPEG via TurboJPEG, PNG via stb_image), which is what the DataLoader's workers parallelise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_decode.h"

namespace minidl::data {

class ImageFolder : public Dataset {
 public:
  /// Scans root for class folders holding *.jpg, *.jpeg and *.png files (extension case-insensitive).
  /// Throws naming root when it is missing or holds no image.
  explicit ImageFolder(const std::string& root, DecodeOptions decode = {});

  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }
  /// Decodes the image: uint8 HWC with decode.channels channels; a corrupt file throws naming it.
  Example get(int64_t index) const override;
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  std::string describe() const override;

  const std::vector<std::string>& classes() const { return classes_; }
  const std::string& path(int64_t index) const;
  int64_t label(int64_t index) const;

 private:
  struct Sample {
    std::string path;
    int64_t label;
  };
  std::string root_;
  DecodeOptions decode_;
  std::vector<std::string> classes_;
  std::vector<Sample> samples_;
};

}  // namespace minidl::data
