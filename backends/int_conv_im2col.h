// The im2col walk of the integer convolution, shared by the portable copy (int_conv.cpp) and the AVX-512 one
// (int_conv_avx512.cpp), which differ only in how they move bytes.
#pragma once

#include <cstdint>

#include "backends/int_conv.h"

namespace minidl::backends::detail {

// Where output pixel p lies, (n, oh, ow) in out_h x out_w images, stepped along runs of one output row without
// divisions: the walk of segment_rows and of the bit-serial convolution.
struct OutputCursor {
  int64_t out_h, out_w, n, oh, ow;
  OutputCursor(int64_t p, int64_t h, int64_t w) : out_h(h), out_w(w), n(p / (h * w)), oh((p / w) % h), ow(p % w) {}
  /// Pixels left in the current output row.
  int64_t row_left() const { return out_w - ow; }
  /// Moves `run` pixels on (run <= row_left()).
  void advance(int64_t run) {
    ow += run;
    if (ow == out_w) {
      ow = 0;
      if (++oh == out_h) {
        oh = 0;
        ++n;
      }
    }
  }
};

// One kernel row of a pixel whose window crosses the left or right side: the k pixels from image row src starting
// at column iw0, code 0 for the columns outside the image. Ops: zero_pixel(dst), copy_pixel(dst, src) (in_c codes).
template <typename Ops>
[[gnu::always_inline]] inline void clipped_kernel_row_with(const IntConvGeometry& g, const uint8_t* src, int64_t iw0,
                                                           uint8_t* dst, const Ops& ops) {
  const int64_t C = g.in_c;
  for (int64_t s = 0; s < g.kernel; ++s) {
    const int64_t iw = iw0 + s;
    if (iw < 0 || iw >= g.in_w) {
      ops.zero_pixel(dst + s * C);
    } else {
      ops.copy_pixel(dst + s * C, src + iw * C);
    }
  }
}

// Kernel row r of the window starting at input row ih0, column iw0 of `image` (one image's NHWC codes), kernel * in_c
// codes into dst: zeros above or below the image, the contiguous pixels when the window lies inside the image's
// width (inside_w), else clipped_kernel_row_with. Ops as in im2col_rows_with.
template <typename Ops>
[[gnu::always_inline]] inline void window_row_with(const IntConvGeometry& g, const uint8_t* image, int64_t ih0,
                                                   int64_t iw0, bool inside_w, int64_t r, uint8_t* dst,
                                                   const Ops& ops) {
  const int64_t ih = ih0 + r, row_codes = g.in_w * g.in_c;
  if (ih < 0 || ih >= g.in_h) {
    ops.zero_row(dst);
  } else if (inside_w) {  // the k pixels of this kernel row are contiguous in NHWC
    ops.copy_row(dst, image + ih * row_codes + iw0 * g.in_c);
  } else {
    clipped_kernel_row_with(g, image + ih * row_codes, iw0, dst, ops);
  }
}

// im2col of output pixels [p0, p0 + rows): row i holds the kernel x kernel x in_c codes of pixel p0 + i in
// (r, s, c) order, code 0 outside the image. The pixel's (n, oh, ow) advance incrementally (no divisions per row).
// Ops also has zero_row(dst) and copy_row(dst, src) (kernel x in_c codes). Everything is written in increasing
// address order: the AVX-512 moves store whole vectors past the end of what they move, which the next write covers.
template <typename Ops>
[[gnu::always_inline]] inline void im2col_rows_with(const IntConvGeometry& g, const uint8_t* codes, int64_t p0,
                                                    int64_t rows, uint8_t* a, const Ops& ops) {
  const int64_t OH = g.out_h(), OW = g.out_w(), C = g.in_c, k = g.kernel, depth = g.depth(), kc = k * C;
  int64_t n = p0 / (OH * OW), oh = (p0 / OW) % OH, ow = p0 % OW;
  for (int64_t i = 0; i < rows; ++i) {
    uint8_t* row = a + i * depth;
    const int64_t iw0 = ow * g.stride - g.padding;
    const bool inside_w = iw0 >= 0 && iw0 + k <= g.in_w;
    const uint8_t* image = codes + n * g.in_h * g.in_w * C;
    for (int64_t r = 0; r < k; ++r)
      window_row_with(g, image, oh * g.stride - g.padding, iw0, inside_w, r, row + r * kc, ops);
    if (++ow == OW) {
      ow = 0;
      if (++oh == OH) {
        oh = 0;
        ++n;
      }
    }
  }
}

}  // namespace minidl::backends::detail
