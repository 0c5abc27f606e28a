// ImageFolder and image decoding on PNGs (stb_image_write) and JPEGs (TurboJPEG tjCompress2) written here:
// class order, exact PNG pixels, near-exact JPEG pixels, grayscale, DCT-domain downscaling, and errors for a
// corrupt JPEG, a non-image file and a missing or empty root.
// minidl-test-requires: JPEG PNG (tests/CMakeLists.txt leaves this file out, reported skipped, without them)
#include <doctest/doctest.h>
#include <stb_image_write.h>
#include <turbojpeg.h>

#include <cstdlib>
#include <string>

#include "data/image_folder.h"
#include "temp_dir.h"

using namespace minidl;
using namespace minidl::data;
using minidl_test::TempDir;

namespace {

// A smooth RGB test pattern (JPEG reproduces smooth images closely); `seed` makes images distinguishable.
std::vector<uint8_t> pattern(int w, int h, int seed) {
  std::vector<uint8_t> px(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &px[static_cast<size_t>((y * w + x) * 3)];
      p[0] = static_cast<uint8_t>(seed * 40 + x * 2);
      p[1] = static_cast<uint8_t>(100 + y * 2);
      p[2] = static_cast<uint8_t>(200 - x - y);
    }
  return px;
}

void write_png(const std::string& path, int w, int h, const std::vector<uint8_t>& px) {
  REQUIRE(stbi_write_png(path.c_str(), w, h, 3, px.data(), w * 3) != 0);
}

std::vector<uint8_t> encode_jpeg(int w, int h, const std::vector<uint8_t>& px) {
  tjhandle t = tjInitCompress();
  REQUIRE(t != nullptr);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  REQUIRE(tjCompress2(t, px.data(), w, 0, h, TJPF_RGB, &buf, &size, TJSAMP_444, 100, TJFLAG_ACCURATEDCT) == 0);
  std::vector<uint8_t> out(buf, buf + size);
  tjFree(buf);
  tjDestroy(t);
  return out;
}

int max_abs_diff(const Tensor& img, const std::vector<uint8_t>& px) {
  const uint8_t* d = img.data<uint8_t>();
  int m = 0;
  for (size_t i = 0; i < px.size(); ++i) m = std::max(m, std::abs(int{d[i]} - int{px[i]}));
  return m;
}

}  // namespace

TEST_CASE("ImageFolder: sorted classes, sorted files, PNG exact, JPEG close") {
  TempDir tmp;
  const auto a = pattern(20, 12, 1), b = pattern(16, 16, 2), c = pattern(8, 24, 3);
  write_png(tmp.file("root/dog/b.png"), 16, 16, b);
  minidl_test::write_bytes(tmp.file("root/dog/a.JPG"), encode_jpeg(20, 12, a));
  write_png(tmp.file("root/cat/z.png"), 8, 24, c);
  minidl_test::write_bytes(tmp.file("root/cat/notes.txt"), {'h', 'i'});  // ignored: not an image
  std::filesystem::create_directories(tmp.str() + "/root/empty_class");
  // An empty class folder is an error (as in torchvision): its class could never be learned.
  CHECK_THROWS_WITH_AS(ImageFolder{tmp.str() + "/root"}, doctest::Contains("empty_class' holds no"), Error);
  std::filesystem::remove(tmp.str() + "/root/empty_class");

  ImageFolder ds(tmp.str() + "/root");
  CHECK(ds.classes() == std::vector<std::string>{"cat", "dog"});
  CHECK(ds.num_classes() == 2);
  REQUIRE(ds.size() == 3);
  CHECK(ds.label(0) == 0);
  CHECK(ds.path(1).find("dog/a.JPG") != std::string::npos);
  CHECK(ds.label(1) == 1);
  CHECK(ds.label(2) == 1);

  Example z = ds.get(0);
  REQUIRE(z.image.sizes() == Shape{24, 8, 3});
  CHECK(max_abs_diff(z.image, c) == 0);
  Example jpg = ds.get(1);
  CHECK(jpg.label == 1);
  REQUIRE(jpg.image.sizes() == Shape{12, 20, 3});
  CHECK(max_abs_diff(jpg.image, a) <= 6);  // quality 100, 4:4:4: only rounding error
  Example png = ds.get(2);
  REQUIRE(png.image.sizes() == Shape{16, 16, 3});
  CHECK(max_abs_diff(png.image, b) == 0);
  CHECK_THROWS_AS(ds.get(3), Error);
}

TEST_CASE("decode_image: grayscale and DCT-domain downscaling") {
  TempDir tmp;
  const auto px = pattern(64, 48, 0);
  const auto jpg = encode_jpeg(64, 48, px);
  Tensor full = decode_image(jpg.data(), jpg.size(), "x.jpg");
  CHECK(full.sizes() == Shape{48, 64, 3});
  // Smallest scaled size with a shorter side >= 24 is 1/2: 32x24.
  Tensor half = decode_image(jpg.data(), jpg.size(), "x.jpg", {3, 24});
  CHECK(half.sizes() == Shape{24, 32, 3});
  Tensor eighth = decode_image(jpg.data(), jpg.size(), "x.jpg", {3, 5});
  CHECK(eighth.sizes() == Shape{6, 8, 3});
  // Never upscales: min_side above the image keeps full size.
  CHECK(decode_image(jpg.data(), jpg.size(), "x.jpg", {3, 500}).sizes() == Shape{48, 64, 3});
  // Downscaled pixel (y, x) averages the full pixels around (2y, 2x); the pattern is smooth, so it is close.
  const uint8_t* h = half.data<uint8_t>();
  const uint8_t* f = full.data<uint8_t>();
  int worst = 0;
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 32; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        const int avg = (f[((2 * y) * 64 + 2 * x) * 3 + ch] + f[((2 * y + 1) * 64 + 2 * x + 1) * 3 + ch]) / 2;
        worst = std::max(worst, std::abs(int{h[(y * 32 + x) * 3 + ch]} - avg));
      }
  CHECK(worst <= 8);

  // Grayscale: one channel, luma of the RGB (0.299 R + 0.587 G + 0.114 B).
  Tensor gray = decode_image(jpg.data(), jpg.size(), "x.jpg", {1, 0});
  REQUIRE(gray.sizes() == Shape{48, 64, 1});
  const double luma = 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
  CHECK(std::abs(gray.data<uint8_t>()[0] - luma) <= 6);
  write_png(tmp.file("g.png"), 64, 48, px);
  Tensor gpng = read_image(tmp.file("g.png"), {1, 0});
  REQUIRE(gpng.sizes() == Shape{48, 64, 1});
  CHECK(std::abs(gpng.data<uint8_t>()[0] - luma) <= 2);
}

TEST_CASE("ImageFolder: a corrupt or non-image file throws naming the file") {
  TempDir tmp;
  const auto px = pattern(32, 32, 1);
  auto jpg = encode_jpeg(32, 32, px);
  write_png(tmp.file("root/a/good.png"), 32, 32, px);
  const std::string truncated = tmp.file("root/a/truncated.jpg");
  minidl_test::write_bytes(truncated,
                           std::vector<uint8_t>(jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() / 2)));
  const std::string header_only = tmp.file("root/b/header.jpg");
  minidl_test::write_bytes(header_only, std::vector<uint8_t>(jpg.begin(), jpg.begin() + 40));
  const std::string text = tmp.file("root/b/text.png");
  minidl_test::write_bytes(text, {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
  auto png = minidl_test::read_bytes(tmp.file("root/a/good.png"));
  png.resize(png.size() / 2);
  const std::string badpng = tmp.file("root/b/zcut.png");
  minidl_test::write_bytes(badpng, png);

  ImageFolder ds(tmp.str() + "/root");
  REQUIRE(ds.size() == 5);  // a/good.png, a/truncated.jpg, b/header.jpg, b/text.png, b/zcut.png
  CHECK(ds.get(0).image.sizes() == Shape{32, 32, 3});
  CHECK_THROWS_WITH_AS(ds.get(1), doctest::Contains(("'" + truncated + "': corrupt JPEG").c_str()), Error);
  CHECK_THROWS_WITH_AS(ds.get(2), doctest::Contains(header_only.c_str()), Error);
  CHECK_THROWS_WITH_AS(ds.get(3), doctest::Contains(("'" + text + "': not a JPEG or PNG image").c_str()), Error);
  CHECK_THROWS_WITH_AS(ds.get(4), doctest::Contains(("'" + badpng + "': corrupt PNG").c_str()), Error);
}

TEST_CASE("ImageFolder: missing or empty root") {
  TempDir tmp;
  const std::string missing = tmp.str() + "/missing";
  CHECK_THROWS_WITH_AS(ImageFolder{missing}, doctest::Contains(("ImageFolder: data directory '" + missing).c_str()),
                       Error);
  std::filesystem::create_directories(tmp.str() + "/empty/cls");
  CHECK_THROWS_WITH_AS(ImageFolder{tmp.str() + "/empty"}, doctest::Contains("no .jpg/.jpeg/.png images"), Error);
  CHECK_THROWS_AS(read_image(tmp.str() + "/nofile.png"), Error);
  CHECK_THROWS_WITH_AS(read_image(tmp.str() + "/nofile.png"), doctest::Contains("nofile.png"), Error);
}
