// A build without libjpeg-turbo or stb_image (cmake/optional_deps.cmake): decoding a JPEG or PNG is one
// minidl::Error naming the missing library and the file, never a crash or a garbage image. Skipped in a build
// that has both (test_image_folder.cpp and test_decode_crop.cpp decode real images there).
#include <doctest/doctest.h>

#include <vector>

#include "core/build_features.h"
#include "core/error.h"
#include "data/image_decode.h"
#include "data/jpeg_region.h"
#include "test_skip.h"

using namespace minidl;
using namespace minidl::data;

TEST_CASE("image decoding without its libraries: one error naming the library and the file") {
  const BuildFeatures& f = build_features();
  if (f.jpeg && f.png) MINIDL_SKIP("minidl was built with libjpeg-turbo and stb_image");
  // Just the signatures: the missing decoder must be named before anything reads further.
  const std::vector<uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F'};
  const std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 0};
  if (!f.jpeg) {
    CHECK_THROWS_WITH_AS(decode_image(jpeg.data(), jpeg.size(), "a.jpg"),
                         doctest::Contains("minidl was built without libjpeg-turbo: image 'a.jpg'"), Error);
    CHECK_THROWS_WITH_AS(read_jpeg_info(jpeg.data(), jpeg.size(), "b.jpg"), doctest::Contains("without libjpeg-turbo"),
                         Error);
    CHECK_THROWS_WITH_AS(decode_jpeg_region(jpeg.data(), jpeg.size(), "c.jpg", 0, 0, 1, 1),
                         doctest::Contains("without libjpeg-turbo"), Error);
  }
  if (!f.png)
    CHECK_THROWS_WITH_AS(decode_image(png.data(), png.size(), "a.png"),
                         doctest::Contains("minidl was built without stb_image: image 'a.png'"), Error);
  // Neither signature: the same error as in a full build.
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  CHECK_THROWS_WITH_AS(decode_image(text.data(), text.size(), "x.txt"), doctest::Contains("unknown signature"), Error);
}
