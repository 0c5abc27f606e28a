// Bilinear resampling of uint8 HWC images with Pillow's algorithm (Resample.c, the one torchvision's PIL path
// uses): a separable triangle filter whose support widens with the downscaling factor (antialiasing),
// fixed-point weights with 22 fractional bits, a horizontal pass into a uint8 intermediate, then a vertical
// pass. Following it step by step makes minidl's Resize/RandomResizedCrop agree with torchvision + PIL to
// within one grey level instead of differing by the whole antialiasing blur.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace minidl::data {

/// A read-only view of a uint8 HWC image: `rows` x `cols` pixels of `channels` bytes, `stride` bytes a row.
struct U8View {
  const uint8_t* data = nullptr;
  int64_t rows = 0, cols = 0, channels = 3, stride = 0;
};

/// A source window in pixel coordinates (fractions allowed, as Pillow's resize(box=...)): x0 <= x < x1.
struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

/// Resamples the `box` of `src` to out_h x out_w (uint8 HWC, contiguous). Pixels outside the view are never
/// read (the filter is clipped at the view's edges, as Pillow clips at the image's), so crop-then-resize is
/// resample(view of the crop, box = whole view).
Tensor resample_bilinear(const U8View& src, const Box& box, int64_t out_h, int64_t out_w);

/// The view of a contiguous uint8 HWC tensor.
U8View view_of(const Tensor& hwc);

}  // namespace minidl::data
