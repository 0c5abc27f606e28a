// Decoding only part of a JPEG, with libjpeg-turbo's own API: jpeg_crop_scanline narrows each row to the
// window's columns (rounded out to whole iMCUs), jpeg_skip_scanlines skips the rows above it, decoding stops
// after its last row, and an optional DCT-domain scale M/8 (libjpeg's scale_num/scale_denom) shrinks the
// window while it is decoded. A RandomResizedCrop of a fraction of a photo thus costs a fraction of its
// decode. Every colour space libjpeg knows (grayscale, YCbCr, RGB, CMYK/YCCK) comes out as RGB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "data/resample.h"
#include "tensor/tensor.h"

namespace minidl::data {

struct JpegInfo {
  int64_t height = 0, width = 0;
};

/// The image size from the header alone; throws naming `name` when the header is corrupt.
JpegInfo read_jpeg_info(const uint8_t* bytes, size_t size, const std::string& name);

/// A decoded window: `pixels` (uint8 HWC RGB) holds rows/columns around the window, and `box` is the window's
/// exact place in it, in pixels of the scaled image (fractional when scale_eighths < 8).
struct DecodedRegion {
  Tensor pixels;
  Box box;
};

/// Decodes the window (top, left, height, width) of the full-size image at scale scale_eighths/8 (1..8).
/// Corrupt or truncated data throws naming `name`.
DecodedRegion decode_jpeg_region(const uint8_t* bytes, size_t size, const std::string& name, int64_t top, int64_t left,
                                 int64_t height, int64_t width, int scale_eighths = 8);

/// The smallest scale M/8 (M in 1, 2, 4) at which a crop_h x crop_w window still covers out_h x out_w, used
/// only when the window is at least twice the output in both directions; 8 (no scaling) otherwise.
int dct_scale_for(int64_t crop_h, int64_t crop_w, int64_t out_h, int64_t out_w);

}  // namespace minidl::data
