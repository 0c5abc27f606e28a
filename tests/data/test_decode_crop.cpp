// The ImageNet training path: RandomResizedCrop's window distribution and fallback, JPEG region decoding
// against a full decode, the crop-before-decode dataset against the same transforms on the decoded image
// (identical without DCT scaling, close with it), and bad inputs (truncated JPEG, non-image) with and without
// SkipBadSamples. The comparison with torchvision itself is tests/tools/check_torchvision_transforms.py.
// minidl-test-requires: JPEG (tests/CMakeLists.txt leaves this file out, reported skipped, without them)
#include <doctest/doctest.h>
#include <turbojpeg.h>

#include <array>
#include <cmath>
#include <string>

#include "data/decode_crop_dataset.h"
#include "data/file_io.h"
#include "data/jpeg_region.h"
#include "data/skip_bad_samples.h"
#include "temp_dir.h"

using namespace minidl;
using namespace minidl::data;
using minidl_test::TempDir;

namespace {

// A textured RGB image (edges and gradients, so a wrong pixel shows).
std::vector<uint8_t> texture(int w, int h, int seed) {
  std::vector<uint8_t> px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &px[static_cast<size_t>((y * w + x) * 3)];
      p[0] = static_cast<uint8_t>(128 + 100 * std::sin(0.11 * x + seed) * std::cos(0.07 * y));
      p[1] = static_cast<uint8_t>((x * 3 + y * 5 + seed * 17) % 256);
      p[2] = static_cast<uint8_t>(((x / 8 + y / 8) % 2) * 180 + 30);
    }
  return px;
}

std::vector<uint8_t> encode_jpeg(int w, int h, const std::vector<uint8_t>& px, int subsamp, int pf = TJPF_RGB) {
  tjhandle t = tjInitCompress();
  REQUIRE(t != nullptr);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  REQUIRE(tjCompress2(t, px.data(), w, 0, h, pf, &buf, &size, subsamp, 90, TJFLAG_ACCURATEDCT) == 0);
  std::vector<uint8_t> out(buf, buf + size);
  tjFree(buf);
  tjDestroy(t);
  return out;
}

double max_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  const auto av = a.to(DType::f64).to_vector<double>(), bv = b.to(DType::f64).to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < av.size(); ++i) m = std::max(m, std::abs(av[i] - bv[i]));
  return m;
}

double mean_diff(const Tensor& a, const Tensor& b) {
  const auto av = a.to(DType::f64).to_vector<double>(), bv = b.to(DType::f64).to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < av.size(); ++i) s += std::abs(av[i] - bv[i]);
  return s / static_cast<double>(av.size());
}

}  // namespace

TEST_CASE("random_resized_crop_window: inside the image, scale and ratio ranges, deterministic, fallback") {
  RandomResizedCropOptions o;
  for (int64_t i = 0; i < 500; ++i) {
    SampleRng rng(3, 1, i);
    const CropWindow w = random_resized_crop_window(375, 500, o, rng);
    REQUIRE(w.top >= 0);
    REQUIRE(w.left >= 0);
    REQUIRE(w.top + w.height <= 375);
    REQUIRE(w.left + w.width <= 500);
    const double frac = static_cast<double>(w.height * w.width) / (375.0 * 500.0);
    CHECK(frac >= 0.07);  // 0.08 less rounding of both sides
    const double ratio = static_cast<double>(w.width) / static_cast<double>(w.height);
    if (w.height > 20 && w.width > 20) {
      CHECK(ratio >= 0.72);
      CHECK(ratio <= 1.39);
    }
    SampleRng again(3, 1, i);
    const CropWindow w2 = random_resized_crop_window(375, 500, o, again);
    CHECK((w2.top == w.top && w2.left == w.left && w2.height == w.height && w2.width == w.width));
  }
  // A 1000x10 strip: no draw fits the ratio range, so the central crop clamped to ratio 3/4:
  // w = 10, h = round(10 / 0.75) = 13, top = (1000 - 13) // 2.
  SampleRng rng(0, 0, 0);
  const CropWindow f = random_resized_crop_window(1000, 10, o, rng);
  CHECK(f.width == 10);
  CHECK(f.height == 13);
  CHECK(f.top == 493);
  CHECK(f.left == 0);
}

TEST_CASE("decode_jpeg_region: equals the window of a full decode (4:2:0, 4:4:4, grayscale)") {
  const int w = 203, h = 157;
  const auto px = texture(w, h, 1);
  for (int subsamp : {TJSAMP_420, TJSAMP_444, TJSAMP_GRAY}) {
    const auto jpg = encode_jpeg(w, h, px, subsamp);
    const Tensor full = decode_image(jpg.data(), jpg.size(), "full");
    const std::vector<std::array<int64_t, 4>> windows{
        {0, 0, h, w}, {7, 9, 33, 45}, {40, 17, 100, 150}, {h - 20, w - 30, 20, 30}, {16, 16, 32, 32}};
    for (const auto& [top, left, hh, ww] : windows) {
      DecodedRegion r = decode_jpeg_region(jpg.data(), jpg.size(), "region", top, left, hh, ww);
      const auto x0 = static_cast<int64_t>(r.box.x0), y0 = static_cast<int64_t>(r.box.y0);
      CHECK(r.box.x1 - r.box.x0 == doctest::Approx(ww));
      CHECK(r.box.y1 - r.box.y0 == doctest::Approx(hh));
      int worst = 0;
      const uint8_t* a = r.pixels.data<uint8_t>();
      const uint8_t* b = full.data<uint8_t>();
      for (int64_t y = 0; y < hh; ++y)
        for (int64_t x = 0; x < ww * 3; ++x)
          worst = std::max(worst, std::abs(int{a[((y0 + y) * r.pixels.size(1) + x0) * 3 + x]} -
                                           int{b[((top + y) * w + left) * 3 + x]}));
      INFO("subsampling ", subsamp, " window ", top, ",", left, " ", hh, "x", ww);
      CHECK(worst == 0);
    }
  }
}

TEST_CASE("DecodeCropDataset: equals RandomResizedCrop + flip + Normalize on the decoded image, DCT scaling close") {
  TempDir tmp;
  for (int i = 0; i < 4; ++i) {
    const int w = 180 + 37 * i, h = 150 + 11 * i;
    minidl_test::write_bytes(tmp.file("root/c" + std::to_string(i % 2) + "/" + std::to_string(i) + ".jpg"),
                             encode_jpeg(w, h, texture(w, h, i), TJSAMP_420));
  }
  auto folder = std::make_shared<const ImageFolder>(tmp.str() + "/root");
  DecodeCropOptions o;
  o.height = o.width = 40;
  o.dct_scaling = false;
  DecodeCropDataset fused(folder, o, 7);
  auto composed_tf = std::make_shared<Compose>(std::vector<TransformPtr>{std::make_shared<RandomResizedCrop>(40, 40),
                                                                         std::make_shared<RandomHorizontalFlip>(0.5),
                                                                         std::make_shared<Normalize>(o.mean, o.stdev)});
  TransformDataset composed(folder, composed_tf, 7);
  o.dct_scaling = true;
  DecodeCropDataset scaled(folder, o, 7);
  int scaled_used = 0;
  for (int64_t epoch = 0; epoch < 6; ++epoch)
    for (int64_t i = 0; i < folder->size(); ++i) {
      const Example a = fused.get_for_epoch(i, epoch), b = composed.get_for_epoch(i, epoch);
      CHECK(a.label == b.label);
      CHECK(max_diff(a.image, b.image) < 1e-6);
      // DCT-domain scaling changes the pixels a little (a different low-pass than Pillow's), not the content.
      const Example s = scaled.get_for_epoch(i, epoch);
      const double md = mean_diff(s.image, b.image);
      scaled_used += md > 0;
      CHECK(md < 0.15);  // normalised units (one grey level is about 0.017)
    }
  CHECK(scaled_used > 0);  // some windows were large enough to be decoded scaled
}

TEST_CASE("DecodeCropDataset: bad files throw naming them, SkipBadSamples warns, counts and substitutes") {
  TempDir tmp;
  const auto jpg = encode_jpeg(64, 48, texture(64, 48, 0), TJSAMP_420);
  minidl_test::write_bytes(tmp.file("root/a/0_good.jpg"), jpg);
  const std::string truncated = tmp.file("root/a/1_truncated.jpg");
  minidl_test::write_bytes(truncated,
                           std::vector<uint8_t>(jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() / 2)));
  const std::string text = tmp.file("root/b/2_text.jpg");
  minidl_test::write_bytes(text, {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
  minidl_test::write_bytes(tmp.file("root/b/3_good.jpg"), jpg);
  auto folder = std::make_shared<const ImageFolder>(tmp.str() + "/root");
  DecodeCropOptions o;
  o.height = o.width = 32;
  o.crop.scale_min = 0.99;  // the window covers the rows past the truncation
  auto ds = std::make_shared<const DecodeCropDataset>(folder, o);
  CHECK(ds->get(0).image.sizes() == Shape{3, 32, 32});
  CHECK_THROWS_WITH_AS(ds->get(1), doctest::Contains(("'" + truncated + "': corrupt JPEG").c_str()), Error);
  CHECK_THROWS_WITH_AS(ds->get(2), doctest::Contains(("'" + text + "'").c_str()), Error);

  SkipBadSamples skip(ds);
  const Example e1 = skip.get(1);  // truncated -> text -> 3_good.jpg
  CHECK(e1.label == 1);
  CHECK(skip.skipped() == 2);
  CHECK(skip.get(0).label == 0);
  CHECK(skip.skipped() == 2);
}
