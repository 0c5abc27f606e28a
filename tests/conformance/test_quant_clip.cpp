// Conformance of the fused activation-quantizer primitives (quantize_clip_forward / _backward, pact_forward) on every
// non-ref backend against the ref oracle (the Backend base class): both semantics (lower clip 0 / none), level sets on
// the select path (APoT 4-bit, 16 levels) and the binary-search path (64 levels), the uniform rounding path,
// inputs exactly on levels and midpoints (ties go low), odd shapes, permuted / sliced / channels-last layouts,
// sizes that take the parallel path, f32 and f64. The rows join test_conformance.cpp's table (quant_clip_rows()).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "harness.h"
#include "quant/levels.h"

namespace conf {
namespace {

constexpr Tol kExact{0, 0};
constexpr Tol kSum32{2e-6, 1e-5}, kSum64{1e-13, 1e-12};

// The 4-bit unsigned APoT activation levels (spec/quant.md section 1.2: the reference's build_power_value(4, True)
// normalised to max 1), from quant/levels itself, so the rows test the set the quantizers really use.
std::vector<double> apot4_levels() {
  const std::vector<double> lv = quant::levels(quant::Scheme::APoT, 4, false);
  REQUIRE(lv.size() == 16);
  return lv;
}

std::vector<double> uniform_levels(int n) {  // n levels k / (n - 1): more than 32 midpoints takes the search
  std::vector<double> lv;
  for (int k = 0; k < n; ++k) lv.push_back(k / static_cast<double>(n - 1));
  return lv;
}

struct ClipCase {
  std::string name;
  std::vector<double> levels;  // empty: the uniform path with `steps`
  double steps;
  bool lower_clip;  // APoT-I (clip at 0) or APoT-C (no lower clip)
  double alpha;
  Shape s;
  Layout l;
  bool mixed = false;  // mask and coef contiguous while out follows a channels-last x
};

Tensor host_tensor(const std::vector<double>& v, const Shape& s, DType dt) {
  Tensor t64 = from_vector(v, {static_cast<int64_t>(v.size())}, TensorOptions{}.dtype(DType::f64))
                   .as_strided(s, contiguous_strides(s), 0);
  Tensor t = empty(s, TensorOptions{}.dtype(dt));
  ref().copy(t, t64);
  return t;
}

// x = alpha * v with v uniform in [-0.6, 1.6], every third v exactly a level or a midpoint (ties go low) or,
// on the uniform path, a half step (ties to even); alpha a power of two keeps those exact after x / alpha.
Tensor clip_input(const ClipCase& cc, DType dt, Rng& rng) {
  Tensor u = uni(cc.s, DType::f64, rng, -0.6, 1.6);
  std::vector<double> v = u.to_vector<double>();
  for (size_t i = 0; i < v.size(); i += 3) {
    const size_t j = i / 3;
    if (cc.levels.empty()) {
      v[i] = (static_cast<double>(j % static_cast<size_t>(cc.steps + 1)) + (j % 2 ? 0.5 : 0.0)) / cc.steps;
    } else {
      const auto& lv = cc.levels;
      const size_t k = j % lv.size();
      v[i] = (j % 2 || k + 1 == lv.size()) ? lv[k] : (lv[k] + lv[k + 1]) / 2;
    }
  }
  for (double& e : v) e *= cc.alpha;
  return relayout(host_tensor(v, cc.s, dt), cc.l);
}

// An output like the one autograd allocates: channels-last for a channels-last 4-D input when the backend
// prefers that layout, else contiguous; u8 outputs follow the same layout.
Tensor clip_out(Ctx& c, const Tensor& x, DType d) {
  const bool cl = x.memory_format() == MemoryFormat::ChannelsLast && c.be.prefers_channels_last(c.dt);
  if (!cl) return c.out(x.sizes(), d);
  Tensor t = empty(x.sizes(), TensorOptions{}.dtype(d).device(c.dev), MemoryFormat::ChannelsLast);
  c.be.fill(t, is_floating(d) ? std::nan("") : -7.0);
  return t;
}

}  // namespace

std::vector<Row> quant_clip_rows() {
  const std::vector<ClipCase> cases = {
      {"APoT-I 4-bit", apot4_levels(), 0, true, 2.0, {7, 9}, Layout::Contig},
      {"APoT-C 4-bit", apot4_levels(), 0, false, 2.0, {5, 6, 7}, Layout::Permuted},
      {"APoT-I 4-bit alpha 0.7", apot4_levels(), 0, true, 0.7, {3, 5, 7, 11}, Layout::ChannelsLast},
      {"APoT-C 4-bit large", apot4_levels(), 0, false, 1.5, {4, 16, 33, 35}, Layout::ChannelsLast},
      {"APoT-I 4-bit large sliced", apot4_levels(), 0, true, 4.0, {190, 201}, Layout::Sliced},
      {"64 levels (search path)", uniform_levels(64), 0, true, 2.0, {33, 17}, Layout::Contig},
      {"single level", {0.5}, 0, false, 1.0, {11}, Layout::Contig},
      {"uniform I steps 4", {}, 4, true, 2.0, {9, 13}, Layout::Contig},
      {"uniform C steps 15 large", {}, 15, false, 0.5, {2, 8, 47, 49}, Layout::ChannelsLast},
      {"APoT-I 4-bit mixed output layouts", apot4_levels(), 0, true, 2.0, {3, 16, 9, 13}, Layout::ChannelsLast, true},
  };
  std::vector<Row> rows;
  for (const auto& cc : cases) {
    const double lo = cc.lower_clip ? 0.0 : -std::numeric_limits<double>::infinity();
    for (bool save : {true, false}) {
      Row r{"quantize_clip_forward",
            cc.name + (save ? "" : ", no mask/coef") + " " + shape_str(cc.s) + " " + layout_name(cc.l),
            OpKind::Quantize,
            kExact,
            kExact,
            [cc](DType dt, Rng& rng) {
              Inputs in{clip_input(cc, dt, rng), host_tensor({cc.alpha}, {}, dt)};
              if (!cc.levels.empty())
                in.push_back(host_tensor(cc.levels, {static_cast<int64_t>(cc.levels.size())}, dt));
              return in;
            },
            [cc, lo, save](Ctx& c, const Inputs& in) {
              Tensor o = clip_out(c, in[0], c.dt);
              // the mixed case: mask and coef contiguous whatever out is (the kernel must still place them)
              Tensor m = save ? (cc.mixed ? c.out(in[0].sizes(), DType::u8) : clip_out(c, in[0], DType::u8)) : Tensor();
              Tensor k = save ? (cc.mixed ? c.out(in[0].sizes()) : clip_out(c, in[0], c.dt)) : Tensor();
              const Tensor lv = in.size() > 2 ? in[2] : Tensor();
              c.be.quantize_clip_forward(o, m, k, in[0], in[1], lv, cc.steps, lo, 1.0);
              return save ? std::vector<Tensor>{o, m, k} : std::vector<Tensor>{o};
            }};
      r.ask_supports = false;  // the Backend base class has the reference: every backend runs it
      rows.push_back(std::move(r));
    }
  }
  struct BackCase {
    Shape s;
    Layout gy_layout;
    bool saved_cl;  // mask and coef channels-last (as the forward leaves them for a channels-last x)
    bool gx_cl;     // gx channels-last (else contiguous)
    double scale;
  };
  const std::vector<BackCase> back = {{{7, 9}, Layout::Contig, false, false, 1.0},
                                      {{3, 5, 7, 11}, Layout::Permuted, false, false, 0.25},
                                      {{4, 16, 33, 35}, Layout::ChannelsLast, true, true, 1.0 / 3},
                                      {{4, 16, 33, 35}, Layout::ChannelsLast, false, true, 1.0},
                                      {{2, 8, 47, 49}, Layout::Contig, true, false, 2.0},
                                      {{190, 201}, Layout::Sliced, false, false, 1.0}};
  for (const auto& bc : back) {
    const std::string v = shape_str(bc.s) + " gy " + layout_name(bc.gy_layout) + (bc.saved_cl ? ", saved nhwc" : "") +
                          (bc.gx_cl ? ", gx nhwc" : "") + " scale " + std::to_string(bc.scale);
    auto gen = [bc](DType dt, Rng& rng) {
      Tensor m = grid(bc.s, DType::u8, rng, 0, 1);
      Tensor coef = uni(bc.s, dt, rng, -0.5, 1.0);
      if (bc.saved_cl) {
        m = relayout(m, Layout::ChannelsLast);
        coef = relayout(coef, Layout::ChannelsLast);
      }
      return Inputs{relayout(uni(bc.s, dt, rng), bc.gy_layout), m, coef};
    };
    for (bool want_gx : {true, false}) {
      Row r{"quantize_clip_backward",
            v + (want_gx ? " gx and galpha" : " galpha only"),
            OpKind::Quantize,
            want_gx ? kExact : kSum32,
            want_gx ? kExact : kSum64,
            gen,
            [bc, want_gx](Ctx& c, const Inputs& in) {
              Tensor gx, ga = c.out({1});
              if (want_gx) {
                gx = bc.gx_cl ? empty(bc.s, TensorOptions{}.dtype(c.dt).device(c.dev), MemoryFormat::ChannelsLast)
                              : c.out(bc.s);
              }
              c.be.quantize_clip_backward(gx, ga, in[0], in[1], in[2], bc.scale);
              return want_gx ? std::vector<Tensor>{gx} : std::vector<Tensor>{ga};
            }};
      r.ask_supports = false;
      rows.push_back(std::move(r));
    }
  }
  // The backward from the forward's input: the forward's cases (ties, clip edges, layouts) with a gradient in
  // another layout; gx exact, galpha a sum
  for (const auto& cc : cases) {
    const double lo = cc.lower_clip ? 0.0 : -std::numeric_limits<double>::infinity();
    for (bool want_gx : {true, false}) {
      Row r{"quantize_clip_backward_from_input",
            cc.name + " " + shape_str(cc.s) + " " + layout_name(cc.l) + (want_gx ? ", gx and galpha" : ", galpha only"),
            OpKind::Quantize,
            want_gx ? kExact : kSum32,
            want_gx ? kExact : kSum64,
            [cc](DType dt, Rng& rng) {
              Inputs in{clip_input(cc, dt, rng), host_tensor({cc.alpha}, {}, dt),
                        relayout(uni(cc.s, dt, rng), cc.l == Layout::Contig ? Layout::Permuted : Layout::Contig)};
              if (!cc.levels.empty())
                in.push_back(host_tensor(cc.levels, {static_cast<int64_t>(cc.levels.size())}, dt));
              return in;
            },
            [cc, lo, want_gx](Ctx& c, const Inputs& in) {
              Tensor gx = want_gx ? clip_out(c, in[0], c.dt) : Tensor(), ga = c.out({1});
              const Tensor lv = in.size() > 3 ? in[3] : Tensor();
              c.be.quantize_clip_backward_from_input(gx, ga, in[2], in[0], in[1], lv, cc.steps, lo, 1.0, 0.5);
              return want_gx ? std::vector<Tensor>{gx} : std::vector<Tensor>{ga};
            }};
      r.ask_supports = false;
      rows.push_back(std::move(r));
    }
  }
  // PACT: x around [-0.5 a, 1.5 a] with exact 0, alpha and grid half-steps mixed in; k for 2, 4 and 8 bits
  struct PactCase {
    double k, alpha;
    Shape s;
    Layout l;
  };
  const std::vector<PactCase> pact = {{3, 1.5, {7, 9}, Layout::Contig},
                                      {15, 0.8, {3, 5, 7, 11}, Layout::ChannelsLast},
                                      {15, 2.0, {5, 6, 7}, Layout::Permuted},
                                      {255, 4.0, {4, 16, 33, 35}, Layout::ChannelsLast},
                                      {15, 1.0, {190, 201}, Layout::Sliced}};
  for (const auto& pc : pact) {
    for (bool save : {true, false}) {
      Row r{"pact_forward",
            "k " + std::to_string(static_cast<int>(pc.k)) + (save ? "" : ", no mask/coef") + " " + shape_str(pc.s) +
                " " + layout_name(pc.l),
            OpKind::Quantize,
            kExact,
            kExact,
            [pc](DType dt, Rng& rng) {
              std::vector<double> v = uni(pc.s, DType::f64, rng, -0.5 * pc.alpha, 1.5 * pc.alpha).to_vector<double>();
              for (size_t i = 0; i < v.size(); i += 4) {
                const size_t j = (i / 4) % 4;
                v[i] = j == 0 ? 0.0 : j == 1 ? pc.alpha : (static_cast<double>(i % 7) + 0.5) * pc.alpha / pc.k;
              }
              return Inputs{relayout(host_tensor(v, pc.s, dt), pc.l), host_tensor({pc.alpha}, {}, dt)};
            },
            [pc, save](Ctx& c, const Inputs& in) {
              Tensor o = clip_out(c, in[0], c.dt);
              Tensor m = save ? clip_out(c, in[0], DType::u8) : Tensor();
              Tensor k = save ? clip_out(c, in[0], c.dt) : Tensor();
              c.be.pact_forward(o, m, k, in[0], in[1], pc.k);
              return save ? std::vector<Tensor>{o, m, k} : std::vector<Tensor>{o};
            }};
      r.ask_supports = false;
      rows.push_back(std::move(r));
    }
    // its backward from the input, with a gradient in another layout: gx exact, galpha a sum
    for (bool want_gx : {true, false}) {
      Row r{"pact_backward_from_input",
            "k " + std::to_string(static_cast<int>(pc.k)) + " " + shape_str(pc.s) + " " + layout_name(pc.l) +
                (want_gx ? ", gx and galpha" : ", galpha only"),
            OpKind::Quantize,
            want_gx ? kExact : kSum32,
            want_gx ? kExact : kSum64,
            [pc](DType dt, Rng& rng) {
              std::vector<double> v = uni(pc.s, DType::f64, rng, -0.5 * pc.alpha, 1.5 * pc.alpha).to_vector<double>();
              for (size_t i = 0; i < v.size(); i += 4) v[i] = (i / 4) % 2 == 0 ? 0.0 : pc.alpha;  // both edges
              return Inputs{relayout(host_tensor(v, pc.s, dt), pc.l), host_tensor({pc.alpha}, {}, dt),
                            relayout(uni(pc.s, dt, rng), pc.l == Layout::Contig ? Layout::Permuted : Layout::Contig)};
            },
            [pc, want_gx](Ctx& c, const Inputs& in) {
              Tensor gx = want_gx ? clip_out(c, in[0], c.dt) : Tensor(), ga = c.out({1});
              c.be.pact_backward_from_input(gx, ga, in[2], in[0], in[1], pc.k, 0.5);
              return want_gx ? std::vector<Tensor>{gx} : std::vector<Tensor>{ga};
            }};
      r.ask_supports = false;
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

}  // namespace conf
