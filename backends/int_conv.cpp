// Integer NHWC convolution with a fused epilogue (see int_conv.h): tiles of output pixels, each im2col'd into
// codes, multiplied by gemm_u8s8_s32 on its thread, and finished by the epilogue while still in cache.
#include "backends/int_conv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/int_conv_avx512.h"
#include "backends/int_conv_im2col.h"
#include "backends/int_conv_x86.h"
#include "core/cpu_isa.h"
#include "core/error.h"

namespace minidl::backends {

// ---- CodeThresholds ----

CodeThresholds::CodeThresholds(std::vector<float> thresholds, std::vector<uint8_t> book)
    : t_(std::move(thresholds)), book_(std::move(book)) {
  MINIDL_CHECK(book_.size() == t_.size() + 1, "CodeThresholds: ", t_.size(), " thresholds need ", t_.size() + 1,
               " codes, got ", book_.size());
  for (size_t k = 0; k < t_.size(); ++k) {
    MINIDL_CHECK(std::isfinite(t_[k]), "CodeThresholds: threshold ", k, " is not finite (", t_[k], ")");
    MINIDL_CHECK(k == 0 || t_[k - 1] < t_[k], "CodeThresholds: thresholds must ascend strictly, but ", t_[k - 1],
                 " >= ", t_[k], " at ", k);
  }
}

uint8_t CodeThresholds::code(float x) const {
  // upper_bound counts the thresholds <= x; NaN compares false everywhere and lands on index 0 as in the kernels
  if (x != x) return book_[0];
  return book_[static_cast<size_t>(std::upper_bound(t_.begin(), t_.end(), x) - t_.begin())];
}

int64_t quantize_to_codes(const CodeThresholds& q, const float* x, int64_t n, uint8_t* out) {
  MINIDL_CHECK(!q.empty(), "quantize_to_codes: empty quantizer");
  MINIDL_CHECK(n >= 0 && (n == 0 || (x != nullptr && out != nullptr)), "quantize_to_codes: bad arguments (n ", n, ")");
  const auto nt = static_cast<int>(q.thresholds().size());
  if (nt + 1 <= detail::kQuantizeAvx512MaxBook && cpu::isa_enabled(cpu::CpuIsa::Avx512))
    return detail::quantize_to_codes_avx512(q, x, n, out);
  if (nt + 1 <= detail::kQuantizeAvx2MaxBook && cpu::isa_enabled(cpu::CpuIsa::Avx2)) {
    uint8_t book16[detail::kQuantizeAvx2MaxBook] = {};
    std::copy(q.book().begin(), q.book().end(), book16);
    return detail::quantize_to_codes_avx2(q.thresholds().data(), nt, book16, x, n, out);
  }
  int64_t nan = 0;
  for (int64_t i = 0; i < n; ++i) {
    nan += x[i] != x[i] ? 1 : 0;
    out[i] = q.code(x[i]);
  }
  return nan;
}

// ---- weights ----

PackedInt8Weights pack_conv_weights_rsc(int64_t out_c, int64_t in_c, int64_t kernel, const int8_t* oihw,
                                        int max_input) {
  MINIDL_CHECK(out_c > 0 && in_c > 0 && kernel > 0 && oihw != nullptr, "pack_conv_weights_rsc: bad arguments (out ",
               out_c, ", in ", in_c, ", kernel ", kernel, ")");
  const int64_t depth = kernel * kernel * in_c;
  std::vector<int8_t> rsc(static_cast<size_t>(out_c * depth));
  for (int64_t o = 0; o < out_c; ++o)
    for (int64_t c = 0; c < in_c; ++c)
      for (int64_t r = 0; r < kernel; ++r)
        for (int64_t s = 0; s < kernel; ++s)
          rsc[static_cast<size_t>(o * depth + (r * kernel + s) * in_c + c)] =
              oihw[((o * in_c + c) * kernel + r) * kernel + s];
  return pack_int8_weights(out_c, depth, rsc.data(), depth, max_input);
}

// ---- epilogue ----

namespace detail {

int64_t int_conv_epilogue(const IntConvEpilogue& e, int64_t out_c, int64_t p0, int64_t rows, const int32_t* acc,
                          float* scratch) {
  // AVX-512 with books of <= 16 codes: values and codes in one pass, in registers.
  if (cpu::isa_enabled(cpu::CpuIsa::Avx512) && avx512_epilogue_fits(e))
    return int_conv_epilogue_avx512(e, out_c, p0, rows, acc);
  // The values go straight to `out` when there is one (the quantizers read them back from cache), else to scratch.
  float* dst = e.out ? e.out + p0 * out_c : scratch;
  if (cpu::isa_enabled(cpu::CpuIsa::Avx2)) {
    epilogue_values_avx2(e, out_c, p0, rows, acc, dst);
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      const float* res = e.residual ? e.residual + (p0 + r) * out_c : nullptr;
      for (int64_t o = 0; o < out_c; ++o) {
        const auto c = static_cast<float>(static_cast<double>(acc[r * out_c + o]) * e.unit);
        float v = c * e.scale[o] + e.shift[o];
        if (res) v += res[o];
        dst[r * out_c + o] = e.relu ? std::max(v, 0.0f) : v;
      }
    }
  }
  int64_t nan = 0;
  for (int i = 0; i < IntConvEpilogue::kMaxConsumers; ++i)
    if (e.quant[i]) nan += quantize_to_codes(*e.quant[i], dst, rows * out_c, e.codes[i] + p0 * out_c);
  return nan;
}

}  // namespace detail

// ---- the convolution ----

namespace {

// Rows (output pixels) per tile: a multiple of 12 (both AVX2 row blocks, 3 and 4, divide it) whose im2col codes,
// int32 sums and floats stay in L2 (96 rows x 576 codes = 54 KiB for ResNet-20's widest layer).
constexpr int64_t kTileRows = 96, kRowQuantum = 12;
// Below this many multiply-adds a layer runs on the calling thread (as gemm_u8s8_s32 decides for itself).
constexpr int64_t kParallelMacs = int64_t{1} << 18;

// Per-thread buffers, kept between calls (batch-1 inference calls ~20 layers per image).
struct TileScratch {
  std::vector<uint8_t> a;
  std::vector<int32_t> acc;
  std::vector<float> f;
  std::vector<const uint8_t*> pieces;  // segment_rows' pointers
  std::vector<uint8_t> zeros;          // a kernel row of code 0 (padding rows)
};
TileScratch& tile_scratch() {
  static thread_local TileScratch s;
  return s;
}

// Copies n bytes, n a multiple of 16 in every call but the last (odd channel counts): 16-byte moves the compiler
// inlines, instead of a library call per kernel row (48 bytes for ResNet-20's first stage).
inline void copy_codes(uint8_t* dst, const uint8_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) std::memcpy(dst + i, src + i, 16);
  if (i < n) std::memcpy(dst + i, src + i, static_cast<size_t>(n - i));
}
inline void zero_codes(uint8_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) std::memset(dst + i, 0, 16);
  if (i < n) std::memset(dst + i, 0, static_cast<size_t>(n - i));
}

// The portable byte moves of the im2col walk (int_conv_im2col.h).
struct PortableCopies {
  int64_t row_bytes, pixel_bytes;
  explicit PortableCopies(const IntConvGeometry& g) : row_bytes(g.kernel * g.in_c), pixel_bytes(g.in_c) {}
  void zero_row(uint8_t* dst) const { zero_codes(dst, row_bytes); }
  void copy_row(uint8_t* dst, const uint8_t* src) const { copy_codes(dst, src, row_bytes); }
  void zero_pixel(uint8_t* dst) const { zero_codes(dst, pixel_bytes); }
  void copy_pixel(uint8_t* dst, const uint8_t* src) const { copy_codes(dst, src, pixel_bytes); }
};

void clipped_kernel_row(const IntConvGeometry& g, const uint8_t* src, int64_t iw0, uint8_t* dst) {
  detail::clipped_kernel_row_with(g, src, iw0, dst, PortableCopies(g));
}

void im2col_rows(const IntConvGeometry& g, const uint8_t* codes, int64_t p0, int64_t rows, uint8_t* a) {
  detail::im2col_rows_with(g, codes, p0, rows, a, PortableCopies(g));
}

// segment_rows for a pixel whose kernel window leaves the image: each kernel row's pointer into the codes, at
// `zeros` above or below the image, or at the row assembled in `row` (its im2col row) when it crosses a side.
void segment_border_pixel(const IntConvGeometry& g, const uint8_t* image, int64_t iw0, int64_t ih0, bool inside_w,
                          uint8_t* row, const uint8_t* zeros, const uint8_t** pieces) {
  const int64_t C = g.in_c, k = g.kernel, kc = k * C;
  for (int64_t r = 0; r < k; ++r) {
    const int64_t ih = ih0 + r;
    if (ih < 0 || ih >= g.in_h) {
      pieces[r] = zeros;
    } else if (inside_w) {
      pieces[r] = image + (ih * g.in_w + iw0) * C;
    } else {
      uint8_t* dst = row + r * kc;
      const uint8_t* src = image + ih * g.in_w * C;
      clipped_kernel_row(g, src, iw0, dst);
      pieces[r] = dst;
    }
  }
}

// The im2col of output pixels [p0, p0 + rows) as pointers, for gemm_u8s8_s32_segments: piece r of row i (kernel
// row r of pixel p0 + i, kernel * in_c codes) at pieces[i * kernel + r]. A kernel row inside the image is read in
// place from the codes (its pixels are contiguous in NHWC), one above or below the image is `zeros`, and one
// crossing the left or right border is assembled in `a` at its im2col position.
void segment_rows(const IntConvGeometry& g, const uint8_t* codes, int64_t p0, int64_t rows, uint8_t* a,
                  const uint8_t* zeros, const uint8_t** pieces) {
  const int64_t OH = g.out_h(), OW = g.out_w(), C = g.in_c, k = g.kernel, depth = g.depth();
  int64_t n = p0 / (OH * OW), oh = (p0 / OW) % OH, ow = p0 % OW;
  const int64_t row_codes = g.in_w * C;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t iw0 = ow * g.stride - g.padding, ih0 = oh * g.stride - g.padding;
    const bool inside_w = iw0 >= 0 && iw0 + k <= g.in_w;
    const uint8_t* image = codes + n * g.in_h * row_codes;
    if (inside_w && ih0 >= 0 && ih0 + k <= g.in_h) {  // most pixels: every kernel row inside the image
      const uint8_t* at = image + ih0 * row_codes + iw0 * C;
      for (int64_t r = 0; r < k; ++r) pieces[i * k + r] = at + r * row_codes;
    } else {
      segment_border_pixel(g, image, iw0, ih0, inside_w, a + i * depth, zeros, pieces + i * k);
    }
    if (++ow == OW) {
      ow = 0;
      if (++oh == OH) {
        oh = 0;
        ++n;
      }
    }
  }
}

}  // namespace

int64_t int_conv2d_nhwc(const IntConvGeometry& g, const uint8_t* codes, const PackedInt8Weights& w,
                        const IntConvEpilogue& e) {
  MINIDL_CHECK(g.batch > 0 && g.in_h > 0 && g.in_w > 0 && g.in_c > 0 && g.out_c > 0 && g.kernel > 0 && g.stride > 0 &&
                   g.padding >= 0 && g.out_h() > 0 && g.out_w() > 0,
               "int_conv2d_nhwc: invalid geometry (batch ", g.batch, ", ", g.in_h, "x", g.in_w, "x", g.in_c, " -> ",
               g.out_c, ", kernel ", g.kernel, ", stride ", g.stride, ", padding ", g.padding, ")");
  MINIDL_CHECK(w.rows() == g.out_c && w.depth() == g.depth(), "int_conv2d_nhwc: weights are ", w.rows(), " x ",
               w.depth(), ", the geometry needs ", g.out_c, " x ", g.depth());
  MINIDL_CHECK(codes != nullptr && e.scale != nullptr && e.shift != nullptr, "int_conv2d_nhwc: null codes or affine");
  bool any_output = e.out != nullptr;
  for (int i = 0; i < IntConvEpilogue::kMaxConsumers; ++i) {
    MINIDL_CHECK((e.quant[i] == nullptr) == (e.codes[i] == nullptr),
                 "int_conv2d_nhwc: a consumer needs both a quantizer and a code buffer");
    MINIDL_CHECK(e.quant[i] == nullptr || !e.quant[i]->empty(), "int_conv2d_nhwc: empty consumer quantizer");
    any_output = any_output || e.quant[i] != nullptr;
  }
  MINIDL_CHECK(any_output, "int_conv2d_nhwc: the epilogue writes nothing (no float output, no consumer)");

  const int64_t M = g.batch * g.out_h() * g.out_w(), K = g.depth(), N = g.out_c;
  const bool pointwise = g.kernel == 1 && g.stride == 1 && g.padding == 0;  // the codes are the GEMM's rows
  const int nthreads = omp_in_parallel() != 0 || M * N * K < kParallelMacs ? 1 : omp_get_max_threads();
  int64_t tile = kTileRows;
  if (nthreads > 1) {
    // As many tiles per thread (small layers, batch 1: one each), of at most kTileRows rows: a layer of 9 full
    // tiles on 2 threads would leave one thread idle for a ninth of it.
    const int64_t per_thread = std::max<int64_t>(1, (M + kTileRows * nthreads - 1) / (kTileRows * nthreads));
    const int64_t rows = (M + per_thread * nthreads - 1) / (per_thread * nthreads);
    tile = std::min(kTileRows, (rows + kRowQuantum - 1) / kRowQuantum * kRowQuantum);
  }
  const int64_t tiles = (M + tile - 1) / tile;
  const bool avx512 = cpu::isa_enabled(cpu::CpuIsa::Avx512);
  // The GEMM reads each kernel row's codes in place where its kernel can (AVX-512 VNNI, kernel rows of whole
  // groups of 4 codes): no im2col copy for pixels inside the image.
  const int64_t kc = g.kernel * g.in_c;
  const bool in_place = !pointwise && gemm_u8s8_s32_segments_runnable(w, kc);

  int64_t nan = 0;
#pragma omp parallel for schedule(static) num_threads(nthreads) reduction(+ : nan) if (nthreads > 1)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t p0 = t * tile, rows = std::min(tile, M - p0);
    TileScratch& s = tile_scratch();
    if (s.acc.size() < static_cast<size_t>(tile * N)) s.acc.resize(static_cast<size_t>(tile * N));
    if (s.f.size() < static_cast<size_t>(tile * N)) s.f.resize(static_cast<size_t>(tile * N));
    const uint8_t* a = codes + p0 * K;
    if (in_place) {
      const auto need = static_cast<size_t>(tile * K);
      if (s.a.size() < need) s.a.resize(need);
      if (s.pieces.size() < static_cast<size_t>(tile * g.kernel)) s.pieces.resize(static_cast<size_t>(tile * g.kernel));
      if (s.zeros.size() < static_cast<size_t>(kc)) s.zeros.assign(static_cast<size_t>(kc), 0);
      segment_rows(g, codes, p0, rows, s.a.data(), s.zeros.data(), s.pieces.data());
      gemm_u8s8_s32_segments(rows, s.pieces.data(), g.kernel, kc, w, s.acc.data(), N);
    } else if (!pointwise) {
      const auto need = static_cast<size_t>(tile * K + detail::kIm2colAvx512Slack);
      if (s.a.size() < need) s.a.resize(need);
      if (avx512) {
        detail::im2col_rows_avx512(g, codes, p0, rows, s.a.data());
      } else {
        im2col_rows(g, codes, p0, rows, s.a.data());
      }
      a = s.a.data();
    }
    if (!in_place) gemm_u8s8_s32(rows, a, K, w, s.acc.data(), N);
    nan += detail::int_conv_epilogue(e, N, p0, rows, s.acc.data(), s.f.data());
  }
  return nan;
}

}  // namespace minidl::backends
