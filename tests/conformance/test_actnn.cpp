// Conformance of the ActNN codec primitives (actnn_quantize / actnn_dequantize, pack_mask_bits /
// unpack_mask_bits) on every non-ref backend against the ref oracle (the Backend base class): codes and metadata
// byte for byte, decoded values exactly. Cases: fixed 1/2/4/8 bits and per-sample mixed bits (also 3, 5, 6, 7),
// groups smaller and larger than a sample (padding), one range per tensor, f32 and bf16 metadata, contiguous and
// channels-last inputs, sizes that take the parallel path. The rows join test_conformance.cpp's table
// (actnn_rows()).
#include <doctest/doctest.h>

#include "harness.h"

namespace conf {
namespace {

constexpr Tol kExact{0, 0};

struct CodecCase {
  std::string name;
  Shape s;
  Layout l;
  std::vector<uint8_t> bits;  // one entry: every sample
  int64_t group;
  bool bf16, per_group;
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

Tensor bytes_out(Ctx& c, int64_t n) { return c.out({n}, DType::u8); }

/// A ReLU output: about half the elements exactly 0.
Tensor unary_relu_input(const Shape& s, DType dt, Rng& rng) {
  Tensor t = uni(s, dt, rng);
  ref().unary(UnaryOp::Relu, t, t, UnaryParams{});
  return t;
}

}  // namespace

std::vector<Row> actnn_rows() {
  const std::vector<CodecCase> cases = {
      {"2-bit", {4, 16, 8, 8}, Layout::Contig, {2}, 256, true, true},
      {"1-bit nhwc", {3, 16, 9, 9}, Layout::ChannelsLast, {1}, 256, true, true},
      {"4-bit f32 meta", {5, 300}, Layout::Contig, {4}, 64, false, true},
      {"8-bit padded", {3, 5, 7, 11}, Layout::Contig, {8}, 256, true, true},
      {"mixed [2,8,1,4]", {4, 3, 10, 10}, Layout::Contig, {2, 8, 1, 4}, 256, true, true},
      {"mixed 3/5/6/7 group 512", {4, 1000}, Layout::Contig, {3, 5, 6, 7}, 512, false, true},
      {"one range per tensor", {6, 4, 5, 5}, Layout::Contig, {2}, 32, true, false},
      {"large nhwc (parallel)", {64, 16, 16, 16}, Layout::ChannelsLast, {2}, 256, true, true},
  };
  std::vector<Row> rows;
  for (const auto& cc : cases) {
    Row q{"actnn_quantize",
          cc.name + " " + shape_str(cc.s) + " " + layout_name(cc.l),
          OpKind::Quantize,
          kExact,
          kExact,
          [cc](DType dt, Rng& rng) { return Inputs{relayout(uni(cc.s, dt, rng, -3.0, 2.0), cc.l)}; },
          [cc](Ctx& c, const Inputs& in) {
            const ActnnCodec codec = codec_of(cc, in[0]);
            Tensor codes = bytes_out(c, codec.code_bytes()), meta = bytes_out(c, codec.meta_bytes());
            c.be.actnn_quantize(codes, meta, in[0], codec);
            return std::vector<Tensor>{codes, meta};
          },
          {DType::f32}};
    q.ask_supports = false;  // the Backend base class has the reference: every backend runs it
    rows.push_back(std::move(q));
    Row d{"actnn_dequantize",
          cc.name + " " + shape_str(cc.s) + " " + layout_name(cc.l),
          OpKind::Quantize,
          kExact,
          kExact,
          [cc](DType dt, Rng& rng) {
            // the codes and metadata the oracle makes from a random input (so every byte pattern is plausible)
            const Tensor x = relayout(uni(cc.s, dt, rng, -3.0, 2.0), cc.l);
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
          {DType::f32}};
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
          {DType::f32, DType::f64}};
    u.ask_supports = false;
    rows.push_back(std::move(u));
  }
  return rows;
}

}  // namespace conf
