// Pillow's bilinear resampling, transcribed from libImaging/Resample.c (precompute_coeffs,
// normalize_coeffs_8bpc, ImagingResampleHorizontal_8bpc / Vertical_8bpc, ImagingResampleInner); see resample.h.
#include "data/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/cpu_isa.h"
#include "core/error.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace minidl::data {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Per output pixel: the first source index, the number of taps and the fixed-point weights (ksize apart).
struct Coeffs {
  int64_t ksize = 0;
  std::vector<int64_t> first, count;
  std::vector<int32_t> weights;
};

Coeffs precompute(int64_t in_size, double in0, double in1, int64_t out_size) {
  const double scale = (in1 - in0) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // the triangle filter's support is 1
  Coeffs c;
  c.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  c.first.resize(static_cast<size_t>(out_size));
  c.count.resize(static_cast<size_t>(out_size));
  c.weights.assign(static_cast<size_t>(out_size * c.ksize), 0);
  std::vector<double> k(static_cast<size_t>(c.ksize));
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (static_cast<double>(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // Pillow rounds with (int)(v + 0.5), i.e. truncation toward zero of v + 0.5.
    int64_t xmin = static_cast<int64_t>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int64_t xmax = static_cast<int64_t>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int64_t x = 0; x < xmax; ++x) {
      const double w = triangle((static_cast<double>(x + xmin) - center + 0.5) * ss);
      k[static_cast<size_t>(x)] = w;
      ww += w;
    }
    for (int64_t x = 0; x < xmax; ++x) {
      double w = ww != 0.0 ? k[static_cast<size_t>(x)] / ww : k[static_cast<size_t>(x)];
      w *= static_cast<double>(1 << kPrecisionBits);
      c.weights[static_cast<size_t>(xx * c.ksize + x)] = static_cast<int32_t>(w < 0 ? -0.5 + w : 0.5 + w);
    }
    c.first[static_cast<size_t>(xx)] = xmin;
    c.count[static_cast<size_t>(xx)] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// The two passes. Their sums are int32 and exact, so any summation order gives Pillow's bytes: the AVX2 variants
// (chosen at run time, capped by MINIDL_CPU_ISA) are bit-identical to the scalar ones, only faster.

// Horizontal pass of `rows` rows: out_w output pixels of `ch` bytes from the taps in `cx`.
[[gnu::always_inline]] inline void horizontal_pass_body(const uint8_t* src, int64_t stride, int64_t rows, int64_t ch,
                                                        const Coeffs& cx, uint8_t* dst, int64_t out_w) {
  for (int64_t y = 0; y < rows; ++y) {
    const uint8_t* srow = src + y * stride;
    uint8_t* drow = dst + y * out_w * ch;
    for (int64_t x = 0; x < out_w; ++x) {
      const int64_t xmin = cx.first[static_cast<size_t>(x)], n = cx.count[static_cast<size_t>(x)];
      const int32_t* k = &cx.weights[static_cast<size_t>(x * cx.ksize)];
      if (ch == 3) {  // RGB, the common case: the three sums side by side (Pillow's int32 accumulators)
        int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        const uint8_t* p = srow + xmin * 3;
        for (int64_t i = 0; i < n; ++i, p += 3) {
          s0 += p[0] * k[i];
          s1 += p[1] * k[i];
          s2 += p[2] * k[i];
        }
        drow[x * 3] = clip8(s0), drow[x * 3 + 1] = clip8(s1), drow[x * 3 + 2] = clip8(s2);
        continue;
      }
      for (int64_t c = 0; c < ch; ++c) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int64_t i = 0; i < n; ++i) ss += srow[(xmin + i) * ch + c] * k[i];
        drow[x * ch + c] = clip8(ss);
      }
    }
  }
}

void horizontal_pass(const uint8_t* src, int64_t stride, int64_t rows, int64_t ch, const Coeffs& cx, uint8_t* dst,
                     int64_t out_w) {
  horizontal_pass_body(src, stride, rows, ch, cx, dst, out_w);
}

// Vertical pass, a row of sums at a time (tap-major, so the inner loop runs along contiguous bytes and
// vectorises); the same int32 sums as Pillow's per-pixel loop.
[[gnu::always_inline]] inline void vertical_pass_body(const uint8_t* mid, int64_t mid_stride, int64_t width,
                                                      const Coeffs& cy, uint8_t* dst, int64_t out_h) {
  std::vector<int32_t> acc(static_cast<size_t>(width));
  for (int64_t y = 0; y < out_h; ++y) {
    const int64_t ymin = cy.first[static_cast<size_t>(y)], n = cy.count[static_cast<size_t>(y)];
    const int32_t* k = &cy.weights[static_cast<size_t>(y * cy.ksize)];
    int32_t* a = acc.data();
    for (int64_t xc = 0; xc < width; ++xc) a[xc] = 1 << (kPrecisionBits - 1);
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t* row = mid + (ymin + i) * mid_stride;
      const int32_t w = k[i];
      for (int64_t xc = 0; xc < width; ++xc) a[xc] += row[xc] * w;
    }
    uint8_t* drow = dst + y * width;
    for (int64_t xc = 0; xc < width; ++xc) drow[xc] = clip8(a[xc]);
  }
}

void vertical_pass(const uint8_t* mid, int64_t mid_stride, int64_t width, const Coeffs& cy, uint8_t* dst,
                   int64_t out_h) {
  vertical_pass_body(mid, mid_stride, width, cy, dst, out_h);
}

#if defined(__x86_64__)
bool use_avx2() { return cpu::isa_enabled(cpu::CpuIsa::Avx2); }

// The vertical loops compiled for AVX2 (8 int32 products per instruction).
__attribute__((target("avx2"))) void vertical_pass_avx2(const uint8_t* mid, int64_t mid_stride, int64_t width,
                                                        const Coeffs& cy, uint8_t* dst, int64_t out_h) {
  vertical_pass_body(mid, mid_stride, width, cy, dst, out_h);
}

// Horizontal RGB: one pixel's three sums in the lanes of one vector (the taps of a pixel are contiguous bytes,
// so a pixel's tap is a 3-byte load widened to int32 lanes and multiplied by the broadcast weight).
__attribute__((target("avx2"))) void horizontal_pass_avx2(const uint8_t* src, int64_t stride, int64_t rows, int64_t ch,
                                                          const Coeffs& cx, uint8_t* dst, int64_t out_w) {
  if (ch != 3) {
    horizontal_pass_body(src, stride, rows, ch, cx, dst, out_w);
    return;
  }
  const __m128i round = _mm_set1_epi32(1 << (kPrecisionBits - 1));
  for (int64_t y = 0; y < rows; ++y) {
    const uint8_t* srow = src + y * stride;
    uint8_t* drow = dst + y * out_w * 3;
    for (int64_t x = 0; x < out_w; ++x) {
      const int64_t n = cx.count[static_cast<size_t>(x)];
      const int32_t* k = &cx.weights[static_cast<size_t>(x * cx.ksize)];
      const uint8_t* p = srow + cx.first[static_cast<size_t>(x)] * 3;
      __m128i acc = round;
      for (int64_t i = 0; i < n; ++i, p += 3) {
        // Three bytes only: reading a fourth could pass the end of the image.
        const int32_t rgb = p[0] | (p[1] << 8) | (p[2] << 16);
        const __m128i v = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(rgb));
        acc = _mm_add_epi32(acc, _mm_mullo_epi32(v, _mm_set1_epi32(k[i])));
      }
      // >> 22, then saturate to 0..255 as clip8 does (int32 -> int16 -> uint8, both saturating).
      const __m128i q = _mm_srai_epi32(acc, kPrecisionBits);
      const __m128i b = _mm_packus_epi16(_mm_packs_epi32(q, q), _mm_setzero_si128());
      const int32_t out = _mm_cvtsi128_si32(b);
      drow[x * 3] = static_cast<uint8_t>(out), drow[x * 3 + 1] = static_cast<uint8_t>(out >> 8);
      drow[x * 3 + 2] = static_cast<uint8_t>(out >> 16);
    }
  }
}
#else
bool use_avx2() { return false; }
void vertical_pass_avx2(const uint8_t* mid, int64_t mid_stride, int64_t width, const Coeffs& cy, uint8_t* dst,
                        int64_t out_h) {
  vertical_pass(mid, mid_stride, width, cy, dst, out_h);
}
void horizontal_pass_avx2(const uint8_t* src, int64_t stride, int64_t rows, int64_t ch, const Coeffs& cx, uint8_t* dst,
                          int64_t out_w) {
  horizontal_pass(src, stride, rows, ch, cx, dst, out_w);
}
#endif

}  // namespace

U8View view_of(const Tensor& hwc) {
  MINIDL_CHECK(hwc.dtype() == DType::u8 && hwc.dim() == 3 && hwc.is_contiguous() && hwc.device().is_cpu(),
               "resample: expected a contiguous host uint8 HWC image, got ", dtype_name(hwc.dtype()), " ",
               shape_str(hwc.sizes()));
  return {hwc.data<uint8_t>(), hwc.size(0), hwc.size(1), hwc.size(2), hwc.size(1) * hwc.size(2)};
}

Tensor resample_bilinear(const U8View& src, const Box& box, int64_t out_h, int64_t out_w) {
  MINIDL_CHECK(out_h > 0 && out_w > 0, "resample: bad output size ", out_h, "x", out_w);
  MINIDL_CHECK(src.rows > 0 && src.cols > 0 && src.channels > 0, "resample: empty source image");
  MINIDL_CHECK(box.x0 >= 0 && box.y0 >= 0 && box.x1 <= static_cast<double>(src.cols) &&
                   box.y1 <= static_cast<double>(src.rows) && box.x1 > box.x0 && box.y1 > box.y0,
               "resample: box (", box.x0, ", ", box.y0, ", ", box.x1, ", ", box.y1, ") outside the ", src.rows, "x",
               src.cols, " image");
  const int64_t ch = src.channels;
  Tensor out = empty({out_h, out_w, ch}, TensorOptions{}.dtype(DType::u8));
  uint8_t* dst = out.data<uint8_t>();
  const bool need_h = out_w != src.cols || box.x0 != 0 || box.x1 != static_cast<double>(out_w);
  const bool need_v = out_h != src.rows || box.y0 != 0 || box.y1 != static_cast<double>(out_h);
  if (!need_h && !need_v) {
    for (int64_t y = 0; y < out_h; ++y)
      std::memcpy(dst + y * out_w * ch, src.data + y * src.stride, static_cast<size_t>(out_w * ch));
    return out;
  }
  const Coeffs ch_x = precompute(src.cols, box.x0, box.x1, out_w);
  Coeffs ch_y = precompute(src.rows, box.y0, box.y1, out_h);
  // Only the rows the vertical pass reads go through the horizontal pass.
  const int64_t y_first = ch_y.first.front();
  const int64_t y_last = ch_y.first.back() + ch_y.count.back();

  // Horizontal pass: rows y_first..y_last of the source into `tmp` (or straight into the output).
  std::vector<uint8_t> tmp;
  const uint8_t* mid = src.data;
  int64_t mid_stride = src.stride;
  if (need_h) {
    const int64_t rows = need_v ? y_last - y_first : out_h;
    const int64_t row0 = need_v ? y_first : 0;
    uint8_t* hdst = dst;
    if (need_v) {
      tmp.resize(static_cast<size_t>(rows * out_w * ch));
      hdst = tmp.data();
      for (auto& f : ch_y.first) f -= y_first;
    }
    if (use_avx2()) {
      horizontal_pass_avx2(src.data + row0 * src.stride, src.stride, rows, ch, ch_x, hdst, out_w);
    } else {
      horizontal_pass(src.data + row0 * src.stride, src.stride, rows, ch, ch_x, hdst, out_w);
    }
    if (!need_v) return out;
    mid = tmp.data();
    mid_stride = out_w * ch;
  }
  // Vertical pass.
  const int64_t cols = need_h ? out_w : src.cols;
  const int64_t width = cols * ch;
  if (use_avx2()) {
    vertical_pass_avx2(mid, mid_stride, width, ch_y, dst, out_h);
  } else {
    vertical_pass(mid, mid_stride, width, ch_y, dst, out_h);
  }
  return out;
}

}  // namespace minidl::data
