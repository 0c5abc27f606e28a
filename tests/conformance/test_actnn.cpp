// Conformance of the ActNN codec primitives (actnn_quantize / actnn_dequantize, pack_mask_bits /
// unpack_mask_bits) on every non-ref backend against the ref oracle (the Backend base class): codes and metadata
// byte for byte, decoded values exactly. Cases: every fixed width 1..8 and per-sample mixed widths, groups of 8
// to 2048 (one GPU thread per group up to 16 elements, one block above, several chunks above 1024) with tails
// (padding), one range per tensor, f32 and bf16 metadata, f32 and f64 inputs, contiguous and channels-last
// inputs, ties with both signed zeros, constant groups and NaN (the range must be the element ref's fold picks),
// sizes that take the parallel path; masks of every dtype. (A width of 0 is not a codec width: validate()
// rejects it, tests/cuda/test_cuda_host.cpp checks the error.) The rows join test_conformance.cpp's table
// (actnn_rows()).
#include <doctest/doctest.h>

#include "harness.h"

namespace conf {
namespace {

constexpr Tol kExact{0, 0};

/// What the input holds. Ties: values on a coarse grid with +0.0 and -0.0 both present; sample 0 constant
/// (constant groups code to 0), sample 1 non-negative and sample 2 non-positive (their groups' min / max is a
/// zero, and the first zero's sign must end up in the metadata, as in ref); Nan: Ties plus NaN at a group's first
/// element and in a group's middle (ref's fold keeps a leading NaN and skips the others), and for 4-d shapes at
/// channel 1's first pixel (inside a group of whole channels, where the fold skips it).
enum class Values { Uniform, Ties, Nan };

struct CodecCase {
  std::string name;
  Shape s;
  Layout l;
  std::vector<uint8_t> bits;  // one entry: every sample
  int64_t group;
  bool bf16, per_group;
  Values values = Values::Uniform;
};

ActnnCodec codec_of(const CodecCase& cc, const Tensor& x) {
  ActnnCodec c;
  c.n = x.size(0);
  c.f = x.numel() / c.n;
  c.group = cc.group;
  c.bf16_meta = cc.bf16;
  c.per_group = cc.per_group;
  c.key = 0x5eed0000ULL + static_cast<uint64_t>(cc.group);
  c.bits = cc.bits.size() == 1 ? std::vector<uint8_t>(static_cast<size_t>(c.n), cc.bits[0]) : cc.bits;
  return c;
}

Tensor codec_input(const CodecCase& cc, DType dt, Rng& rng) {
  if (cc.values == Values::Uniform) return relayout(uni(cc.s, dt, rng, -3.0, 2.0), cc.l);
  Tensor t = grid(cc.s, DType::f64, rng, -2, 2, 0.5);
  double* p = t.data<double>();
  const int64_t per_sample = t.numel() / cc.s[0];
  std::bernoulli_distribution coin(0.5);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t n = i / per_sample;
    if (n == 0) p[i] = 0.75;                         // sample 0: constant
    if (n == 1) p[i] = std::abs(p[i]);               // sample 1: every group's min is a zero
    if (n == 2) p[i] = -std::abs(p[i]);              // sample 2: every group's max is a zero
    if (p[i] == 0.0) p[i] = coin(rng) ? -0.0 : 0.0;  // both zeros, in random order
  }
  if (cc.values == Values::Nan) {
    p[per_sample + std::min<int64_t>(cc.group, per_sample - 1)] = std::nan("");  // sample 1: a group's first
    p[per_sample + 3] = std::nan("");                                            // ... and its first group's middle
    if (cc.s.size() == 4) p[per_sample + cc.s[2] * cc.s[3]] = std::nan("");      // ... and channel 1's first pixel
  }
  Tensor x = t;
  if (dt != DType::f64) {
    x = empty(cc.s, TensorOptions{}.dtype(dt));
    ref().copy(x, t);
  }
  return relayout(x, cc.l);
}

Tensor bytes_out(Ctx& c, int64_t n) { return c.out({n}, DType::u8); }

/// A ReLU output: about half the elements exactly 0.
Tensor unary_relu_input(const Shape& s, DType dt, Rng& rng) {
  Tensor t = uni(s, dt, rng);
  ref().unary(UnaryOp::Relu, t, t, UnaryParams{});
  return t;
}

}  // namespace

std::vector<Row> actnn_rows() {
  using L = Layout;
  const std::vector<CodecCase> cases = {
      {"2-bit", {4, 16, 8, 8}, L::Contig, {2}, 256, true, true},
      {"1-bit nhwc", {3, 16, 9, 9}, L::ChannelsLast, {1}, 256, true, true},
      {"3-bit group tail", {2, 777}, L::Contig, {3}, 128, true, true},
      {"4-bit f32 meta", {5, 300}, L::Contig, {4}, 64, false, true},
      {"5-bit f32 meta", {3, 520}, L::Contig, {5}, 256, false, true},
      {"6-bit group 16", {2, 3, 17}, L::Contig, {6}, 16, true, true},
      {"7-bit group 8", {3, 45}, L::Contig, {7}, 8, true, true},
      {"8-bit padded", {3, 5, 7, 11}, L::Contig, {8}, 256, true, true},
      {"one sample", {1, 100}, L::Contig, {4}, 256, true, true},
      {"mixed [2,8,1,4]", {4, 3, 10, 10}, L::Contig, {2, 8, 1, 4}, 256, true, true},
      {"mixed 3/5/6/7 group 512", {4, 1000}, L::Contig, {3, 5, 6, 7}, 512, false, true},
      {"mixed 1..8 group 2048", {8, 2500}, L::Contig, {1, 2, 3, 4, 5, 6, 7, 8}, 2048, true, true},
      {"one range per tensor", {6, 4, 5, 5}, L::Contig, {2}, 32, true, false},
      {"one range per tensor, mixed, padded",
       {16, 3000},
       L::Contig,
       {8, 1, 2, 4, 2, 2, 3, 8, 1, 1, 5, 6, 7, 2, 2, 4},
       256,
       false,
       false},
      {"ties and signed zeros", {4, 2, 9, 9}, L::Contig, {2}, 64, true, true, Values::Ties},
      {"ties, one range, group 8", {3, 50}, L::Contig, {4, 1, 8}, 8, true, false, Values::Ties},
      {"NaN", {3, 300}, L::Contig, {2, 4, 8}, 128, false, true, Values::Nan},
      {"large nhwc (parallel)", {64, 16, 16, 16}, L::ChannelsLast, {2}, 256, true, true},
      // channels-last with groups inside a channel and of whole channels (coded in place on AVX2 hosts)
      {"nhwc mixed 1..8", {8, 16, 8, 8}, L::ChannelsLast, {1, 2, 3, 4, 5, 6, 7, 8}, 256, true, true},
      {"nhwc ties, two groups per plane",
       {4, 32, 16, 16},
       L::ChannelsLast,
       {2, 4, 1, 2},
       128,
       false,
       true,
       Values::Ties},
      {"nhwc NaN, groups of 2 channels", {3, 16, 8, 8}, L::ChannelsLast, {2, 3, 8}, 128, true, true, Values::Nan},
  };
  std::vector<Row> rows;
  for (const auto& cc : cases) {
    Row q{"actnn_quantize",
          cc.name + " " + shape_str(cc.s) + " " + layout_name(cc.l),
          OpKind::Quantize,
          kExact,
          kExact,
          [cc](DType dt, Rng& rng) { return Inputs{codec_input(cc, dt, rng)}; },
          [cc](Ctx& c, const Inputs& in) {
            const ActnnCodec codec = codec_of(cc, in[0]);
            Tensor codes = bytes_out(c, codec.code_bytes()), meta = bytes_out(c, codec.meta_bytes());
            c.be.actnn_quantize(codes, meta, in[0], codec);
            return std::vector<Tensor>{codes, meta};
          },
          {DType::f32, DType::f64}};
    q.ask_supports = false;  // the Backend base class has the reference: every backend runs it
    rows.push_back(std::move(q));
    Row d{"actnn_dequantize",
          cc.name + " " + shape_str(cc.s) + " " + layout_name(cc.l),
          OpKind::Quantize,
          kExact,
          kExact,
          [cc](DType dt, Rng& rng) {
            // the codes and metadata the oracle makes from a random input (so every byte pattern is plausible)
            const Tensor x = codec_input(cc, dt, rng);
            const ActnnCodec codec = codec_of(cc, x);
            Tensor codes = empty({codec.code_bytes()}, TensorOptions().dtype(DType::u8));
            Tensor meta = empty({codec.meta_bytes()}, TensorOptions().dtype(DType::u8));
            ref().actnn_quantize(codes, meta, x, codec);
            return Inputs{x, codes, meta};
          },
          [cc](Ctx& c, const Inputs& in) {
            const ActnnCodec codec = codec_of(cc, in[0]);
            Tensor out =
                in[0].is_channels_last() && !in[0].is_contiguous()
                    ? empty(in[0].sizes(), TensorOptions().dtype(c.dt).device(c.dev), MemoryFormat::ChannelsLast)
                    : c.out(in[0].sizes());
            c.be.actnn_dequantize(out, in[1], in[2], codec);
            return std::vector<Tensor>{out};
          },
          {DType::f32, DType::f64}};
    d.ask_supports = false;
    rows.push_back(std::move(d));
  }
  for (const auto& [s, l] : std::vector<std::pair<Shape, Layout>>{{{3, 5, 7, 11}, Layout::Contig},
                                                                  {{4, 16, 9, 9}, Layout::ChannelsLast},
                                                                  {{64, 16, 16, 16}, Layout::Contig}}) {
    Row p{"pack_mask_bits",
          "relu output " + shape_str(s) + " " + layout_name(l),
          OpKind::Quantize,
          kExact,
          kExact,
          [s, l](DType dt, Rng& rng) { return Inputs{relayout(unary_relu_input(s, dt, rng), l)}; },
          [](Ctx& c, const Inputs& in) {
            Tensor bits = bytes_out(c, (in[0].numel() + 7) / 8);
            c.be.pack_mask_bits(bits, in[0]);
            return std::vector<Tensor>{bits};
          },
          {DType::f32, DType::f64}};
    p.ask_supports = false;
    rows.push_back(p);
    // a quantizer's u8 STE mask (the dtype argument only seeds the values)
    p.variant = "u8 mask " + shape_str(s) + " " + layout_name(l);
    p.gen = [s, l](DType, Rng& rng) {
      Tensor t = grid(s, DType::f64, rng, 0, 1);  // 0 or 1
      Tensor u = empty(s, TensorOptions().dtype(DType::u8));
      ref().copy(u, t);
      return Inputs{relayout(u, l)};
    };
    p.dtypes = {DType::f32};
    rows.push_back(p);
    // integer tensors: -1, 0 or 1
    p.variant = "integers " + shape_str(s) + " " + layout_name(l);
    p.gen = [s, l](DType dt, Rng& rng) { return Inputs{relayout(grid(s, dt, rng, -1, 1), l)}; };
    p.dtypes = {DType::i32, DType::i64};
    rows.push_back(std::move(p));
    Row u{"unpack_mask_bits",
          shape_str(s),
          OpKind::Quantize,
          kExact,
          kExact,
          [s](DType, Rng& rng) {
            std::uniform_int_distribution<int> d(0, 255);
            std::vector<uint8_t> v(static_cast<size_t>((shape_numel(s) + 7) / 8));
            for (auto& b : v) b = static_cast<uint8_t>(d(rng));
            return Inputs{from_vector(v, {static_cast<int64_t>(v.size())}, TensorOptions().dtype(DType::u8))};
          },
          [s](Ctx& c, const Inputs& in) {
            Tensor out = c.out(s);
            c.be.unpack_mask_bits(out, in[0]);
            return std::vector<Tensor>{out};
          },
          {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8}};
    u.ask_supports = false;
    rows.push_back(u);
    // ReLU's backward from the bits: g in place, kept where the bit is set, else +0
    Row m{"mask_from_bits_",
          shape_str(s),
          OpKind::Quantize,
          kExact,
          kExact,
          [s, gen = u.gen](DType dt, Rng& rng) {
            Inputs in = gen(dt, rng);
            in.push_back(uni(s, dt, rng, -2.0, 2.0));
            return in;
          },
          [](Ctx& c, const Inputs& in) {
            Tensor g = c.out(in[1].sizes());
            c.be.copy(g, in[1]);
            c.be.mask_from_bits_(g, in[0]);
            return std::vector<Tensor>{g};
          },
          {DType::f32, DType::f64}};
    m.ask_supports = false;
    rows.push_back(std::move(m));
  }
  return rows;
}

}  // namespace conf
