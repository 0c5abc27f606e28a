// Fuzz target: decode_image over memory (JPEG through TurboJPEG, PNG through stb_image), as RGB, as grayscale
// and as RGB with DCT-domain downscaling. An accepted image must be a dense uint8 HWC tensor with positive sides
// and the requested channels; RGB and grayscale must agree on the size, and a downscaled decode must not be
// larger than the full one. The harness lowers max_pixels to 4 megapixels so that inputs claiming huge images
// are refused fast instead of slowing the fuzzer down (the limit check itself is the same code).
#include "data/image_decode.h"
#include "fuzz_targets.h"

namespace minidl::fuzz {
namespace {

Shape decode_checked(const uint8_t* data, size_t size, int channels, int min_side) {
  data::DecodeOptions opts;
  opts.channels = channels;
  opts.min_side = min_side;
  opts.max_pixels = int64_t{1} << 22;
  const Tensor img = data::decode_image(data, size, "fuzz-input", opts);
  FUZZ_REQUIRE(img.dtype() == DType::u8 && img.is_contiguous() && img.dim() == 3, "decoded tensor ",
               shape_str(img.sizes()));
  const int64_t h = img.size(0), w = img.size(1), c = img.size(2);
  FUZZ_REQUIRE(h > 0 && w > 0 && c == channels, "decoded shape ", shape_str(img.sizes()), " for ", channels,
               " channels");
  FUZZ_REQUIRE(img.nbytes() == static_cast<size_t>(h * w * c), img.nbytes(), " bytes for ", shape_str(img.sizes()));
  FUZZ_REQUIRE(h * w <= opts.max_pixels, "decoded ", h, "x", w, " above max_pixels");
  return img.sizes();
}

}  // namespace

Outcome fuzz_image(const uint8_t* data, size_t size) {
  Outcome out;
  Shape rgb, gray, scaled;
  attempt(out, [&] { rgb = decode_checked(data, size, 3, 0); });
  attempt(out, [&] { gray = decode_checked(data, size, 1, 0); });
  attempt(out, [&] { scaled = decode_checked(data, size, 3, 8); });
  if (!rgb.empty() && !gray.empty())
    FUZZ_REQUIRE(rgb[0] == gray[0] && rgb[1] == gray[1], "RGB ", shape_str(rgb), " vs grayscale ", shape_str(gray));
  if (!rgb.empty() && !scaled.empty())
    FUZZ_REQUIRE(scaled[0] <= rgb[0] && scaled[1] <= rgb[1], "downscaled ", shape_str(scaled), " vs ", shape_str(rgb));
  return out;
}

}  // namespace minidl::fuzz
