// Crop-before-decode training samples (see decode_crop_dataset.h).
#include "data/decode_crop_dataset.h"

#include <cmath>

#include "core/error.h"
#include "data/file_io.h"
#include "data/jpeg_region.h"
#include "data/resample.h"

namespace minidl::data {

DecodeCropDataset::DecodeCropDataset(std::shared_ptr<const ImageFolder> folder, DecodeCropOptions options,
                                     uint64_t seed)
    : folder_(std::move(folder)),
      opts_(std::move(options)),
      seed_(seed),
      flip_(opts_.flip_p),
      normalize_(opts_.mean, opts_.stdev) {
  MINIDL_CHECK(folder_ != nullptr, "DecodeCropDataset: no image folder");
  // Validates the crop options with RandomResizedCrop's own checks.
  RandomResizedCrop check(opts_.height, opts_.width, opts_.crop);
  (void)check;
}

Example DecodeCropDataset::get_for_epoch(int64_t index, int64_t epoch) const {
  const std::string& path = folder_->path(index);
  SampleRng rng(seed_, epoch, index);
  const std::vector<uint8_t> bytes = detail::read_file_bytes(path, "image");
  Tensor cropped;
  if (is_jpeg(bytes.data(), bytes.size())) {
    const JpegInfo info = read_jpeg_info(bytes.data(), bytes.size(), path);
    const CropWindow win = random_resized_crop_window(info.height, info.width, opts_.crop, rng);
    const int scale = opts_.dct_scaling ? dct_scale_for(win.height, win.width, opts_.height, opts_.width) : 8;
    DecodedRegion r =
        decode_jpeg_region(bytes.data(), bytes.size(), path, win.top, win.left, win.height, win.width, scale);
    // Resample from the whole pixels covering the window only, as torchvision resizes the cropped image.
    U8View v = view_of(r.pixels);
    const auto x0 = static_cast<int64_t>(std::floor(r.box.x0)), y0 = static_cast<int64_t>(std::floor(r.box.y0));
    const auto x1 = std::min<int64_t>(v.cols, static_cast<int64_t>(std::ceil(r.box.x1)));
    const auto y1 = std::min<int64_t>(v.rows, static_cast<int64_t>(std::ceil(r.box.y1)));
    v.data += (y0 * v.cols + x0) * v.channels;
    v.rows = y1 - y0;
    v.cols = x1 - x0;
    const Box box{r.box.x0 - static_cast<double>(x0), r.box.y0 - static_cast<double>(y0),
                  std::min(r.box.x1 - static_cast<double>(x0), static_cast<double>(v.cols)),
                  std::min(r.box.y1 - static_cast<double>(y0), static_cast<double>(v.rows))};
    cropped = resample_bilinear(v, box, opts_.height, opts_.width);
  } else {
    const Tensor full = decode_image(bytes.data(), bytes.size(), path);
    cropped = RandomResizedCrop(opts_.height, opts_.width, opts_.crop).apply(full, rng);
  }
  Tensor flipped = flip_.apply(cropped, rng);
  return {normalize_.apply(flipped, rng), folder_->label(index)};
}

std::string DecodeCropDataset::describe() const {
  return ::minidl::detail::concat(folder_->describe(), " -> decode-cropped RandomResizedCrop(", opts_.height, "x",
                                  opts_.width, ", scale=(", opts_.crop.scale_min, ", ", opts_.crop.scale_max,
                                  ")), flip ", opts_.flip_p, ", Normalize", opts_.dct_scaling ? ", DCT scaling" : "");
}

}  // namespace minidl::data
