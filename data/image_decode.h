// Image decoding for ImageFolder: JPEG through TurboJPEG (with DCT-domain downscaling, which makes decoding a
// large photo for a small network several times cheaper), PNG through stb_image
// (no other format: stb's other decoders are attack surface nothing needs). The format is taken from the file's
// signature, not its extension. Output: uint8 HWC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace minidl::data {

struct DecodeOptions {
  int channels = 3;  // 3 = RGB, 1 = grayscale
  /// When > 0, a JPEG is decoded at the smallest TurboJPEG scaling factor (1/8 .. 1) whose result still has a
  /// shorter side >= min_side; 0 decodes at full size. PNGs are always decoded at full size.
  int min_side = 0;
  /// Largest accepted (decoded) width x height. A header is only a claim: a 100-byte file saying 65535 x 65535
  /// must be refused before 12 GB are allocated for it. The default (2^27, 134 megapixels, 402 MB as RGB) is
  /// above any photo a training set holds.
  int64_t max_pixels = int64_t{1} << 27;
};

/// Decodes the encoded bytes; `name` (usually the path) labels errors: "image 'x.jpg': corrupt JPEG: ...".
Tensor decode_image(const uint8_t* bytes, size_t size, const std::string& name, const DecodeOptions& opts = {});
/// Reads and decodes the file at path.
Tensor read_image(const std::string& path, const DecodeOptions& opts = {});

bool is_jpeg(const uint8_t* bytes, size_t size);
bool is_png(const uint8_t* bytes, size_t size);

}  // namespace minidl::data
