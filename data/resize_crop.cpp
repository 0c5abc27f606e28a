// Resize, CenterCrop, RandomResizedCrop (see resize_crop.h), following torchvision 0.14's
// transforms/functional.py and transforms.py line by line where the arithmetic matters (int() truncation,
// Python's round-half-even, the order of the random draws).
#include "data/resize_crop.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "data/resample.h"

namespace minidl::data {

namespace {

Tensor expect_image(const Tensor& image, const char* who) {
  MINIDL_CHECK(image.defined() && image.dtype() == DType::u8 && image.dim() == 3, who,
               ": expected a uint8 HWC image (put it before ToTensor/Normalize)");
  MINIDL_CHECK(image.size(0) > 0 && image.size(1) > 0, who, ": empty image");
  return image.is_contiguous() ? image : image.contiguous();
}

// Python 3's round(): halves go to the even neighbour.
int64_t py_round(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

}  // namespace

Tensor crop_u8(const Tensor& image_in, const CropWindow& w) {
  const Tensor image = expect_image(image_in, "crop");
  MINIDL_CHECK(w.height > 0 && w.width > 0, "crop: empty window ", w.height, "x", w.width);
  const int64_t h = image.size(0), iw = image.size(1), c = image.size(2);
  Tensor out = zeros({w.height, w.width, c}, TensorOptions{}.dtype(DType::u8));
  const uint8_t* s = image.data<uint8_t>();
  uint8_t* d = out.data<uint8_t>();
  const int64_t x0 = std::max<int64_t>(0, -w.left), x1 = std::min<int64_t>(w.width, iw - w.left);
  for (int64_t y = 0; y < w.height && x1 > x0; ++y) {
    const int64_t sy = w.top + y;
    if (sy < 0 || sy >= h) continue;
    std::memcpy(d + (y * w.width + x0) * c, s + (sy * iw + w.left + x0) * c, static_cast<size_t>((x1 - x0) * c));
  }
  return out;
}

std::pair<int64_t, int64_t> resized_shorter_side(int64_t h, int64_t w, int64_t size) {
  const int64_t shorter = std::min(h, w), longer = std::max(h, w);
  const auto new_long = static_cast<int64_t>(static_cast<double>(size * longer) / static_cast<double>(shorter));
  return w <= h ? std::pair{new_long, size} : std::pair{size, new_long};
}

// ---- Resize ----

Resize::Resize(int64_t shorter_side) : shorter_(shorter_side) {
  MINIDL_CHECK(shorter_side > 0, "Resize: size must be positive, got ", shorter_side);
}
Resize::Resize(int64_t height, int64_t width) : height_(height), width_(width) {
  MINIDL_CHECK(height > 0 && width > 0, "Resize: size must be positive, got ", height, "x", width);
}

Tensor Resize::apply(const Tensor& image_in, SampleRng&) const {
  const Tensor image = expect_image(image_in, "Resize");
  const int64_t h = image.size(0), w = image.size(1);
  auto [oh, ow] = shorter_ > 0 ? resized_shorter_side(h, w, shorter_) : std::pair{height_, width_};
  return resample_bilinear(view_of(image), {0, 0, static_cast<double>(w), static_cast<double>(h)}, oh, ow);
}

std::string Resize::describe() const {
  if (shorter_ > 0) return ::minidl::detail::concat("Resize(", shorter_, ")");
  return ::minidl::detail::concat("Resize(", height_, "x", width_, ")");
}

// ---- CenterCrop ----

CenterCrop::CenterCrop(int64_t height, int64_t width) : height_(height), width_(width) {
  MINIDL_CHECK(height > 0 && width > 0, "CenterCrop: size must be positive, got ", height, "x", width);
}

CropWindow CenterCrop::window(int64_t h, int64_t w) const {
  // torchvision pads a too-small image by (crop - size) // 2 before (the rest after), then centres with round().
  const int64_t pad_top = height_ > h ? (height_ - h) / 2 : 0, pad_left = width_ > w ? (width_ - w) / 2 : 0;
  const int64_t ph = std::max(h, height_), pw = std::max(w, width_);
  const int64_t top = py_round(static_cast<double>(ph - height_) / 2.0) - pad_top;
  const int64_t left = py_round(static_cast<double>(pw - width_) / 2.0) - pad_left;
  return {top, left, height_, width_};
}

Tensor CenterCrop::apply(const Tensor& image_in, SampleRng&) const {
  const Tensor image = expect_image(image_in, "CenterCrop");
  return crop_u8(image, window(image.size(0), image.size(1)));
}

std::string CenterCrop::describe() const { return ::minidl::detail::concat("CenterCrop(", height_, "x", width_, ")"); }

// ---- RandomResizedCrop ----

CropWindow random_resized_crop_window(int64_t h, int64_t w, const RandomResizedCropOptions& o, SampleRng& rng) {
  const double area = static_cast<double>(h * w);
  const double log_r0 = std::log(o.ratio_min), log_r1 = std::log(o.ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * (o.scale_min + (o.scale_max - o.scale_min) * rng.uniform());
    const double aspect = std::exp(log_r0 + (log_r1 - log_r0) * rng.uniform());
    const int64_t cw = py_round(std::sqrt(target_area * aspect));
    const int64_t chh = py_round(std::sqrt(target_area / aspect));
    if (0 < cw && cw <= w && 0 < chh && chh <= h) {
      const int64_t top = rng.randint(0, h - chh);
      const int64_t left = rng.randint(0, w - cw);
      return {top, left, chh, cw};
    }
  }
  // Fallback: the central crop, clamped to the ratio range.
  const double in_ratio = static_cast<double>(w) / static_cast<double>(h);
  int64_t cw = w, chh = h;
  if (in_ratio < o.ratio_min) {
    chh = py_round(static_cast<double>(cw) / o.ratio_min);
  } else if (in_ratio > o.ratio_max) {
    cw = py_round(static_cast<double>(chh) * o.ratio_max);
  }
  return {(h - chh) / 2, (w - cw) / 2, chh, cw};
}

RandomResizedCrop::RandomResizedCrop(int64_t height, int64_t width, RandomResizedCropOptions options)
    : height_(height), width_(width), opts_(options) {
  MINIDL_CHECK(height > 0 && width > 0, "RandomResizedCrop: size must be positive, got ", height, "x", width);
  MINIDL_CHECK(options.scale_min > 0 && options.scale_min <= options.scale_max, "RandomResizedCrop: bad scale (",
               options.scale_min, ", ", options.scale_max, ")");
  MINIDL_CHECK(options.ratio_min > 0 && options.ratio_min <= options.ratio_max, "RandomResizedCrop: bad ratio (",
               options.ratio_min, ", ", options.ratio_max, ")");
}

Tensor RandomResizedCrop::apply(const Tensor& image_in, SampleRng& rng) const {
  const Tensor image = expect_image(image_in, "RandomResizedCrop");
  const CropWindow win = random_resized_crop_window(image.size(0), image.size(1), opts_, rng);
  U8View v = view_of(image);
  v.data += (win.top * v.cols + win.left) * v.channels;
  v.rows = win.height;
  v.cols = win.width;
  return resample_bilinear(v, {0, 0, static_cast<double>(win.width), static_cast<double>(win.height)}, height_, width_);
}

std::string RandomResizedCrop::describe() const {
  return ::minidl::detail::concat("RandomResizedCrop(", height_, "x", width_, ", scale=(", opts_.scale_min, ", ",
                                  opts_.scale_max, "), ratio=(", opts_.ratio_min, ", ", opts_.ratio_max, "))");
}

}  // namespace minidl::data
