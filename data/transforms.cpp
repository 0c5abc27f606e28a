// Transform implementations (see transforms.h). All work on contiguous host tensors with plain loops:
// a 32x32x3 image is a few kilobytes, so the cost is the allocation, not the arithmetic.
#include "data/transforms.h"

#include <cstring>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace minidl::data {

namespace {

// Checks for a uint8 HWC image and returns it contiguous on the host.
Tensor expect_u8_hwc(const Tensor& image, const char* who) {
  MINIDL_CHECK(image.defined(), who, ": undefined image");
  MINIDL_CHECK(image.dtype() == DType::u8 && image.dim() == 3, who, ": expected a uint8 HWC image, got ",
               dtype_name(image.dtype()), " ", shape_str(image.sizes()),
               " (geometric transforms go before ToTensor/Normalize)");
  MINIDL_CHECK(image.device().is_cpu(), who, ": expected a host image, got one on ", image.device().str());
  return image.is_contiguous() ? image : image.contiguous();
}

std::string list_str(const std::vector<double>& v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

}  // namespace

// ---- RandomCrop ----

RandomCrop::RandomCrop(int64_t height, int64_t width, int64_t padding)
    : height_(height), width_(width), padding_(padding) {
  MINIDL_CHECK(height > 0 && width > 0 && padding >= 0, "RandomCrop: bad size ", height, "x", width, " or padding ",
               padding);
}

Tensor RandomCrop::apply(const Tensor& image, SampleRng& rng) const {
  const Tensor src = expect_u8_hwc(image, "RandomCrop");
  const int64_t h = src.size(0), w = src.size(1), c = src.size(2);
  const int64_t ph = h + 2 * padding_, pw = w + 2 * padding_;
  MINIDL_CHECK(ph >= height_ && pw >= width_, "RandomCrop: crop ", height_, "x", width_, " is larger than the ", h, "x",
               w, " image padded by ", padding_);
  // The window's top-left corner in padded coordinates; torchvision draws top first, then left.
  const int64_t top = rng.randint(0, ph - height_);
  const int64_t left = rng.randint(0, pw - width_);
  Tensor out = zeros({height_, width_, c}, TensorOptions{}.dtype(DType::u8));
  const uint8_t* s = src.data<uint8_t>();
  uint8_t* d = out.data<uint8_t>();
  for (int64_t y = 0; y < height_; ++y) {
    const int64_t sy = top + y - padding_;
    if (sy < 0 || sy >= h) continue;  // padding row: stays zero
    // Columns of the window that fall inside the source image.
    const int64_t x0 = std::max<int64_t>(0, padding_ - left), x1 = std::min<int64_t>(width_, w + padding_ - left);
    if (x1 <= x0) continue;
    std::memcpy(d + (y * width_ + x0) * c, s + (sy * w + (left + x0 - padding_)) * c,
                static_cast<size_t>((x1 - x0) * c));
  }
  return out;
}

std::string RandomCrop::describe() const {
  return ::minidl::detail::concat("RandomCrop(", height_, "x", width_, ", padding=", padding_, ")");
}

// ---- RandomHorizontalFlip ----

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  MINIDL_CHECK(p >= 0.0 && p <= 1.0, "RandomHorizontalFlip: p must be in [0, 1], got ", p);
}

Tensor RandomHorizontalFlip::apply(const Tensor& image, SampleRng& rng) const {
  const Tensor src = expect_u8_hwc(image, "RandomHorizontalFlip");
  // Always draw, so later transforms see the same random stream whatever this one decides.
  const bool flip = rng.uniform() < p_;
  const int64_t h = src.size(0), w = src.size(1), c = src.size(2);
  Tensor out = empty({h, w, c}, TensorOptions{}.dtype(DType::u8));
  const uint8_t* s = src.data<uint8_t>();
  uint8_t* d = out.data<uint8_t>();
  if (!flip) {
    std::memcpy(d, s, static_cast<size_t>(h * w * c));
    return out;
  }
  // Byte loops, not a memcpy call per pixel: a pixel is only a few bytes.
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* srow = s + y * w * c;
    uint8_t* drow = d + y * w * c;
    for (int64_t x = 0; x < w; ++x)
      for (int64_t k = 0; k < c; ++k) drow[x * c + k] = srow[(w - 1 - x) * c + k];
  }
  return out;
}

std::string RandomHorizontalFlip::describe() const {
  return ::minidl::detail::concat("RandomHorizontalFlip(p=", p_, ")");
}

// ---- ToTensor / Normalize ----

namespace {

// u8 HWC -> f32 CHW with out[c][p] = (in[p][c] / 255 - mean[c]) / std[c].
Tensor hwc_to_chw(const Tensor& image, const char* who, const std::vector<double>& mean,
                  const std::vector<double>& stdv) {
  const Tensor src = expect_u8_hwc(image, who);
  const int64_t h = src.size(0), w = src.size(1), c = src.size(2);
  Tensor out = empty({c, h, w});
  const uint8_t* s = src.data<uint8_t>();
  float* d = out.data<float>();
  std::vector<float> scale(static_cast<size_t>(c)), shift(static_cast<size_t>(c));
  for (int64_t ch = 0; ch < c; ++ch) {
    const double m = mean.empty() ? 0.0 : mean[mean.size() == 1 ? 0 : static_cast<size_t>(ch)];
    const double sd = stdv.empty() ? 1.0 : stdv[stdv.size() == 1 ? 0 : static_cast<size_t>(ch)];
    // Same formula as torchvision's ToTensor then Normalize, folded: (x / 255 - m) / sd.
    scale[static_cast<size_t>(ch)] = static_cast<float>(1.0 / (255.0 * sd));
    shift[static_cast<size_t>(ch)] = static_cast<float>(-m / sd);
  }
  const int64_t hw = h * w;
  if (c == 3) {  // RGB: one pass over the pixels, writing the three planes
    for (int64_t p = 0; p < hw; ++p) {
      d[p] = static_cast<float>(s[p * 3]) * scale[0] + shift[0];
      d[hw + p] = static_cast<float>(s[p * 3 + 1]) * scale[1] + shift[1];
      d[2 * hw + p] = static_cast<float>(s[p * 3 + 2]) * scale[2] + shift[2];
    }
    return out;
  }
  for (int64_t ch = 0; ch < c; ++ch) {
    const float sc = scale[static_cast<size_t>(ch)], sh = shift[static_cast<size_t>(ch)];
    for (int64_t p = 0; p < hw; ++p) d[ch * hw + p] = static_cast<float>(s[p * c + ch]) * sc + sh;
  }
  return out;
}

}  // namespace

Tensor ToTensor::apply(const Tensor& image, SampleRng&) const { return hwc_to_chw(image, "ToTensor", {}, {}); }

Normalize::Normalize(std::vector<double> mean, std::vector<double> stdv)
    : mean_(std::move(mean)), std_(std::move(stdv)) {
  MINIDL_CHECK(!mean_.empty() && !std_.empty(), "Normalize: mean and std must not be empty");
  for (double s : std_) MINIDL_CHECK(s > 0.0, "Normalize: std must be positive, got ", list_str(std_));
}

Tensor Normalize::apply(const Tensor& image, SampleRng&) const {
  MINIDL_CHECK(image.defined(), "Normalize: undefined image");
  const int64_t channels = image.dim() == 3 ? (image.dtype() == DType::u8 ? image.size(2) : image.size(0)) : -1;
  auto check_len = [&](const std::vector<double>& v, const char* what) {
    MINIDL_CHECK(v.size() == 1 || static_cast<int64_t>(v.size()) == channels, "Normalize: ", what, " ", list_str(v),
                 " has ", v.size(), " entries for an image with ", channels, " channels (", shape_str(image.sizes()),
                 ")");
  };
  if (image.dtype() == DType::u8) {
    expect_u8_hwc(image, "Normalize");
    check_len(mean_, "mean");
    check_len(std_, "std");
    return hwc_to_chw(image, "Normalize", mean_, std_);
  }
  MINIDL_CHECK(image.dtype() == DType::f32 && image.dim() == 3, "Normalize: expected a float32 CHW or uint8 HWC ",
               "image, got ", dtype_name(image.dtype()), " ", shape_str(image.sizes()));
  MINIDL_CHECK(image.device().is_cpu(), "Normalize: expected a host image, got one on ", image.device().str());
  check_len(mean_, "mean");
  check_len(std_, "std");
  const Tensor src = image.is_contiguous() ? image : image.contiguous();
  const int64_t hw = src.size(1) * src.size(2);
  Tensor out = empty(src.sizes());
  const float* s = src.data<float>();
  float* d = out.data<float>();
  for (int64_t ch = 0; ch < channels; ++ch) {
    const double m = mean_[mean_.size() == 1 ? 0 : static_cast<size_t>(ch)];
    const double sd = std_[std_.size() == 1 ? 0 : static_cast<size_t>(ch)];
    for (int64_t p = 0; p < hw; ++p)
      d[ch * hw + p] = static_cast<float>((static_cast<double>(s[ch * hw + p]) - m) / sd);
  }
  return out;
}

std::string Normalize::describe() const {
  return "Normalize(mean=" + list_str(mean_) + ", std=" + list_str(std_) + ")";
}

// ---- Compose ----

Compose::Compose(std::vector<TransformPtr> transforms) : transforms_(std::move(transforms)) {
  for (const auto& t : transforms_) MINIDL_CHECK(t != nullptr, "Compose: null transform");
}

Tensor Compose::apply(const Tensor& image, SampleRng& rng) const {
  Tensor x = image;
  for (const auto& t : transforms_) x = t->apply(x, rng);
  return x;
}

std::string Compose::describe() const {
  std::string s = "Compose(";
  for (size_t i = 0; i < transforms_.size(); ++i) s += (i ? ", " : "") + transforms_[i]->describe();
  return s + ")";
}

// ---- TransformDataset ----

TransformDataset::TransformDataset(DatasetPtr base, TransformPtr transform, uint64_t seed)
    : base_(std::move(base)), transform_(std::move(transform)), seed_(seed) {
  MINIDL_CHECK(base_ != nullptr && transform_ != nullptr, "TransformDataset: null dataset or transform");
}

Example TransformDataset::get_for_epoch(int64_t index, int64_t epoch) const {
  Example ex = base_->get_for_epoch(index, epoch);
  SampleRng rng(seed_, epoch, index);
  ex.image = transform_->apply(ex.image, rng);
  return ex;
}

std::string TransformDataset::describe() const { return base_->describe() + " -> " + transform_->describe(); }

TransformPtr standard_augmentation(int64_t size, int64_t padding, bool augment, std::vector<double> mean,
                                   std::vector<double> stdv) {
  std::vector<TransformPtr> ts;
  if (augment) {
    ts.push_back(std::make_shared<RandomCrop>(size, padding));
    ts.push_back(std::make_shared<RandomHorizontalFlip>(0.5));
  }
  ts.push_back(std::make_shared<Normalize>(std::move(mean), std::move(stdv)));
  return std::make_shared<Compose>(std::move(ts));
}

}  // namespace minidl::data
