// backends::int_conv2d_nhwc and its quantizer (issue 18's packed convolutions): every geometry against a direct
// loop over the definition in int_conv.h (exact sums, the epilogue's float arithmetic, the thresholds' codes), at
// every ISA level the host runs (scalar and AVX2 quantizer / epilogue; each with its GEMM kernel), on 1 and 2
// threads; the threshold quantizer's edge values (thresholds themselves, their neighbours, -0, inf, NaN).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "backends/int_conv.h"
#include "core/cpu_isa.h"
#include "core/error.h"
#include "core/threads.h"
#include "test_scopes.h"

using namespace minidl;
using backends::CodeThresholds;
using cpu::CpuIsa;
using minidl::test::CapGuard;
using minidl::test::ThreadsGuard;

namespace {

std::vector<CpuIsa> runnable_caps() {
  std::vector<CpuIsa> caps{CpuIsa::Baseline};
  if (cpu::host_isa() >= CpuIsa::Avx2) caps.push_back(CpuIsa::Avx2);
  if (cpu::host_isa() >= CpuIsa::Avx512) caps.push_back(CpuIsa::Avx512);
  return caps;
}

// An APoT-like 4-bit book (non-contiguous codes) over uneven thresholds.
CodeThresholds apot_like() {
  return CodeThresholds({0.05f, 0.15f, 0.25f, 0.35f, 0.5f, 0.7f, 0.9f, 1.1f, 1.3f, 1.6f, 2.0f, 2.4f, 2.8f, 3.2f, 3.6f},
                        {0, 1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 36});
}
// A uniform 8-bit quantizer: 255 thresholds (the scalar path of quantize_to_codes).
CodeThresholds uniform8() {
  std::vector<float> t;
  std::vector<uint8_t> b{0};
  for (int c = 1; c <= 255; ++c) {
    t.push_back((static_cast<float>(c) - 0.5f) / 64.0f);
    b.push_back(static_cast<uint8_t>(c));
  }
  return CodeThresholds(t, b);
}

struct Case {
  int64_t batch, h, w, in_c, out_c, kernel, stride, padding;
};

// The definition of int_conv.h, in plain loops (NCHW-free: NHWC codes, (o, r, s, c) weights).
void reference(const Case& g, const std::vector<uint8_t>& codes, const std::vector<int8_t>& w_rsc,
               const backends::IntConvEpilogue& e, std::vector<float>& out, std::vector<uint8_t> (&cons)[2]) {
  const int64_t OH = (g.h + 2 * g.padding - g.kernel) / g.stride + 1,
                OW = (g.w + 2 * g.padding - g.kernel) / g.stride + 1;
  const int64_t depth = g.kernel * g.kernel * g.in_c;
  out.assign(static_cast<size_t>(g.batch * OH * OW * g.out_c), 0.0f);
  for (auto& c : cons) c.assign(out.size(), 0);
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t p = (n * OH + oh) * OW + ow;
        for (int64_t o = 0; o < g.out_c; ++o) {
          int64_t sum = 0;
          for (int64_t r = 0; r < g.kernel; ++r)
            for (int64_t s = 0; s < g.kernel; ++s) {
              const int64_t ih = oh * g.stride - g.padding + r, iw = ow * g.stride - g.padding + s;
              if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
              for (int64_t c = 0; c < g.in_c; ++c)
                sum += int64_t{codes[static_cast<size_t>(((n * g.h + ih) * g.w + iw) * g.in_c + c)]} *
                       w_rsc[static_cast<size_t>(o * depth + (r * g.kernel + s) * g.in_c + c)];
            }
          const size_t i = static_cast<size_t>(p * g.out_c + o);
          // int_conv.h's definition: float32(sum) times the channel's factor float32(unit * scale), then + shift
          const auto k = static_cast<float>(e.unit * static_cast<double>(e.scale[o]));
          float v = static_cast<float>(sum) * k;
          v += e.shift[o];
          if (e.residual) v += e.residual[i];
          if (e.relu) v = std::max(v, 0.0f);
          out[i] = v;
          for (int k = 0; k < 2; ++k)
            if (e.quant[k]) cons[k][i] = e.quant[k]->code(v);
        }
      }
}

// `codes` (batch images of h x w x c) inside a border of `pad` pixels filled with `fill`.
std::vector<uint8_t> with_border(const std::vector<uint8_t>& codes, int64_t batch, int64_t h, int64_t w, int64_t c,
                                 int64_t pad, uint8_t fill) {
  std::vector<uint8_t> b(static_cast<size_t>(backends::padded_codes_size(batch, h, w, c, pad)), fill);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t y = 0; y < h; ++y)
      std::copy_n(codes.begin() + ((n * h + y) * w) * c, w * c,
                  b.begin() + ((n * (h + 2 * pad) + y + pad) * (w + 2 * pad) + pad) * c);
  return b;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
  return true;
}

}  // namespace

TEST_CASE("int conv: thresholds give the book's codes, the AVX2 quantizer equals the scalar one on edge values") {
  CapGuard guard;
  const CodeThresholds q = apot_like();
  std::vector<float> x{0.0f,
                       -0.0f,
                       -1.0f,
                       1e30f,
                       -1e30f,
                       std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity(),
                       std::numeric_limits<float>::quiet_NaN()};
  for (float t : q.thresholds()) {
    x.push_back(t);
    x.push_back(std::nextafter(t, -1e30f));
    x.push_back(std::nextafter(t, 1e30f));
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-0.5f, 4.0f);
  for (int i = 0; i < 1000; ++i) x.push_back(u(rng));  // 1000 + 53 values: vector body and a tail
  // the definition: the count of thresholds <= x, in the book; NaN reaches none
  CHECK(q.code(0.05f) == 1);
  CHECK(q.code(std::nextafter(0.05f, 0.0f)) == 0);
  CHECK(q.code(3.6f) == 36);
  CHECK(q.code(std::numeric_limits<float>::quiet_NaN()) == 0);
  CHECK(q.code(-std::numeric_limits<float>::infinity()) == 0);
  for (const CodeThresholds& qq : {q, uniform8()})
    for (CpuIsa cap : runnable_caps()) {
      cpu::set_cpu_isa_cap(cap);
      std::vector<uint8_t> got(x.size(), 99);
      const int64_t nan = backends::quantize_to_codes(qq, x.data(), static_cast<int64_t>(x.size()), got.data());
      CHECK(nan == 1);
      int64_t mism = 0;
      for (size_t i = 0; i < x.size(); ++i) mism += got[i] != qq.code(x[i]);
      CHECK(mism == 0);
    }
  CHECK_THROWS_WITH_AS(CodeThresholds({1.0f, 1.0f}, {0, 1, 2}), doctest::Contains("ascend"), Error);
  CHECK_THROWS_WITH_AS(CodeThresholds({1.0f}, {0}), doctest::Contains("codes"), Error);
  CHECK_THROWS_WITH_AS(CodeThresholds({std::numeric_limits<float>::infinity()}, {0, 1}), doctest::Contains("finite"),
                       Error);
}

TEST_CASE("int conv: every geometry equals the definition, bit for bit, at every ISA level, thread count and border") {
  CapGuard guard;
  const Case cases[] = {
      {2, 9, 9, 16, 16, 3, 1, 1},    // ResNet-20 stage 1 shape (small map)
      {3, 8, 7, 16, 32, 3, 2, 1},    // strided, odd width
      {2, 8, 8, 32, 64, 1, 2, 0},    // 1x1 strided shortcut
      {1, 5, 6, 7, 5, 3, 1, 1},      // channels off every block (7 in, 5 out)
      {2, 6, 6, 3, 17, 3, 1, 0},     // no padding, 17 outputs (a partial column block)
      {1, 4, 4, 24, 16, 1, 1, 0},    // pointwise: the codes are the GEMM's rows
      {130, 3, 3, 16, 16, 3, 1, 1},  // many images: several tiles, tile edges inside images
      {3, 2, 2, 16, 16, 3, 1, 1},    // narrower than the kernel: the in-place GEMM declines (im2col)
      {2, 6, 5, 16, 32, 3, 1, 2},    // padding 2: windows reaching two columns / rows past the image
      {2, 7, 7, 64, 64, 3, 1, 1},    // ResNet-20 stage 3: kernel rows of 192 codes (border windows of 3 zmm)
      {2, 9, 8, 32, 32, 3, 2, 1},    // 96-code kernel rows, strided
  };
  const CodeThresholds qa = apot_like(), q8 = uniform8();
  std::mt19937 rng(11);
  for (const Case& g : cases) {
    CAPTURE(g.batch);
    CAPTURE(g.in_c);
    CAPTURE(g.out_c);
    CAPTURE(g.kernel);
    CAPTURE(g.stride);
    const int64_t OH = (g.h + 2 * g.padding - g.kernel) / g.stride + 1,
                  OW = (g.w + 2 * g.padding - g.kernel) / g.stride + 1;
    const int64_t depth = g.kernel * g.kernel * g.in_c, outs = g.batch * OH * OW * g.out_c;
    std::vector<uint8_t> codes(static_cast<size_t>(g.batch * g.h * g.w * g.in_c));
    for (auto& c : codes) c = static_cast<uint8_t>(rng() % 16);  // 4-bit codes (max_input 15)
    std::vector<int8_t> oihw(static_cast<size_t>(g.out_c * depth)), rsc(oihw.size());
    for (auto& v : oihw) v = static_cast<int8_t>(static_cast<int>(rng() % 17) - 8);
    for (int64_t o = 0; o < g.out_c; ++o)
      for (int64_t c = 0; c < g.in_c; ++c)
        for (int64_t r = 0; r < g.kernel; ++r)
          for (int64_t s = 0; s < g.kernel; ++s)
            rsc[static_cast<size_t>(o * depth + (r * g.kernel + s) * g.in_c + c)] =
                oihw[static_cast<size_t>(((o * g.in_c + c) * g.kernel + r) * g.kernel + s)];
    const auto w = backends::pack_conv_weights_rsc(g.out_c, g.in_c, g.kernel, oihw.data(), 15);
    std::vector<float> scale(static_cast<size_t>(g.out_c)), shift(scale.size()), residual(static_cast<size_t>(outs));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (size_t o = 0; o < scale.size(); ++o) {
      scale[o] = 0.5f + 0.5f * std::abs(u(rng));
      shift[o] = u(rng);
    }
    for (auto& r : residual) r = u(rng);
    for (int variant = 0; variant < 3; ++variant) {
      backends::IntConvEpilogue e;
      e.unit = 0.0123456789;
      e.scale = scale.data();
      e.shift = shift.data();
      e.relu = variant != 1;
      e.residual = variant == 2 ? residual.data() : nullptr;
      std::vector<float> out_ref;
      std::vector<uint8_t> cons_ref[2];
      std::vector<float> out(static_cast<size_t>(outs));
      e.out = variant == 1 ? nullptr : out.data();  // variant 1: codes only (conv1 -> conv2 in a block)
      e.quant[0] = &qa;
      if (variant == 2) e.quant[1] = &q8;
      std::vector<uint8_t> unused(static_cast<size_t>(outs));  // reference() only reads which consumers exist
      e.codes[0] = unused.data();
      if (variant == 2) e.codes[1] = unused.data();
      reference(g, codes, rsc, e, out_ref, cons_ref);
      // Borders (IntConvGeometry::in_pad, IntConvEpilogue::codes_pad): 1 and 2 hold every window of padding <= 1
      // (2 for the padding-2 case), 1 with padding 2 leaves windows that still cross the buffer's edge. The input's
      // border is zeros (the contract); the output's is filled with 99, which the convolution must leave alone.
      for (int64_t pad : {0, 1, 2}) {
        const std::vector<uint8_t> in_codes = with_border(codes, g.batch, g.h, g.w, g.in_c, pad, 0);
        const std::vector<uint8_t> want0 = with_border(cons_ref[0], g.batch, OH, OW, g.out_c, pad, 99);
        const std::vector<uint8_t> want1 = with_border(cons_ref[1], g.batch, OH, OW, g.out_c, pad, 99);
        std::vector<uint8_t> b0(want0.size()), b1(want1.size());
        e.codes[0] = b0.data();
        if (variant == 2) e.codes[1] = b1.data();
        e.codes_pad = pad;
        for (CpuIsa cap : runnable_caps())
          for (int threads : {1, 2}) {
            CAPTURE(variant);
            CAPTURE(threads);
            CAPTURE(pad);
            INFO("cap " << std::string(cpu::isa_name(cap)));
            cpu::set_cpu_isa_cap(cap);
            ThreadsGuard tg(threads);
            std::fill(out.begin(), out.end(), -7.0f);
            std::fill(b0.begin(), b0.end(), uint8_t{99});
            std::fill(b1.begin(), b1.end(), uint8_t{99});
            backends::IntConvGeometry geo{g.batch, g.h, g.w, g.in_c, g.out_c, g.kernel, g.stride, g.padding, pad};
            CHECK(backends::int_conv2d_nhwc(geo, in_codes.data(), w, e) == 0);
            if (e.out) CHECK(same_bits(out, out_ref));
            CHECK(b0 == want0);
            if (e.quant[1]) CHECK(b1 == want1);
          }
      }
    }
  }
}

TEST_CASE("int conv: NaN reaching a quantizer is counted, bad arguments throw") {
  const CodeThresholds q = apot_like();
  const std::vector<uint8_t> codes(2 * 2 * 4, 1);
  const std::vector<int8_t> oihw(4 * 4, 1);
  const auto w = backends::pack_conv_weights_rsc(4, 4, 1, oihw.data());
  std::vector<float> scale(4, 1.0f), shift(4, 0.0f), residual(16, 0.0f), out(16);
  std::vector<uint8_t> c(16);
  residual[5] = std::numeric_limits<float>::quiet_NaN();
  backends::IntConvEpilogue e;
  e.unit = 1.0;
  e.scale = scale.data();
  e.shift = shift.data();
  e.residual = residual.data();
  e.out = out.data();
  e.quant[0] = &q;
  e.codes[0] = c.data();
  const backends::IntConvGeometry g{1, 2, 2, 4, 4, 1, 1, 0};
  CHECK(backends::int_conv2d_nhwc(g, codes.data(), w, e) == 1);
  CHECK(std::isnan(out[5]));
  // weights of another shape, a consumer without its buffer, an epilogue that writes nothing
  const auto w3 = backends::pack_conv_weights_rsc(4, 4, 3, std::vector<int8_t>(4 * 4 * 9, 1).data());
  CHECK_THROWS_WITH_AS(backends::int_conv2d_nhwc(g, codes.data(), w3, e), doctest::Contains("weights"), Error);
  backends::IntConvEpilogue bad = e;
  bad.codes[0] = nullptr;
  CHECK_THROWS_WITH_AS(backends::int_conv2d_nhwc(g, codes.data(), w, bad), doctest::Contains("consumer"), Error);
  backends::IntConvEpilogue none = e;
  none.out = nullptr;
  none.quant[0] = nullptr;
  none.codes[0] = nullptr;
  CHECK_THROWS_WITH_AS(backends::int_conv2d_nhwc(g, codes.data(), w, none), doctest::Contains("writes nothing"), Error);
  backends::IntConvGeometry tiny = g;
  tiny.kernel = 3;  // a 3x3 kernel on a 2x2 map without padding: no output
  CHECK_THROWS_WITH_AS(backends::int_conv2d_nhwc(tiny, codes.data(), w3, e), doctest::Contains("geometry"), Error);
  backends::IntConvGeometry negative = g;
  negative.in_pad = -1;
  CHECK_THROWS_WITH_AS(backends::int_conv2d_nhwc(negative, codes.data(), w, e), doctest::Contains("border"), Error);
  backends::IntConvEpilogue negative_out = e;
  negative_out.codes_pad = -1;
  CHECK_THROWS_WITH_AS(backends::int_conv2d_nhwc(g, codes.data(), w, negative_out), doctest::Contains("border"), Error);
}

TEST_CASE("int conv: quantize_to_codes_bordered writes the interior only, at every ISA level") {
  CapGuard guard;
  const int64_t H = 3, W = 5, C = 7;  // rows of 35 values: a whole zmm group and a masked tail
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-0.5f, 4.0f);
  std::vector<float> x(static_cast<size_t>(H * W * C));
  for (auto& v : x) v = u(rng);
  x[17] = std::numeric_limits<float>::quiet_NaN();
  for (const CodeThresholds& q : {apot_like(), uniform8()}) {
    std::vector<uint8_t> plain(x.size());
    for (size_t i = 0; i < x.size(); ++i) plain[i] = q.code(x[i]);
    for (int64_t pad : {0, 1, 2}) {
      const std::vector<uint8_t> want = with_border(plain, 1, H, W, C, pad, 99);
      for (CpuIsa cap : runnable_caps()) {
        CAPTURE(pad);
        INFO("cap " << std::string(cpu::isa_name(cap)));
        cpu::set_cpu_isa_cap(cap);
        std::vector<uint8_t> got(want.size(), 99);
        CHECK(backends::quantize_to_codes_bordered(q, x.data(), H, W, C, pad, got.data()) == 1);
        CHECK(got == want);
      }
    }
  }
}

TEST_CASE("int conv: zero_codes_border clears the border of every image and nothing else") {
  const int64_t N = 2, H = 3, W = 4, C = 5;
  for (int64_t pad : {0, 1, 2}) {
    std::vector<uint8_t> b(static_cast<size_t>(backends::padded_codes_size(N, H, W, C, pad)), 7);
    backends::zero_codes_border(b.data(), N, H, W, C, pad);
    const std::vector<uint8_t> want =
        with_border(std::vector<uint8_t>(static_cast<size_t>(N * H * W * C), 7), N, H, W, C, pad, 0);
    CHECK(b == want);
  }
  uint8_t one = 0;
  CHECK_THROWS_WITH_AS(backends::zero_codes_border(&one, 1, 1, 1, 1, -1), doctest::Contains("border"), Error);
}
