// Integer NHWC convolution with a fused epilogue (see int_conv.h): tiles of output pixels, each im2col'd into
// codes, multiplied by gemm_u8s8_s32 on its thread, and finished by the epilogue while still in cache.
#include "backends/int_conv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/int_conv_avx512.h"
#include "backends/int_conv_bitserial.h"
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

namespace {

// quantize_to_codes of `rows` rows of `len` contiguous values, row r's codes at out + r * out_stride: the kernel and
// its tables chosen once for all rows.
int64_t quantize_rows(const CodeThresholds& q, const float* x, int64_t rows, int64_t len, uint8_t* out,
                      int64_t out_stride) {
  const auto nt = static_cast<int>(q.thresholds().size());
  if (nt + 1 <= detail::kQuantizeAvx512MaxBook && cpu::isa_enabled(cpu::CpuIsa::Avx512))
    return detail::quantize_to_codes_avx512(q, x, rows, len, out, out_stride);
  int64_t nan = 0;
  if (nt + 1 <= detail::kQuantizeAvx2MaxBook && cpu::isa_enabled(cpu::CpuIsa::Avx2)) {
    uint8_t book16[detail::kQuantizeAvx2MaxBook] = {};
    std::copy(q.book().begin(), q.book().end(), book16);
    for (int64_t r = 0; r < rows; ++r)
      nan += detail::quantize_to_codes_avx2(q.thresholds().data(), nt, book16, x + r * len, len, out + r * out_stride);
    return nan;
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < len; ++i) {
      const float v = x[r * len + i];
      nan += v != v ? 1 : 0;
      out[r * out_stride + i] = q.code(v);
    }
  return nan;
}

}  // namespace

int64_t quantize_to_codes(const CodeThresholds& q, const float* x, int64_t n, uint8_t* out) {
  MINIDL_CHECK(!q.empty(), "quantize_to_codes: empty quantizer");
  MINIDL_CHECK(n >= 0 && (n == 0 || (x != nullptr && out != nullptr)), "quantize_to_codes: bad arguments (n ", n, ")");
  return quantize_rows(q, x, 1, n, out, n);
}

int64_t quantize_to_codes_bordered(const CodeThresholds& q, const float* x, int64_t h, int64_t w, int64_t c,
                                   int64_t pad, uint8_t* out) {
  MINIDL_CHECK(!q.empty(), "quantize_to_codes_bordered: empty quantizer");
  MINIDL_CHECK(h > 0 && w > 0 && c > 0 && pad >= 0 && x != nullptr && out != nullptr,
               "quantize_to_codes_bordered: bad arguments (", h, " x ", w, " x ", c, ", border ", pad, ")");
  const int64_t row = (w + 2 * pad) * c;
  return quantize_rows(q, x, h, w * c, out + pad * row + pad * c, row);
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
  PackedInt8Weights w = pack_int8_weights(out_c, depth, rsc.data(), depth, max_input);
  w.sign_bits_ = detail::conv_sign_bits(out_c, in_c, kernel, rsc, max_input);
  if (!w.sign_bits_.empty()) {
    w.conv_kernel_ = kernel;
    w.conv_in_c_ = in_c;
  }
  return w;
}

// ---- epilogue ----

std::vector<float> epilogue_factors(const IntConvEpilogue& e, int64_t out_c) {
  MINIDL_CHECK(out_c >= 0 && (out_c == 0 || e.scale != nullptr), "epilogue_factors: no scale");
  std::vector<float> k(static_cast<size_t>(out_c));
  for (int64_t o = 0; o < out_c; ++o)
    k[static_cast<size_t>(o)] = static_cast<float>(e.unit * static_cast<double>(e.scale[o]));
  return k;
}

namespace detail {

namespace {

// The fused AVX2 epilogue runs for channel counts that are whole vectors and consumers whose books fit its shuffle.
bool avx2_epilogue_fits(const IntConvEpilogue& e, int64_t out_c) {
  if (epilogue_codes_rows_avx2(out_c) == 0) return false;
  bool any = false;
  for (const CodeThresholds* q : e.quant) {
    if (q && q->book().size() > static_cast<size_t>(kQuantizeAvx2MaxBook)) return false;
    any = any || q != nullptr;
  }
  return any;
}

}  // namespace

EpiloguePlan::EpiloguePlan(const IntConvEpilogue& e, int64_t out_c)
    : factors(epilogue_factors(e, out_c)),
      avx512(cpu::isa_enabled(cpu::CpuIsa::Avx512) && avx512_epilogue_fits(e)),
      avx2_codes(!avx512 && cpu::isa_enabled(cpu::CpuIsa::Avx2) && avx2_epilogue_fits(e, out_c)) {
  if (avx512)
    for (const CodeThresholds* q : e.quant)
      if (q) searches.push_back(make_threshold_search(*q));
}
EpiloguePlan::~EpiloguePlan() = default;

int64_t int_conv_epilogue(const IntConvEpilogue& e, const EpiloguePlan& plan, int64_t out_c, int64_t p0, int64_t rows,
                          const int32_t* acc, float* scratch) {
  const float* k = plan.factors.data();
  // AVX-512 with books of <= 16 codes: values and codes in one pass, in registers.
  if (plan.avx512) return int_conv_epilogue_avx512(e, k, plan.searches.data(), out_c, p0, rows, acc);
  int64_t nan = 0;
  // AVX2 with books of <= 16 codes: values and codes in one pass for the rows that fill whole 32-code stores, the
  // rest (an odd last row of 16 channels) below.
  if (plan.avx2_codes) {
    const int64_t quantum = detail::epilogue_codes_rows_avx2(out_c), whole = rows / quantum * quantum;
    if (whole > 0) nan += detail::epilogue_codes_avx2(e, k, out_c, p0, whole, acc);
    p0 += whole;
    acc += whole * out_c;
    rows -= whole;
    if (rows == 0) return nan;
  }
  // The values go straight to `out` when there is one (the quantizers read them back from cache), else to scratch.
  float* dst = e.out ? e.out + p0 * out_c : scratch;
  if (cpu::isa_enabled(cpu::CpuIsa::Avx2)) {
    epilogue_values_avx2(e, k, out_c, p0, rows, acc, dst);
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      const float* res = e.residual ? e.residual + (p0 + r) * out_c : nullptr;
      for (int64_t o = 0; o < out_c; ++o) {
        // multiply, then add: two roundings (the x86-64 baseline target has no FMA to contract them into)
        float v = static_cast<float>(acc[r * out_c + o]) * k[o] + e.shift[o];
        if (res) v += res[o];
        dst[r * out_c + o] = e.relu ? std::max(v, 0.0f) : v;
      }
    }
  }
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
  std::vector<uint8_t> codes[IntConvEpilogue::kMaxConsumers];  // a tile's codes before scatter_codes
  std::vector<int32_t> acc;
  std::vector<float> f;
  std::vector<const uint8_t*> starts;  // segment_rows' row starts
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

void im2col_rows(const IntConvGeometry& g, const uint8_t* codes, int64_t p0, int64_t rows, uint8_t* a) {
  detail::im2col_rows_with(g, codes, p0, rows, a, PortableCopies(g));
}

// The in-place GEMM's rows (gemm_u8s8_s32_segments): for output pixel p0 + i, where its first kernel row starts,
// the next kernel rows following every row_codes = in_w * in_c bytes (one image row of NHWC codes apart). A window
// inside the image is read in place. One that leaves the image is assembled in `border` with the same spacing:
// kernel row r of the j-th such pixel at border + (j / per_group) * kernel * row_codes + r * row_codes +
// (j % per_group) * kc, so per_group = row_codes / kc (>= 1: in_w >= kernel) pixels share a group without their
// rows overlapping; codes outside the image are 0. The caller sizes border for rows such pixels
// (border_bytes()).
struct SegmentLayout {
  int64_t row_codes, kc, per_group, group_bytes;
  explicit SegmentLayout(const IntConvGeometry& g)
      : row_codes(g.in_w * g.in_c),
        kc(g.kernel * g.in_c),
        per_group(row_codes / kc),
        group_bytes(g.kernel * row_codes) {}
  int64_t border_bytes(int64_t rows) const { return (rows + per_group - 1) / per_group * group_bytes; }
};

void segment_rows(const IntConvGeometry& g, const SegmentLayout& L, const uint8_t* codes, int64_t p0, int64_t rows,
                  uint8_t* border, const uint8_t** starts) {
  const int64_t OW = g.out_w(), C = g.in_c, k = g.kernel, step = g.stride * C;
  // output columns [ow_lo, ow_hi) have their window inside the image's width (a padded buffer's geometry has a
  // negative padding, so the bound can pass the last column)
  const int64_t ow_lo = (g.padding + g.stride - 1) / g.stride;
  const int64_t ow_hi = std::min(OW, (g.in_w - k + g.padding) / g.stride + 1);
  detail::OutputCursor pos(p0, g.out_h(), OW);
  // the next border window's place: slot `in_group` of the group at `group` (no division per window)
  uint8_t* group = border;
  int64_t in_group = 0;
  for (int64_t i = 0; i < rows;) {
    const int64_t ow = pos.ow, ih0 = pos.oh * g.stride - g.padding, iw0 = ow * g.stride - g.padding;
    const uint8_t* image = codes + pos.n * g.in_h * L.row_codes;
    const bool inside_h = ih0 >= 0 && ih0 + k <= g.in_h;
    int64_t run = 1;
    if (inside_h && ow >= ow_lo && ow < ow_hi) {  // most pixels: a run of windows inside the image, step bytes apart
      run = std::min(rows - i, ow_hi - ow);
      const uint8_t* at = image + ih0 * L.row_codes + iw0 * C;
      for (int64_t j = 0; j < run; ++j) starts[i + j] = at + j * step;
    } else {
      uint8_t* at = group + in_group * L.kc;
      if (++in_group == L.per_group) {
        in_group = 0;
        group += L.group_bytes;
      }
      const bool inside_w = ow >= ow_lo && ow < ow_hi;
      const PortableCopies copies(g);
      for (int64_t r = 0; r < k; ++r)
        detail::window_row_with(g, image, ih0, iw0, inside_w, r, at + r * L.row_codes, copies);
      starts[i] = at;
    }
    i += run;
    pos.advance(run);
  }
}

// The geometry of the buffer `g` reads: with a border of in_pad code-0 pixels the buffer is an image of
// (in_h + 2 in_pad) x (in_w + 2 in_pad) pixels convolved with padding - in_pad (negative when the border is wider
// than the padding: the windows start inside it). Same output size, same windows, the same codes in them.
IntConvGeometry buffer_geometry(const IntConvGeometry& g) {
  IntConvGeometry b = g;
  b.in_h += 2 * g.in_pad;
  b.in_w += 2 * g.in_pad;
  b.padding -= g.in_pad;
  b.in_pad = 0;
  return b;
}

// Copies `rows` output pixels' codes, starting at pixel p0 (rows * out_c contiguous codes in `from`), to their places
// in a buffer with a border of `pad` pixels around each out_h x out_w image.
void scatter_codes(const uint8_t* from, int64_t p0, int64_t rows, int64_t out_h, int64_t out_w, int64_t out_c,
                   int64_t pad, uint8_t* to) {
  const int64_t pw = out_w + 2 * pad;
  int64_t n = p0 / (out_h * out_w), oh = (p0 / out_w) % out_h, ow = p0 % out_w;
  for (int64_t i = 0; i < rows;) {
    const int64_t run = std::min(rows - i, out_w - ow);
    std::memcpy(to + ((n * (out_h + 2 * pad) + oh + pad) * pw + ow + pad) * out_c, from + i * out_c,
                static_cast<size_t>(run * out_c));
    i += run;
    ow = 0;
    if (++oh == out_h) {
      oh = 0;
      ++n;
    }
  }
}

}  // namespace

void zero_codes_border(uint8_t* codes, int64_t batch, int64_t h, int64_t w, int64_t c, int64_t pad) {
  MINIDL_CHECK(codes != nullptr && batch > 0 && h > 0 && w > 0 && c > 0 && pad >= 0,
               "zero_codes_border: bad arguments (", batch, " x ", h, " x ", w, " x ", c, ", border ", pad, ")");
  if (pad == 0) return;
  const int64_t row = (w + 2 * pad) * c, side = pad * c;
  for (int64_t n = 0; n < batch; ++n) {
    uint8_t* image = codes + n * (h + 2 * pad) * row;
    // the rows above with the first row's left border, then each row's right border with the next row's left one
    // (adjacent bytes), then the last right border with the rows below: 2 + h - 1 runs instead of 2 + 2 h
    zero_codes(image, pad * row + side);
    for (int64_t y = pad; y + 1 < pad + h; ++y) zero_codes(image + y * row + (pad + w) * c, 2 * side);
    zero_codes(image + (pad + h - 1) * row + (pad + w) * c, side + pad * row);
  }
}

int64_t int_conv2d_nhwc(const IntConvGeometry& given, const uint8_t* codes, const PackedInt8Weights& w,
                        const IntConvEpilogue& e) {
  MINIDL_CHECK(given.batch > 0 && given.in_h > 0 && given.in_w > 0 && given.in_c > 0 && given.out_c > 0 &&
                   given.kernel > 0 && given.stride > 0 && given.padding >= 0 && given.in_pad >= 0 &&
                   e.codes_pad >= 0 && given.out_h() > 0 && given.out_w() > 0,
               "int_conv2d_nhwc: invalid geometry (batch ", given.batch, ", ", given.in_h, "x", given.in_w, "x",
               given.in_c, " -> ", given.out_c, ", kernel ", given.kernel, ", stride ", given.stride, ", padding ",
               given.padding, ", input border ", given.in_pad, ", output border ", e.codes_pad, ")");
  // From here on the convolution walks the buffer as an unpadded image (buffer_geometry).
  const IntConvGeometry g = buffer_geometry(given);
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
  // groups of 4 codes) and the image is at least as wide as the kernel (SegmentLayout): no im2col copy for pixels
  // inside the image.
  const SegmentLayout layout(g);
  const bool in_place = !pointwise && g.in_w >= g.kernel && gemm_u8s8_s32_segments_runnable(w, layout.kc);

  // Binary weights with 1- or 2-bit input codes: the bit-serial kernels (int_conv_bitserial.h) instead of the GEMM.
  const bool bitserial = bitserial_conv_runnable(given, w);
  const detail::EpiloguePlan plan(e, N);
  int64_t nan = 0;
#pragma omp parallel num_threads(nthreads) reduction(+ : nan) if (nthreads > 1)
  {
    // contiguous shares of the tiles that differ by at most one (as schedule(static) makes them), written out so
    // that a thread knows its share first: it turns the input rows its own tiles read into bit planes (its own copy:
    // no barrier, and the rows stay in its core's cache)
    const int64_t team = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t t_begin = tiles * id / team, t_end = tiles * (id + 1) / team;
    static thread_local detail::BitPlanes planes;
    if (bitserial && t_begin < t_end)
      detail::codes_to_bit_planes(g, codes, w.max_input() > 1 ? 2 : 1, t_begin * tile, std::min(M, t_end * tile),
                                  planes);
    for (int64_t t = t_begin; t < t_end; ++t) {
      const int64_t p0 = t * tile, rows = std::min(tile, M - p0);
      TileScratch& s = tile_scratch();
      if (s.acc.size() < static_cast<size_t>(tile * N)) s.acc.resize(static_cast<size_t>(tile * N));
      if (s.f.size() < static_cast<size_t>(tile * N)) s.f.resize(static_cast<size_t>(tile * N));
      const uint8_t* a = codes + p0 * K;
      if (bitserial) {
        detail::bitserial_conv_rows(g, planes, w, p0, rows, s.acc.data());
      } else if (in_place) {
        const auto need = static_cast<size_t>(layout.border_bytes(tile));
        if (s.a.size() < need) s.a.resize(need);
        if (s.starts.size() < static_cast<size_t>(tile)) s.starts.resize(static_cast<size_t>(tile));
        segment_rows(g, layout, codes, p0, rows, s.a.data(), s.starts.data());
        gemm_u8s8_s32_segments(rows, s.starts.data(), g.kernel, layout.kc, layout.row_codes, w, s.acc.data(), N);
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
      if (!in_place && !bitserial) gemm_u8s8_s32(rows, a, K, w, s.acc.data(), N);
      if (e.codes_pad == 0) {
        nan += detail::int_conv_epilogue(e, plan, N, p0, rows, s.acc.data(), s.f.data());
        continue;
      }
      // Bordered code buffers: the tile's codes go to scratch (the epilogue writes rows * N contiguous codes), then
      // row by row to their places.
      IntConvEpilogue tile_e = e;
      if (e.out) tile_e.out = e.out + p0 * N;
      if (e.residual) tile_e.residual = e.residual + p0 * N;
      for (int i = 0; i < IntConvEpilogue::kMaxConsumers; ++i)
        if (e.codes[i]) {
          if (s.codes[i].size() < static_cast<size_t>(tile * N)) s.codes[i].resize(static_cast<size_t>(tile * N));
          tile_e.codes[i] = s.codes[i].data();
        }
      nan += detail::int_conv_epilogue(tile_e, plan, N, 0, rows, s.acc.data(), s.f.data());
      for (int i = 0; i < IntConvEpilogue::kMaxConsumers; ++i)
        if (e.codes[i]) scatter_codes(s.codes[i].data(), p0, rows, g.out_h(), g.out_w(), N, e.codes_pad, e.codes[i]);
    }
  }
  return nan;
}

}  // namespace minidl::backends
