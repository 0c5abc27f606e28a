// The cpu backend's Winograd F(4x4, 3x3) kernels (backends/cpu/cpu_winograd.h): the raw kernels against
// double-precision direct sums on nhwc buffers (odd extents, partial tiles, padding 0-2 and negative, channel
// counts 8-48, the epilogue, backward-weights), then the backend's conv2d entry points with Winograd on against
// the same backend with it off (oneDNN's direct kernels): forward, backward-data, backward-weights (+ bias) and
// inference.
#ifdef MINIDL_WITH_ONEDNN

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "backends/cpu/cpu_isa.h"
#include "backends/cpu/cpu_winograd.h"
#include "core/env.h"
#include "tensor/tensor.h"
#include "test_scopes.h"
#include "test_skip.h"

using namespace minidl;

namespace {

// Why the tests that need the Winograd kernel skip on this host.
std::string winograd_off_reason() {
  return "the Winograd kernel is off here: " + cpu::isa_summary() + ", MINIDL_CPU_CONV " +
         env_string("MINIDL_CPU_CONV").value_or("auto");
}

std::vector<float> uniform(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// out[n][oh][ow][k] = sum in[n][oh + r - pad_h][ow + s - pad_w][c] * g(k, c, r, s), in double; g is w[k][c][r][s]
// (forward) or, for flip, w[c][k][2 - r][2 - s] with w of shape (out_c, in_c) swapped: (in_c, out_c, 3, 3).
std::vector<double> direct(const std::vector<float>& in, const std::vector<float>& w, const cpu::WinogradShape& s,
                           bool flip) {
  std::vector<double> out(static_cast<size_t>(s.n * s.out_h * s.out_w * s.out_c), 0.0);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oh = 0; oh < s.out_h; ++oh)
      for (int64_t ow = 0; ow < s.out_w; ++ow)
        for (int64_t k = 0; k < s.out_c; ++k) {
          double acc = 0;
          for (int64_t r = 0; r < 3; ++r)
            for (int64_t q = 0; q < 3; ++q) {
              const int64_t ih = oh + r - s.pad_h, iw = ow + q - s.pad_w;
              if (ih < 0 || ih >= s.in_h || iw < 0 || iw >= s.in_w) continue;
              for (int64_t c = 0; c < s.in_c; ++c) {
                const double wv = flip ? w[static_cast<size_t>(((c * s.out_c + k) * 3 + 2 - r) * 3 + 2 - q)]
                                       : w[static_cast<size_t>(((k * s.in_c + c) * 3 + r) * 3 + q)];
                acc += wv * in[static_cast<size_t>(((n * s.in_h + ih) * s.in_w + iw) * s.in_c + c)];
              }
            }
          out[static_cast<size_t>(((n * s.out_h + oh) * s.out_w + ow) * s.out_c + k)] = acc;
        }
  return out;
}

// F(4x4, 3x3) in float32 loses a few bits to its transforms (their entries reach 8 and 1/24): the error stays
// below 4e-6 of the largest output (or gradient) in these cases; 2e-5 leaves a 5x margin and still fails on any
// wrong tap or on a transform constant off by 1e-4.
constexpr double kTol = 2e-5;

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

double max_abs_diff(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double m = 0;
  for (size_t i = 0; i < want.size(); ++i) m = std::max(m, std::abs(got[i] - want[i]));
  return m;
}

struct KernelCase {
  int64_t n, in_c, out_c, in_h, in_w, pad;
  bool flip;
  std::string str() const {
    return "n " + std::to_string(n) + " c " + std::to_string(in_c) + " -> " + std::to_string(out_c) + " " +
           std::to_string(in_h) + "x" + std::to_string(in_w) + " pad " + std::to_string(pad) + (flip ? " flip" : "");
  }
};

// The stride-1 3x3 convolution of the case: padding `pad` on both sides, so out = in + 2 pad - 2.
cpu::WinogradShape shape_of(const KernelCase& kc) {
  cpu::WinogradShape s;
  s.n = kc.n, s.in_c = kc.in_c, s.out_c = kc.out_c, s.in_h = kc.in_h, s.in_w = kc.in_w;
  s.pad_h = s.pad_w = kc.pad;
  s.out_h = kc.in_h + 2 * kc.pad - 2;
  s.out_w = kc.in_w + 2 * kc.pad - 2;
  return s;
}

void check_kernel(const KernelCase& kc) {
  const cpu::WinogradShape s = shape_of(kc);
  const std::string name = kc.str();
  CAPTURE(name);
  const auto in = uniform(static_cast<size_t>(s.n * s.in_h * s.in_w * s.in_c), 1);
  const auto w = uniform(static_cast<size_t>(s.in_c * s.out_c * 9), 2);  // (K, C, 3, 3) of the conv it serves
  const auto bias = uniform(static_cast<size_t>(s.out_c), 3);
  const auto resid = uniform(static_cast<size_t>(s.n * s.out_h * s.out_w * s.out_c), 4);
  // forward: w is (out_c, in_c, 3, 3); backward-data (flip): w is (in_c, out_c, 3, 3), i.e. K = in_c, C = out_c
  const int64_t K = kc.flip ? s.in_c : s.out_c, C = kc.flip ? s.out_c : s.in_c;
  std::vector<float> u(static_cast<size_t>(cpu::winograd_weights_size(s.in_c, s.out_c)));
  cpu::winograd_transform_weights(u.data(), w.data(), K, C, kc.flip);
  const auto want = direct(in, w, s, kc.flip);
  const double scale = std::max(1.0, max_abs(want));

  // plain
  std::vector<float> out(want.size(), 12345.f);
  cpu::winograd_conv3x3(out.data(), in.data(), u.data(), s);
  double worst = max_abs_diff(out, want);
  CHECK(worst <= kTol * scale);

  // epilogue: bias, onto the residual already in out, ReLU
  out = resid;
  cpu::winograd_conv3x3(out.data(), in.data(), u.data(), s, {bias.data(), true, true});
  worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = std::max(0.0, want[i] + bias[i % static_cast<size_t>(s.out_c)] + resid[i]);
    worst = std::max(worst, std::abs(out[i] - e));
  }
  CHECK(worst <= kTol * scale);
}

// gw[k][c][r][s] = sum over n, oh, ow of gy[n][oh][ow][k] * x[n][oh + r - pad][ow + s - pad][c], in double.
std::vector<double> direct_backward_weights(const std::vector<float>& x, const std::vector<float>& gy,
                                            const cpu::WinogradShape& s) {
  std::vector<double> gw(static_cast<size_t>(s.out_c * s.in_c * 9), 0.0);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oh = 0; oh < s.out_h; ++oh)
      for (int64_t ow = 0; ow < s.out_w; ++ow)
        for (int64_t r = 0; r < 3; ++r)
          for (int64_t q = 0; q < 3; ++q) {
            const int64_t ih = oh + r - s.pad_h, iw = ow + q - s.pad_w;
            if (ih < 0 || ih >= s.in_h || iw < 0 || iw >= s.in_w) continue;
            const float* xp = x.data() + ((n * s.in_h + ih) * s.in_w + iw) * s.in_c;
            const float* gp = gy.data() + ((n * s.out_h + oh) * s.out_w + ow) * s.out_c;
            for (int64_t k = 0; k < s.out_c; ++k)
              for (int64_t c = 0; c < s.in_c; ++c)
                gw[static_cast<size_t>(((k * s.in_c + c) * 3 + r) * 3 + q)] += double(gp[k]) * xp[c];
          }
  return gw;
}

// Backward-weights sums over every pixel of the batch: its error is measured against the largest gradient.
void check_backward_weights(const KernelCase& kc) {
  const cpu::WinogradShape s = shape_of(kc);
  const std::string name = kc.str();
  CAPTURE(name);
  const auto x = uniform(static_cast<size_t>(s.n * s.in_h * s.in_w * s.in_c), 5);
  const auto gy = uniform(static_cast<size_t>(s.n * s.out_h * s.out_w * s.out_c), 6);
  const auto want = direct_backward_weights(x, gy, s);
  std::vector<float> gw(want.size(), 12345.f);
  cpu::winograd_conv3x3_backward_weights(gw.data(), x.data(), gy.data(), s);
  const double worst = max_abs_diff(gw, want);
  CHECK(worst <= kTol * std::max(1.0, max_abs(want)));
}

}  // namespace

TEST_CASE("cpu winograd: backward-weights against a double-precision direct sum") {
  if (!cpu::winograd_enabled()) MINIDL_SKIP(winograd_off_reason());
  const std::vector<KernelCase> cases = {
      {2, 16, 16, 8, 8, 1, false},   // whole tiles
      {3, 16, 24, 9, 11, 1, false},  // partial tiles both ways, K % 16 == 8
      {1, 8, 8, 5, 7, 0, false},     // no padding
      {2, 32, 16, 6, 6, 2, false},   // padding 2, C > K
      {1, 48, 40, 13, 3, 1, false},  // a 3-wide image
      {8, 8, 16, 14, 14, 1, false},  // many blocks: per-thread accumulators are summed
  };
  // every case through the blocked stages and through the layer-wide ones (large channel counts)
  for (const bool wide : {false, true}) {
    CAPTURE(wide);
    cpu::set_winograd_layer_wide(wide);
    for (const auto& c : cases) check_backward_weights(c);
  }
  cpu::set_winograd_layer_wide(std::nullopt);
  check_backward_weights({2, 256, 256, 7, 7, 1, false});  // ResNet-18's layer 4 size class: layer-wide by default
}

TEST_CASE("cpu winograd: the F(4x4,3x3) kernel against a double-precision direct convolution") {
  if (!cpu::winograd_enabled()) MINIDL_SKIP(winograd_off_reason());
  const std::vector<KernelCase> cases = {
      {2, 16, 16, 8, 8, 1, false},   // ResNet-20 stage 3 extent: whole tiles
      {3, 16, 24, 9, 11, 1, false},  // partial tiles both ways, K % 16 == 8
      {1, 8, 8, 5, 7, 0, false},     // no padding, one channel vector
      {2, 32, 16, 6, 6, 2, false},   // padding 2, C > K
      {1, 48, 40, 13, 3, 1, false},  // a 3-wide image, odd tile count per block
      {5, 8, 16, 14, 14, 1, false},  // several blocks per thread
      {2, 16, 24, 9, 11, 1, true},   // backward-data of a pad-1 conv (pad 2 - 1)
      {1, 24, 8, 7, 6, -1, true},    // backward-data of a pad-3 conv: negative padding
      {2, 8, 32, 10, 10, 2, true},   // backward-data of a pad-0 conv
  };
  for (const bool wide : {false, true}) {
    CAPTURE(wide);
    cpu::set_winograd_layer_wide(wide);
    for (const auto& c : cases) check_kernel(c);
  }
  cpu::set_winograd_layer_wide(std::nullopt);
  check_kernel({2, 256, 256, 7, 7, 1, false});  // layer-wide by default
  check_kernel({1, 256, 256, 7, 7, 1, true});
}

namespace {

// Every output of the raw kernels for one case: forward (plain and with the epilogue) or backward-data (flip),
// and backward-weights.
std::vector<std::vector<float>> kernel_outputs(const KernelCase& kc) {
  const cpu::WinogradShape s = shape_of(kc);
  const auto in = uniform(static_cast<size_t>(s.n * s.in_h * s.in_w * s.in_c), 1);
  const auto w = uniform(static_cast<size_t>(s.in_c * s.out_c * 9), 2);
  const auto bias = uniform(static_cast<size_t>(s.out_c), 3);
  const auto gy = uniform(static_cast<size_t>(s.n * s.out_h * s.out_w * s.out_c), 4);
  const int64_t K = kc.flip ? s.in_c : s.out_c, C = kc.flip ? s.out_c : s.in_c;
  std::vector<float> u(static_cast<size_t>(cpu::winograd_weights_size(s.in_c, s.out_c)));
  cpu::winograd_transform_weights(u.data(), w.data(), K, C, kc.flip);
  std::vector<float> plain(gy.size()), fused = gy, gw(static_cast<size_t>(s.in_c * s.out_c * 9));
  cpu::winograd_conv3x3(plain.data(), in.data(), u.data(), s);
  cpu::winograd_conv3x3(fused.data(), in.data(), u.data(), s, {bias.data(), true, true});
  cpu::winograd_conv3x3_backward_weights(gw.data(), in.data(), gy.data(), s);
  return {plain, fused, gw};
}

// Two runs of kernel_outputs give the same bits, output by output.
void check_same_bits(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    REQUIRE(a[i].size() == b[i].size());
    CHECK(std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) == 0);
  }
}

}  // namespace

TEST_CASE("cpu winograd: the AVX-512 kernels give the AVX2 kernels' bits") {
  if (cpu::host_isa() < cpu::CpuIsa::Avx512 || cpu::active_isa() < cpu::CpuIsa::Avx512 || !cpu::winograd_enabled()) {
    MINIDL_SKIP("no AVX-512 Winograd here: " << cpu::isa_summary() << ", MINIDL_CPU_CONV "
                                             << env_string("MINIDL_CPU_CONV").value_or("auto"));
  }
  // channel counts that are multiples of 16 run the zmm kernels; row counts that leave every GEMM tail (tiles
  // per block not a multiple of 12); partial tiles, negative padding, backward-data. 48 output channels take the
  // zmm one-register column tail after a two-register block; 8 and 24 keep a layer on the ymm kernels at both caps
  // (the dispatch must not send them to zmm).
  const std::vector<KernelCase> cases = {
      {2, 16, 16, 8, 8, 1, false},   {3, 16, 32, 9, 11, 1, false},  {1, 32, 16, 5, 7, 0, false},
      {5, 16, 16, 14, 14, 1, false}, {2, 64, 64, 10, 10, 1, false}, {1, 48, 32, 13, 3, 1, false},
      {2, 16, 32, 9, 11, 1, true},   {1, 32, 16, 7, 6, -1, true},   {3, 16, 24, 9, 11, 1, false},
      {7, 16, 16, 6, 6, 1, false},   {4, 16, 48, 7, 9, 1, false},   {2, 48, 48, 6, 10, 1, true},
      {3, 8, 8, 9, 7, 1, false},     {2, 8, 16, 6, 6, 1, true},     {1, 24, 48, 11, 5, 1, false},
      {12, 64, 16, 4, 4, 1, false},
  };
  minidl::test::CapGuard guard;
  for (const bool wide : {false, true}) {
    cpu::set_winograd_layer_wide(wide);
    for (const auto& c : cases) {
      const std::string name = c.str() + (wide ? " layer-wide" : " blocked");
      CAPTURE(name);
      cpu::set_cpu_isa_cap(cpu::CpuIsa::Avx512);
      const auto fast = kernel_outputs(c);
      cpu::set_cpu_isa_cap(cpu::CpuIsa::Avx2);
      check_same_bits(fast, kernel_outputs(c));
    }
  }
  cpu::set_winograd_layer_wide(std::nullopt);
}

TEST_CASE("cpu winograd: the tile-major and position-major blocks give the same bits") {
  if (!cpu::winograd_enabled()) MINIDL_SKIP(winograd_off_reason());
  // ResNet-20's channel counts (tile-major by default), wider ones (position-major by default), partial tiles,
  // several blocks per thread, backward-data with negative padding; at whatever ISA level runs here
  const std::vector<KernelCase> cases = {
      {2, 16, 16, 8, 8, 1, false},   {3, 16, 32, 9, 11, 1, false},  {1, 32, 16, 5, 7, 0, false},
      {9, 16, 16, 14, 14, 1, false}, {2, 64, 64, 10, 10, 1, false}, {1, 48, 40, 13, 3, 1, false},
      {2, 16, 24, 9, 11, 1, true},   {1, 24, 8, 7, 6, -1, true},    {3, 8, 8, 9, 7, 1, false},
  };
  cpu::set_winograd_layer_wide(false);
  for (const auto& c : cases) {
    CAPTURE(c.str());
    cpu::set_winograd_tile_major(true);
    const auto tile_major = kernel_outputs(c);
    cpu::set_winograd_tile_major(false);
    check_same_bits(tile_major, kernel_outputs(c));
  }
  cpu::set_winograd_tile_major(std::nullopt);
  cpu::set_winograd_layer_wide(std::nullopt);
}

TEST_CASE("cpu winograd: forward and backward-data outputs do not depend on the thread count") {
  if (!cpu::winograd_enabled()) MINIDL_SKIP(winograd_off_reason());
  // Each thread takes an equal share of the tiles (thread_tiles); a tile's output must not depend on which thread
  // or block computes it, and no tile may be left out or done twice. Tile counts that 2 and 3 threads do not
  // divide, several blocks per thread, partial tiles; blocked and layer-wide stages. (Backward-weights' sums do
  // depend on the partition and are not compared.)
  const std::vector<KernelCase> cases = {
      {3, 16, 16, 9, 11, 1, false}, {9, 16, 16, 14, 14, 1, false}, {5, 64, 64, 8, 8, 1, false},
      {2, 16, 24, 9, 11, 1, true},  {1, 24, 8, 7, 6, -1, true},    {7, 32, 32, 16, 16, 1, false},
  };
  for (const bool wide : {false, true}) {
    cpu::set_winograd_layer_wide(wide);
    for (const auto& c : cases) {
      CAPTURE(c.str());
      CAPTURE(wide);
      std::vector<std::vector<float>> one;
      {
        minidl::test::ThreadsGuard threads(1);
        one = kernel_outputs(c);
      }
      for (const int n : {2, 3}) {
        CAPTURE(n);
        minidl::test::ThreadsGuard threads(n);
        auto many = kernel_outputs(c);
        many.pop_back();  // backward-weights
        check_same_bits({one[0], one[1]}, many);
      }
    }
  }
  cpu::set_winograd_layer_wide(std::nullopt);
}

namespace {

Tensor channels_last_uniform(const Shape& s, uint32_t seed) {
  const auto v = uniform(static_cast<size_t>(s[0] * s[1] * s[2] * s[3]), seed);
  Tensor t = empty(s, TensorOptions{}.dtype(DType::f32), MemoryFormat::ChannelsLast);
  // logical (n, c, h, w) order from v, written through the channels-last strides
  float* p = t.data<float>();
  const auto st = t.strides();
  size_t i = 0;
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t c = 0; c < s[1]; ++c)
      for (int64_t h = 0; h < s[2]; ++h)
        for (int64_t w = 0; w < s[3]; ++w) p[n * st[0] + c * st[1] + h * st[2] + w * st[3]] = v[i++];
  return t;
}

double max_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  REQUIRE(a.strides() == b.strides());
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, double(std::abs(a.data<float>()[i] - b.data<float>()[i])));
  return m;
}

double max_abs(const Tensor& a) {
  double m = 1;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, double(std::abs(a.data<float>()[i])));
  return m;
}

}  // namespace

TEST_CASE("cpu winograd: conv2d forward, backward-data, backward-weights and inference match oneDNN's direct kernels") {
  if (!cpu::winograd_enabled()) MINIDL_SKIP(winograd_off_reason());
  Backend& be = backend_by_name("cpu");
  struct Case {
    Shape x;
    int64_t K, pad;
  };
  for (const Case& cs : {Case{{4, 16, 32, 32}, 16, 1}, Case{{3, 32, 9, 7}, 24, 1}, Case{{2, 8, 6, 10}, 16, 0}}) {
    CAPTURE(shape_str(cs.x));
    Conv2dParams p;
    p.pad_h = p.pad_w = cs.pad;
    const Shape ys{cs.x[0], cs.K, cs.x[2] + 2 * cs.pad - 2, cs.x[3] + 2 * cs.pad - 2};
    const Tensor x = channels_last_uniform(cs.x, 1), gy = channels_last_uniform(ys, 2),
                 res = channels_last_uniform(ys, 3);
    const auto wv = uniform(static_cast<size_t>(cs.K * cs.x[1] * 9), 4), bv = uniform(static_cast<size_t>(cs.K), 5);
    const Tensor w = from_vector(wv, {cs.K, cs.x[1], 3, 3}, TensorOptions{}.dtype(DType::f32));
    const Tensor b = from_vector(bv, {cs.K}, TensorOptions{}.dtype(DType::f32));
    auto run = [&](bool winograd) {
      cpu::set_winograd_enabled(winograd);
      const auto opts = TensorOptions{}.dtype(DType::f32);
      Tensor y = empty(ys, opts, MemoryFormat::ChannelsLast), gx = empty(cs.x, opts, MemoryFormat::ChannelsLast),
             yi = empty(ys, opts, MemoryFormat::ChannelsLast), gw = empty(w.sizes(), opts), gb = empty({cs.K}, opts);
      OpStatePtr st;
      be.conv2d_forward(y, x, w, b, p, st);
      be.conv2d_backward_data(gx, gy, w, p, st);
      be.conv2d_backward_weight(gw, gb, gy, x, p, st);
      be.conv2d_inference(yi, x, w, b, p, res, true);
      return std::vector<Tensor>{y, gx, gw, gb, yi};
    };
    const auto fast = run(true), ref = run(false);
    cpu::clear_winograd_override();
    for (size_t i = 0; i < fast.size(); ++i) {
      CAPTURE(i);
      CHECK(max_diff(fast[i], ref[i]) <= kTol * max_abs(ref[i]));
    }
  }
}

#endif  // MINIDL_WITH_ONEDNN
