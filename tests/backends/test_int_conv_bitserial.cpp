// The bit-serial convolution for binary weights (backends/int_conv_bitserial.h): which weights get sign bits, and
// int_conv2d_nhwc through it against a plain loop over the definition (exact sums) and against the same call with
// the bit-serial path switched off (the GEMM kernels: same values and codes, bit for bit), for 1- and 2-bit inputs,
// the ResNet shapes, strides 1 and 2, 1x1 kernels, widths that leave partial pixel blocks, borders of 1 and 2, on 1
// and 2 threads. Skipped where the path cannot run (no AVX-512 VPOPCNTDQ, or MINIDL_CPU_ISA below avx512).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "backends/int_conv.h"
#include "backends/int_conv_bitserial.h"
#include "core/cpu_isa.h"
#include "test_scopes.h"
#include "test_skip.h"

using namespace minidl;
using minidl::test::ThreadsGuard;

namespace {

struct ConvShape {
  int64_t batch, h, w, in_c, out_c, kernel, stride, padding;
};

// OIHW codes of -1 / +1 (and `zeros` zeros at random places).
std::vector<int8_t> binary_weights(const ConvShape& g, std::mt19937& rng, int zeros = 0) {
  std::vector<int8_t> w(static_cast<size_t>(g.out_c * g.in_c * g.kernel * g.kernel));
  for (auto& v : w) v = (rng() & 1u) != 0 ? 1 : -1;
  for (int z = 0; z < zeros; ++z) w[rng() % w.size()] = 0;
  return w;
}

// The exact sums of the convolution of NHWC codes (no border) with OIHW weights, zero padding: NHWC int64.
std::vector<int64_t> definition(const ConvShape& g, const std::vector<uint8_t>& codes,
                                const std::vector<int8_t>& oihw) {
  const int64_t OH = (g.h + 2 * g.padding - g.kernel) / g.stride + 1,
                OW = (g.w + 2 * g.padding - g.kernel) / g.stride + 1;
  std::vector<int64_t> sums(static_cast<size_t>(g.batch * OH * OW * g.out_c), 0);
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t o = 0; o < g.out_c; ++o) {
          int64_t sum = 0;
          for (int64_t c = 0; c < g.in_c; ++c)
            for (int64_t r = 0; r < g.kernel; ++r)
              for (int64_t s = 0; s < g.kernel; ++s) {
                const int64_t ih = oh * g.stride - g.padding + r, iw = ow * g.stride - g.padding + s;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                sum += int64_t{codes[static_cast<size_t>(((n * g.h + ih) * g.w + iw) * g.in_c + c)]} *
                       oihw[static_cast<size_t>(((o * g.in_c + c) * g.kernel + r) * g.kernel + s)];
              }
          sums[static_cast<size_t>(((n * OH + oh) * OW + ow) * g.out_c + o)] = sum;
        }
  return sums;
}

std::vector<uint8_t> with_border(const std::vector<uint8_t>& codes, const ConvShape& g, int64_t pad) {
  std::vector<uint8_t> b(static_cast<size_t>(backends::padded_codes_size(g.batch, g.h, g.w, g.in_c, pad)), 0);
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t y = 0; y < g.h; ++y)
      std::memcpy(b.data() + ((n * (g.h + 2 * pad) + y + pad) * (g.w + 2 * pad) + pad) * g.in_c,
                  codes.data() + ((n * g.h + y) * g.w) * g.in_c, static_cast<size_t>(g.w * g.in_c));
  return b;
}

// Restores the bit-serial switch.
struct BitserialGuard {
  bool saved = backends::bitserial_conv_enabled();
  ~BitserialGuard() { backends::set_bitserial_conv_enabled(saved); }
};

}  // namespace

TEST_CASE("int conv: binary weights get sign bits only when every code is -1 or +1 and the shape fits") {
  std::mt19937 rng(3);
  const ConvShape g{1, 4, 4, 16, 32, 3, 1, 1};
  const std::vector<int8_t> w = binary_weights(g, rng);
  CHECK(!backends::pack_conv_weights_rsc(32, 16, 3, w.data(), 3).conv_sign_bits().empty());
  CHECK(!backends::pack_conv_weights_rsc(32, 16, 3, w.data(), 1).conv_sign_bits().empty());
  CHECK(backends::pack_conv_weights_rsc(32, 16, 3, w.data(), 4).conv_sign_bits().empty());  // 3-bit inputs
  const std::vector<int8_t> with_zero = binary_weights(g, rng, 1);
  CHECK(backends::pack_conv_weights_rsc(32, 16, 3, with_zero.data(), 3).conv_sign_bits().empty());
  std::vector<int8_t> twos = w;
  twos[5] = 2;
  CHECK(backends::pack_conv_weights_rsc(32, 16, 3, twos.data(), 3).conv_sign_bits().empty());
  CHECK(backends::pack_conv_weights_rsc(16, 32, 3, w.data(), 3).conv_sign_bits().size() == 16 * 3 * 3);
  CHECK(backends::pack_conv_weights_rsc(24, 16, 3, w.data(), 3).conv_sign_bits().empty());  // 24 outputs
  CHECK(backends::pack_conv_weights_rsc(32, 8, 3, w.data(), 3).conv_sign_bits().empty());   // 8 inputs
  // Layout: channel o's first dword of kernel row 0 holds the signs of positions 0..31 ((s, c) order).
  std::vector<int8_t> minus(static_cast<size_t>(16 * 16 * 9), -1);
  minus[((5 * 16 + 3) * 3 + 0) * 3 + 1] = 1;  // o 5, c 3, r 0, s 1: position 1 * 16 + 3 = 19 of row 0
  const auto packed = backends::pack_conv_weights_rsc(16, 16, 3, minus.data(), 3);
  REQUIRE(packed.conv_sign_bits().size() == 16 * 3 * 2);
  for (size_t i = 0; i < packed.conv_sign_bits().size(); ++i)
    CHECK(packed.conv_sign_bits()[i] == (i == 5 ? uint32_t{1} << 19 : 0u));
}

TEST_CASE("int conv: the bit-serial path gives the GEMM's sums, values and codes, bit for bit") {
  if (!backends::host_has_avx512_vpopcntdq()) MINIDL_SKIP("the host has no AVX-512 VPOPCNTDQ");
  if (!cpu::isa_enabled(cpu::CpuIsa::Avx512))
    MINIDL_SKIP("MINIDL_CPU_ISA caps the kernels below avx512 (" << cpu::isa_name(cpu::active_isa()) << ")");
  BitserialGuard guard;
  const ConvShape shapes[] = {
      {2, 28, 28, 16, 16, 3, 1, 1},   // ResNet-20 stage 1 on Fashion-MNIST: rows of 28 = 3 x 8 + 4
      {3, 9, 7, 16, 32, 3, 2, 1},     // strided, odd width (4 outputs a row)
      {2, 14, 14, 32, 32, 3, 1, 1},   // stage 2
      {2, 13, 11, 32, 64, 3, 2, 1},   // stage 2 -> 3, strided
      {2, 7, 7, 64, 64, 3, 1, 1},     // stage 3: 6 dwords a kernel row
      {2, 8, 8, 32, 64, 1, 2, 0},     // 1x1 strided shortcut
      {1, 5, 19, 48, 16, 3, 1, 1},    // 48 channels: 4.5 dwords a kernel row, pixels 6 bytes apart
      {130, 3, 3, 16, 16, 3, 1, 1},   // many images: tiles that start and end inside images
      {10, 28, 28, 16, 16, 3, 1, 1},  // 144k codes: the plane pass runs on the threads (below 2^17 on the caller)
      {2, 6, 5, 16, 32, 3, 1, 2},     // padding 2
  };
  std::mt19937 rng(17);
  for (const ConvShape& g : shapes)
    for (int max_code : {1, 3, 2}) {
      CAPTURE(g.in_c);
      CAPTURE(g.out_c);
      CAPTURE(g.kernel);
      CAPTURE(g.stride);
      CAPTURE(g.w);
      CAPTURE(max_code);
      const int64_t OH = (g.h + 2 * g.padding - g.kernel) / g.stride + 1,
                    OW = (g.w + 2 * g.padding - g.kernel) / g.stride + 1, outs = g.batch * OH * OW * g.out_c;
      std::vector<uint8_t> codes(static_cast<size_t>(g.batch * g.h * g.w * g.in_c));
      for (auto& c : codes) c = static_cast<uint8_t>(rng() % static_cast<unsigned>(max_code + 1));
      const std::vector<int8_t> oihw = binary_weights(g, rng);
      const auto w = backends::pack_conv_weights_rsc(g.out_c, g.in_c, g.kernel, oihw.data(), max_code);
      const std::vector<int64_t> want = definition(g, codes, oihw);

      // Exact sums: unit 1, scale 1, shift 0, no ReLU: the float outputs are the sums (|sum| < 2^24).
      std::vector<float> ones(static_cast<size_t>(g.out_c), 1.0f), zeros(ones.size(), 0.0f);
      std::vector<float> scale(ones.size()), shift(ones.size());
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (size_t o = 0; o < scale.size(); ++o) {
        scale[o] = 0.5f + 0.5f * std::abs(u(rng));
        shift[o] = u(rng);
      }
      const backends::CodeThresholds q({-3.0f, 0.5f, 4.0f}, {0, 1, 2, 3});
      for (int64_t pad = g.padding; pad <= 2; ++pad) {
        CAPTURE(pad);
        const std::vector<uint8_t> in = with_border(codes, g, pad);
        const backends::IntConvGeometry geo{g.batch, g.h, g.w, g.in_c, g.out_c, g.kernel, g.stride, g.padding, pad};
        backends::set_bitserial_conv_enabled(true);
        REQUIRE(backends::bitserial_conv_runnable(geo, w));
        // 2 threads first: a threaded plane pass that left rows out would otherwise read the planes of the call before
        for (int threads : {2, 1}) {
          CAPTURE(threads);
          ThreadsGuard tg(threads);
          backends::IntConvEpilogue exact;
          exact.unit = 1.0;
          exact.scale = ones.data();
          exact.shift = zeros.data();
          std::vector<float> sums(static_cast<size_t>(outs), -7.0f);
          exact.out = sums.data();
          backends::set_bitserial_conv_enabled(true);
          CHECK(backends::int_conv2d_nhwc(geo, in.data(), w, exact) == 0);
          int64_t wrong = 0;
          for (size_t i = 0; i < sums.size(); ++i) wrong += sums[i] != static_cast<float>(want[i]);
          CHECK(wrong == 0);

          // A model's epilogue (rescale, batch norm, ReLU, a consumer's codes): the same bits either way.
          backends::IntConvEpilogue e;
          e.unit = 0.0123456789;
          e.scale = scale.data();
          e.shift = shift.data();
          e.relu = true;
          e.quant[0] = &q;
          std::vector<float> out_bs(static_cast<size_t>(outs)), out_gemm(out_bs.size());
          std::vector<uint8_t> c_bs(out_bs.size()), c_gemm(out_bs.size());
          e.out = out_bs.data();
          e.codes[0] = c_bs.data();
          CHECK(backends::int_conv2d_nhwc(geo, in.data(), w, e) == 0);
          backends::set_bitserial_conv_enabled(false);
          CHECK(!backends::bitserial_conv_runnable(geo, w));
          e.out = out_gemm.data();
          e.codes[0] = c_gemm.data();
          CHECK(backends::int_conv2d_nhwc(geo, in.data(), w, e) == 0);
          CHECK(std::memcmp(out_bs.data(), out_gemm.data(), out_bs.size() * sizeof(float)) == 0);
          CHECK(c_bs == c_gemm);
        }
      }
      // A border narrower than the padding leaves windows crossing the buffer's edge: the GEMM path takes them.
      if (g.padding > 0) {
        backends::set_bitserial_conv_enabled(true);
        CHECK(!backends::bitserial_conv_runnable(
            backends::IntConvGeometry{g.batch, g.h, g.w, g.in_c, g.out_c, g.kernel, g.stride, g.padding, 0}, w));
      }
    }
}
