// The ActNN codec primitives (Backend::actnn_quantize / actnn_dequantize, backends/actnn_codec.h) against
// spec/quant.md section 6 "ActNN" (B1 rounding statistics, B2 padding and ranges, B3 storage, B7 round trips),
// a constant group's exact round trip, unbiasedness over 10,000 seeded dequantizations, determinism for a key,
// and the cpu kernels equal to the ref oracle byte for byte (every ISA level the host can run).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "backends/backend.h"
#include "backends/cpu/cpu_isa.h"
#include "test_skip.h"

using namespace minidl;

namespace {

struct Packed {
  Tensor codes, meta;
};

Packed quantize(Backend& be, const Tensor& x, const ActnnCodec& c) {
  Packed p{empty({c.code_bytes()}, TensorOptions().dtype(DType::u8)),
           empty({c.meta_bytes()}, TensorOptions().dtype(DType::u8))};
  be.actnn_quantize(p.codes, p.meta, x, c);
  return p;
}

Tensor dequantize(Backend& be, const Packed& p, const Tensor& like, const ActnnCodec& c) {
  Tensor out = empty(like.sizes(), TensorOptions().dtype(like.dtype()), like.memory_format());
  be.actnn_dequantize(out, p.codes, p.meta, c);
  return out;
}

ActnnCodec codec_for(const Tensor& x, int bits, int64_t group, uint64_t key, bool bf16 = true, bool per_group = true) {
  ActnnCodec c;
  c.n = x.size(0);
  c.f = x.numel() / c.n;
  c.group = group;
  c.key = key;
  c.bf16_meta = bf16;
  c.per_group = per_group;
  c.bits.assign(static_cast<size_t>(c.n), static_cast<uint8_t>(bits));
  return c;
}

Backend& ref() { return backend_by_name("ref"); }

std::vector<Backend*> all_backends() {
  std::vector<Backend*> v{&ref()};
  for (const auto& n : available_backends())
    if (n == "cpu") v.push_back(&backend_by_name("cpu"));
  return v;
}

// Sample n of a batch of 8-element rows [a0..a7] repeated: every row is one independent draw.
Tensor repeated_rows(const std::vector<float>& row, int64_t n) {
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) v.insert(v.end(), row.begin(), row.end());
  return from_vector(v, {n, static_cast<int64_t>(row.size())});
}

}  // namespace

TEST_CASE("actnn codec B1: 2-bit stochastic rounding statistics (1e5 draws)") {
  // group 0: mn 0, mx 1 (s = 3); group 1: mn 0, mx 3 (s = 1). G = 8 with F = 16 (two groups per sample).
  const std::vector<float> row = {0.f, 0.25f, 0.5f, 1.f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.5f, 2.25f, 3.f, 0.f, 0.f, 0.f, 0.f};
  const int64_t n = 100000;
  const Tensor x = repeated_rows(row, n);
  for (Backend* be : all_backends()) {
    CAPTURE(be->name());
    ActnnCodec c = codec_for(x, 2, 8, 12345);
    const Packed p = quantize(*be, x, c);
    const std::vector<float> y = dequantize(*be, p, x, c).to_vector<float>();
    struct Expect {
      int col;
      double mean, var;
    };
    // x = 0.25 at s = 3: Var = 0.75 * 0.25 / 9; 0.5: 0.25 / 9; 1: exactly 1 (no epsilon: q = 3 always)
    const std::vector<Expect> expect = {{0, 0.0, 0.0},  {1, 0.25, 0.0208333}, {2, 0.5, 0.0277778}, {3, 1.0, 0.0},
                                        {9, 0.5, 0.25}, {10, 2.25, 0.1875},   {11, 3.0, 0.0}};
    for (const Expect& e : expect) {
      double s = 0, s2 = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double v = y[static_cast<size_t>(i * 16 + e.col)];
        s += v;
        s2 += v * v;
      }
      const double mean = s / n, var = s2 / n - mean * mean;
      CAPTURE(e.col);
      if (e.var == 0) {
        CHECK(mean == e.mean);
        CHECK(var == doctest::Approx(0.0).epsilon(1e-12));
      } else {
        CHECK(std::abs(mean - e.mean) < 4 * std::sqrt(e.var / n));
        CHECK(std::abs(var - e.var) < 0.03 * e.var);
      }
    }
    // all codes in [0, 3] is implied by 2-bit packing; the decoded values lie on the grid lo + q / s
    for (int64_t i = 0; i < 1000; ++i) {
      const float v = y[static_cast<size_t>(i * 16 + 1)];
      CHECK((v == 0.f || std::abs(v - 1.f / 3.f) < 1e-6f));
    }
  }
}

TEST_CASE("actnn codec B2: padding zeros take part in the range, one range per tensor") {
  for (Backend* be : all_backends()) {
    CAPTURE(be->name());
    {
      // one sample [1, 2, 3], G = 8: padded [1, 2, 3, 0, ...] -> mn = 0 (not 1), mx = 3
      const Tensor x = from_vector<float>({1, 2, 3}, {1, 3});
      ActnnCodec c = codec_for(x, 2, 8, 1, /*bf16=*/false);
      const Packed p = quantize(*be, x, c);
      float lo, hi;
      actnn_load_meta(p.meta.data<uint8_t>(), 0, false, lo, hi);
      CHECK(lo == 0.f);
      CHECK(hi == 3.f);
    }
    {
      // per_group = false: samples [1..8] and [9..16], G = 8 (no padding): every group uses mn 1, mx 16
      std::vector<float> v(16);
      for (int i = 0; i < 16; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i + 1);
      const Tensor x = from_vector(v, {2, 8});
      ActnnCodec c = codec_for(x, 2, 8, 1, false, /*per_group=*/false);
      const Packed p = quantize(*be, x, c);
      for (int g = 0; g < 2; ++g) {
        float lo, hi;
        actnn_load_meta(p.meta.data<uint8_t>(), g, false, lo, hi);
        CHECK(lo == 1.f);
        CHECK(hi == 16.f);
      }
    }
  }
}

TEST_CASE("actnn codec B3: storage of a [2, 3, 10, 10] tensor at 2 bits") {
  const Tensor x = rand({2, 3, 10, 10});
  ActnnCodec c = codec_for(x, 2, 256, 7);
  CHECK(c.padded() == 512);
  CHECK(c.groups_per_sample() == 2);
  CHECK(c.code_bytes() == 256);  // 2 * 512 * 2 / 8
  CHECK(c.meta_bytes() == 16);   // 4 groups x (bf16 lo, bf16 hi)
  // + 2 bytes of per-sample bit widths in the packer (the reference stores 2 x int32): 274 B vs 2400 B fp32
}

TEST_CASE("actnn codec B7: codes on the grid round-trip exactly at 1, 2, 4, 8 bits and mixed [2, 8, 1, 4]") {
  std::mt19937 rng(3);
  auto make = [&](const std::vector<uint8_t>& bits, int64_t f) {
    // sample n holds integers in [0, 2^b - 1] with 0 and 2^b - 1 in every group: lo = 0, s = 1, so q = x
    std::vector<float> v;
    for (uint8_t b : bits) {
      const int B = (1 << b) - 1;
      std::uniform_int_distribution<int> d(0, B);
      for (int64_t j = 0; j < f; ++j)
        v.push_back(j % 256 == 0 ? 0.f : j % 256 == 1 ? static_cast<float>(B) : static_cast<float>(d(rng)));
    }
    return from_vector(v, {static_cast<int64_t>(bits.size()), f});
  };
  const std::vector<std::vector<uint8_t>> cases = {{1, 1, 1}, {2, 2}, {4, 4, 4}, {8, 8}, {2, 8, 1, 4}, {3, 5, 6, 7}};
  for (Backend* be : all_backends()) {
    for (const auto& bits : cases) {
      CAPTURE(be->name());
      CAPTURE(bits.size());
      const Tensor x = make(bits, 512);
      ActnnCodec c = codec_for(x, 1, 256, 99);
      c.bits = bits;
      const Packed p = quantize(*be, x, c);
      CHECK(dequantize(*be, p, x, c).to_vector<float>() == x.to_vector<float>());
    }
  }
}

TEST_CASE("actnn codec: a constant group round-trips exactly") {
  for (Backend* be : all_backends()) {
    CAPTURE(be->name());
    for (int bits : {1, 2, 4, 8}) {
      // f32 metadata: any value; bf16 metadata: a bf16-exact value (others round to [lo, hi] unbiased)
      for (auto [val, bf16] :
           {std::pair{0.7f, false}, std::pair{-3.1f, false}, std::pair{0.75f, true}, std::pair{0.f, true}}) {
        const Tensor x = full({3, 256}, val);
        ActnnCodec c = codec_for(x, bits, 256, 5, bf16);
        const Packed p = quantize(*be, x, c);
        const std::vector<uint8_t> codes = p.codes.to_vector<uint8_t>();
        for (uint8_t b : codes) CHECK(b == 0);  // a constant group codes 0
        const std::vector<float> y = dequantize(*be, p, x, c).to_vector<float>();
        for (float v : y) CHECK(v == val);
      }
    }
  }
}

TEST_CASE("actnn codec: unbiased (mean of 10,000 dequantizations within 4 sigma), variance within 1 / (4 s^2)") {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> v(2 * 200);
  for (auto& e : v) e = nd(rng);
  const Tensor x = from_vector(v, {2, 200});  // padded to 256: the zeros join the ranges
  Backend& be = *all_backends().back();       // cpu when built, else ref
  const int draws = 10000;
  for (bool bf16 : {true, false}) {
    CAPTURE(bf16);
    std::vector<double> s(v.size()), s2(v.size());
    ActnnCodec c = codec_for(x, 2, 256, 0, bf16);
    std::vector<float> lo(2), hi(2);
    for (int d = 0; d < draws; ++d) {
      c.key = 1000 + static_cast<uint64_t>(d);
      const Packed p = quantize(be, x, c);
      if (d == 0)
        for (int g = 0; g < 2; ++g)
          actnn_load_meta(p.meta.data<uint8_t>(), g, bf16, lo[static_cast<size_t>(g)], hi[static_cast<size_t>(g)]);
      const std::vector<float> y = dequantize(be, p, x, c).to_vector<float>();
      for (size_t i = 0; i < y.size(); ++i) {
        s[i] += y[i];
        s2[i] += static_cast<double>(y[i]) * y[i];
      }
    }
    double worst_z = 0, sum_var = 0, sum_expected = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      const size_t g = i / 200;
      const double sc = actnn_scale(lo[g], hi[g], 2);
      const double vv = (v[i] - lo[g]) * sc, p = vv - std::floor(vv);
      const double expected_var = p * (1 - p) / (sc * sc), bound = 1 / (4 * sc * sc);
      const double mean = s[i] / draws, var = s2[i] / draws - mean * mean;
      const double sigma = std::sqrt(expected_var / draws);
      CHECK(std::abs(mean - v[i]) <= 4 * sigma + 1e-6);
      CHECK(var <= bound * 1.05);
      worst_z = std::max(worst_z, std::abs(mean - v[i]) / std::max(sigma, 1e-12));
      sum_var += var;
      sum_expected += expected_var;
    }
    MESSAGE("bf16 ", bf16, ": worst |mean - x| / sigma = ", worst_z, ", summed variance ", sum_var, " vs p(1-p)/s^2 ",
            sum_expected);
    CHECK(std::abs(sum_var - sum_expected) < 0.03 * sum_expected);
  }
}

TEST_CASE("actnn codec: deterministic for a key, another key draws another stream") {
  const Tensor x = randn({4, 3, 9, 9});
  for (Backend* be : all_backends()) {
    ActnnCodec c = codec_for(x, 2, 256, 42);
    const Packed a = quantize(*be, x, c), b = quantize(*be, x, c);
    CHECK(a.codes.to_vector<uint8_t>() == b.codes.to_vector<uint8_t>());
    c.key = 43;
    const Packed d = quantize(*be, x, c);
    CHECK(a.codes.to_vector<uint8_t>() != d.codes.to_vector<uint8_t>());
    CHECK(a.meta.to_vector<uint8_t>() == d.meta.to_vector<uint8_t>());
  }
}

TEST_CASE("actnn codec: the stream is defined by (key, element): a fixed vector") {
  // Pins the hash so a future backend (cuda) can check itself against these numbers without running this one.
  CHECK(actnn_uniform(0, 0) == doctest::Approx(actnn_uniform_k(actnn_splitmix64(0), 0)));
  const float r0 = actnn_uniform(1, 0), r1 = actnn_uniform(1, 1), rb = actnn_uniform(1, (uint64_t{1} << 32) + 1);
  CHECK(r0 >= 0.f);
  CHECK(r0 < 1.f);
  CHECK(r0 != r1);
  CHECK(r1 != rb);              // the high half of the element index changes the chunk key
  CHECK(r0 == 0x1.8386ecp-2f);  // the values this definition gives (hex: exact)
  CHECK(r1 == 0x1.b6c3fp-2f);
  CHECK(rb == 0x1.4eb82p-4f);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a %a %a", static_cast<double>(r0), static_cast<double>(r1), static_cast<double>(rb));
  MESSAGE("actnn_uniform(1, {0, 1, 2^32 + 1}) = ", std::string(buf));
}

// The bit patterns of an f32 tensor (== on floats would call two identical NaNs different).
static std::vector<uint32_t> float_bits(const Tensor& t) {
  const std::vector<float> v = t.to_vector<float>();
  std::vector<uint32_t> u(v.size());
  std::memcpy(u.data(), v.data(), v.size() * sizeof(float));
  return u;
}

// Equal values, NaN equal to NaN and -0.0 to +0.0.
static bool same_values(const Tensor& a, const Tensor& b) {
  const std::vector<float> u = a.to_vector<float>(), v = b.to_vector<float>();
  if (u.size() != v.size()) return false;
  for (size_t i = 0; i < u.size(); ++i)
    if (!(u[i] == v[i] || (std::isnan(u[i]) && std::isnan(v[i])))) return false;
  return true;
}

TEST_CASE("actnn codec: cpu kernels equal the ref oracle byte for byte at every ISA level") {
  bool have_cpu = false;
  for (const auto& n : available_backends()) have_cpu = have_cpu || n == "cpu";
  if (!have_cpu) MINIDL_SKIP("the cpu backend is not built");
  Backend& cpu = backend_by_name("cpu");
  std::mt19937 rng(5);
  struct Case {
    Shape s;
    bool channels_last;
    std::vector<uint8_t> bits;  // empty: 2 bits each
    int64_t group;
    bool bf16, per_group;
    bool special = false;  // NaN, +-inf, -0.0 and zeros scattered through x
    bool planted = false;  // only the NaN (and the maximum after it) at sample 1's channel 1, no other specials
  };
  const std::vector<Case> cases = {
      {{3, 5, 7, 11}, false, {}, 256, true, true},
      {{4, 16, 9, 9}, true, {2, 8, 1, 4}, 256, true, true},
      {{5, 300}, false, {3, 5, 6, 7, 8}, 64, false, true},
      {{2, 1000}, false, {}, 8, true, false},
      {{128, 16, 8, 8}, true, {}, 256, true, true},
      {{7, 33}, false, {1, 2, 3, 4, 5, 6, 7}, 512, false, false},
      // groups of 40 (a 32-element block and an 8-element one) with a partial last group, fixed widths
      {{6, 77}, false, {1, 2, 4, 8, 8, 4}, 40, true, true},
      {{4, 3, 10, 10}, true, {8, 4, 2, 1}, 96, true, true},
      {{8, 203}, false, {}, 64, true, true, true},
      {{3, 515}, false, {4, 8, 1}, 256, false, true, true},
      // channels-last with NaN / inf / signed zeros, per group and one range (ref's fold in logical order)
      {{3, 6, 5, 7}, true, {1, 4, 2}, 64, true, true, true},
      {{3, 6, 5, 7}, true, {}, 32, false, false, true},
      // channel planes holding whole groups (the cpu pads the transposed rows apart), and a 16x16 plane
      {{5, 16, 8, 8}, true, {2, 8, 1, 4, 3}, 64, true, true},
      {{2, 24, 16, 16}, true, {}, 256, true, true},
      // channels-last coded in place on AVX2 (cpu_actnn_nhwc_avx2.cpp): groups inside a channel (several per
      // plane) and of 2 or 8 whole channels, every width, NaN / inf / signed zeros, NaN at a later channel's
      // first pixel of a group (that group is folded element by element), ResNet-20's first-stage shape
      {{8, 16, 8, 8}, true, {1, 2, 3, 4, 5, 6, 7, 8}, 128, true, true, true},
      {{3, 32, 16, 16}, true, {1, 2, 4}, 128, false, true, true},
      {{4, 64, 8, 8}, true, {8, 7, 3, 2}, 512, true, true, true},
      {{3, 16, 32, 32}, true, {2, 3, 4}, 256, true, true},
      // planes that groups cut at other multiples of 16 pixels: Fashion-MNIST's 28 x 28 (49 segments of 16
      // pixels, groups over two channels, a 16-pixel last block; the NaN at channel 1's first pixel is inside a
      // group, so that group is folded element by element), 12 x 12 in groups of 96 over 8 samples of every width,
      // groups of 16 (one per half), a 4 x 4 plane (one 16-pixel block), and ImageNet's 56 x 56 (cuts every 64 pixels)
      {{3, 16, 28, 28}, true, {2, 3, 4}, 256, true, true, true},
      {{3, 16, 28, 28}, true, {4, 2, 3}, 256, true, true, false, true},
      {{8, 8, 12, 12}, true, {1, 2, 3, 4, 5, 6, 7, 8}, 96, false, true, true},
      {{4, 8, 8, 8}, true, {1, 5, 6, 7}, 16, true, true, true},
      {{2, 8, 4, 4}, true, {8, 2}, 16, true, true},
      {{2, 64, 56, 56}, true, {2, 4}, 256, true, true}};
  const std::vector<cpu::CpuIsa> levels = {cpu::CpuIsa::Baseline, cpu::CpuIsa::Avx2, cpu::CpuIsa::Avx512};
  int compared = 0;
  for (cpu::CpuIsa isa : levels) {
    if (static_cast<int>(isa) > static_cast<int>(cpu::host_isa())) continue;
    cpu::set_cpu_isa_cap(isa);
    for (const Case& cs : cases) {
      const std::string isa_label = cpu::isa_name(isa), shape_label = shape_str(cs.s);
      CAPTURE(isa_label);
      CAPTURE(shape_label);
      Tensor x = randn(cs.s) * 3.0;
      if (cs.special || cs.planted) {
        std::vector<float> v = x.to_vector<float>();
        const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                                  std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(),
                                  -0.0f,
                                  0.0f,
                                  0.0f};
        if (cs.special)
          for (size_t i = 0; i < v.size(); i += 1 + rng() % 97) v[i] = specials[rng() % 6];
        if (cs.s.size() == 4 && cs.s[0] > 1 && cs.s[1] > 1) {
          const size_t plane = static_cast<size_t>(cs.s[2] * cs.s[3]), sample = plane * static_cast<size_t>(cs.s[1]);
          v[sample + plane] = std::numeric_limits<float>::quiet_NaN();  // sample 1, channel 1, first pixel
          v[sample + plane + 1] = 1000.0f;  // its group's maximum, in the piece the NaN starts
        }
        x = from_vector(v, cs.s);
      }
      if (cs.channels_last) {
        Tensor t = empty(cs.s, TensorOptions(), MemoryFormat::ChannelsLast);
        t.copy_(x);
        x = t;
      }
      ActnnCodec c = codec_for(x, 2, cs.group, rng(), cs.bf16, cs.per_group);
      if (!cs.bits.empty()) c.bits = cs.bits;
      const Packed a = quantize(ref(), x, c), b = quantize(cpu, x, c);
      CHECK(a.codes.to_vector<uint8_t>() == b.codes.to_vector<uint8_t>());
      CHECK(a.meta.to_vector<uint8_t>() == b.meta.to_vector<uint8_t>());
      CHECK(float_bits(dequantize(ref(), a, x, c)) == float_bits(dequantize(cpu, a, x, c)));  // NaN too
      if (cs.channels_last) {
        // The codec's order is the logical one: the contiguous copy codes to the same bytes on every backend,
        // and decoding into either layout gives the same values.
        const Tensor xc = x.contiguous();
        for (Backend* be : {&ref(), &cpu}) {
          const std::string backend_label = be->name();
          CAPTURE(backend_label);
          const Packed pc = quantize(*be, xc, c);
          CHECK(pc.codes.to_vector<uint8_t>() == a.codes.to_vector<uint8_t>());
          CHECK(pc.meta.to_vector<uint8_t>() == a.meta.to_vector<uint8_t>());
          CHECK(float_bits(dequantize(*be, a, xc, c)) == float_bits(dequantize(*be, a, x, c).contiguous()));
        }
      }
      // 1-bit masks: bit i = (x[i] != 0) in memory order
      Tensor relu_y = x.relu();
      Tensor ma = empty({(x.numel() + 7) / 8}, TensorOptions().dtype(DType::u8)), mb = ma.clone();
      ref().pack_mask_bits(ma, relu_y);
      cpu.pack_mask_bits(mb, relu_y);
      CHECK(ma.to_vector<uint8_t>() == mb.to_vector<uint8_t>());
      Tensor ua = empty(x.sizes(), TensorOptions()), ub = empty(x.sizes(), TensorOptions());
      ref().unpack_mask_bits(ua, ma);
      cpu.unpack_mask_bits(ub, ma);
      CHECK(ua.to_vector<float>() == ub.to_vector<float>());
      // ReLU's backward straight from the bits (g kept where set, else +0), in x's layout
      const MemoryFormat fmt = cs.channels_last ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
      Tensor ga = empty(cs.s, TensorOptions(), fmt), gb = empty(cs.s, TensorOptions(), fmt);
      const Tensor g = randn(cs.s);  // finite: for a NaN or inf g, ref's a * 0 and cpu's select differ already
      ga.copy_(g);
      gb.copy_(g);
      ref().mask_from_bits_(ga, ma);
      cpu.mask_from_bits_(gb, ma);
      CHECK(same_values(ga, gb));  // the zeros' sign follows each backend's ReluBackward (ref: g * 0)
      // the mask of x itself (NaN counts as non-zero, -0.0 as zero), and of a u8 mask
      ref().pack_mask_bits(ma, x);
      cpu.pack_mask_bits(mb, x);
      CHECK(ma.to_vector<uint8_t>() == mb.to_vector<uint8_t>());
      std::vector<uint8_t> mask(static_cast<size_t>(x.numel()));
      for (auto& m : mask) m = static_cast<uint8_t>(rng() % 3 == 0 ? 0 : rng() % 2);
      const Tensor u8 = from_vector(mask, x.sizes(), TensorOptions().dtype(DType::u8));
      ref().pack_mask_bits(ma, u8);
      cpu.pack_mask_bits(mb, u8);
      CHECK(ma.to_vector<uint8_t>() == mb.to_vector<uint8_t>());
      ++compared;
    }
  }
  cpu::set_cpu_isa_cap(std::nullopt);
  MESSAGE(compared, " cases compared (host ISA ", std::string(cpu::isa_name(cpu::host_isa())), ")");
  CHECK(compared > 0);
}

TEST_CASE("actnn codec: bad calls are clear errors") {
  const Tensor x = rand({2, 10});
  ActnnCodec c = codec_for(x, 2, 12, 1);  // not a multiple of 8
  Tensor codes = empty({8}, TensorOptions().dtype(DType::u8)), meta = empty({16}, TensorOptions().dtype(DType::u8));
  CHECK_THROWS_WITH_AS(ref().actnn_quantize(codes, meta, x, c), doctest::Contains("multiple of 8"), Error);
  c = codec_for(x, 9, 8, 1);
  CHECK_THROWS_WITH_AS(ref().actnn_quantize(codes, meta, x, c), doctest::Contains("not in 1..8"), Error);
  c = codec_for(x, 2, 8, 1);
  c.n = 3;
  c.bits.push_back(2);
  CHECK_THROWS_WITH_AS(ref().actnn_quantize(codes, meta, x, c), doctest::Contains("is not 3 samples"), Error);
}
