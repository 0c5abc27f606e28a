// Quantizer node patterns (see onnx_quant_nodes.h). Each pattern is checked against minidl's own fake-quantized
// tensor where that is a constant (weights), so an exported grid never silently differs from the trained one.
#include "quant/onnx/onnx_quant_nodes.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "autograd/grad_mode.h"
#include "quant/ops.h"

namespace minidl::quant::onnx_export {

namespace {

std::vector<float> host_floats(const Tensor& t) { return t.to(DType::f32).contiguous().to_vector<float>(); }
std::vector<int64_t> dims_of(const Tensor& t) { return {t.sizes().begin(), t.sizes().end()}; }

// QuantizeLinear -> Clip -> DequantizeLinear on `x`. Codes are int8 (signed) or uint8 with zero point 0;
// q_scale quantizes and dq_scale dequantizes (they differ only for PACT, whose reference divides by alpha + 1e-6
// and multiplies by alpha).
// `doc`, when given, records minidl's own quantizer parameters on the QuantizeLinear node (doc_string), so a
// checker can recompute minidl's formula on the same input and compare codes (tests/onnx/check_onnx_export.py).
std::string qcdq(GraphBuilder& g, const std::string& name, const std::string& x, float q_scale, float dq_scale, int lo,
                 int hi, bool is_signed, OnnxExportReport& report, const std::string& doc = "") {
  const std::string qs = g.float_scalar(name + ".scale", q_scale);
  const std::string dqs = q_scale == dq_scale ? qs : g.float_scalar(name + ".dequant_scale", dq_scale);
  const std::string zp = g.int8_scalar(name + ".zero_point", 0, is_signed);
  auto* q = g.node("QuantizeLinear", {x, qs, zp}, name + ".quantize");
  if (!doc.empty()) q->set_doc_string(doc);
  auto* c = g.node("Clip",
                   {q->output(0), g.int8_scalar(name + ".clip_min", lo, is_signed),
                    g.int8_scalar(name + ".clip_max", hi, is_signed)},
                   name + ".clip");
  auto* d = g.node("DequantizeLinear", {c->output(0), dqs, zp}, name + ".dequantize");
  ++report.qcdq_patterns;
  return d->output(0);
}

// {"minidl": "uniform", "alpha": 2.5, "steps": 15}: alpha printed with 9 significant digits, which round-trips
// a float32 exactly.
std::string quantizer_doc(const char* kind, double alpha, double steps) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "{\"minidl\": \"%s\", \"alpha\": %.9g, \"steps\": %.9g}", kind,
                static_cast<double>(static_cast<float>(alpha)), steps);
  return buf;
}

int bit_length(int64_t v) { return static_cast<int>(std::bit_width(static_cast<uint64_t>(v))); }

// The uniform-grid weight patterns (uniform / ternary / 8-bit signed-max): `init` is the float tensor the
// QuantizeLinear reads, `quantized` minidl's result. A weight whose quotient init / scale rounds to another code
// than minidl's (a float tie between two codes) gets minidl's code times the scale as its initializer value.
std::string uniform_weight(GraphBuilder& g, const std::string& layer, std::vector<float> init,
                           const std::vector<float>& quantized, const std::vector<int64_t>& dims, float scale, int lo,
                           int hi, OnnxExportReport& report) {
  for (size_t i = 0; i < init.size(); ++i) {
    const double code = std::nearbyint(static_cast<double>(quantized[i]) / static_cast<double>(scale));
    MINIDL_CHECK(code >= lo && code <= hi &&
                     std::fabs(code * scale - quantized[i]) <= 1e-5 * std::max(1.0f, std::fabs(quantized[i])),
                 "onnx export: ", layer, ".weight[", i, "] = ", quantized[i], " is not on the grid of scale ", scale,
                 " with codes ", lo, "..", hi);
    const float ort = std::min<float>(std::max<float>(std::nearbyintf(init[i] / scale), static_cast<float>(lo)),
                                      static_cast<float>(hi));
    if (static_cast<double>(ort) != code) {
      init[i] = static_cast<float>(code) * scale;
      MINIDL_CHECK(static_cast<double>(std::nearbyintf(init[i] / scale)) == code, "onnx export: ", layer, ".weight[", i,
                   "]: cannot place code ", code, " exactly");
      ++report.weight_tie_fixes;
    }
  }
  return qcdq(g, layer + ".weight_quant", g.floats(layer + ".weight", init, dims), scale, scale, lo, hi, true, report);
}

}  // namespace

std::string emit_weight(GraphBuilder& g, const std::string& layer, const Tensor& weight, WeightQuantizer& wqz,
                        const Tensor& quantized, OnnxExportReport& report) {
  const QuantSpec& spec = wqz.spec;
  const std::vector<int64_t> dims = dims_of(weight);
  const std::vector<float> w = host_floats(weight);
  if (!spec.weight_quantized()) return g.floats(layer + ".weight", w, dims);
  const std::vector<float> wq = host_floats(quantized);
  switch (spec.weight) {
    case WeightQuant::SignedMax8: {
      // codes = round(127 * w / max(w)), out = codes * max / 127: int8 codes of scale max / 127.
      float m = w[0];
      for (float v : w) m = std::max(m, v);
      const bool clamped = spec.semantics != Semantics::APoT_C;
      const float scale = static_cast<float>(static_cast<double>(m) / 127.0);
      for (size_t i = 0; i < wq.size(); ++i) {
        MINIDL_CHECK(std::nearbyint(wq[i] / scale) >= -128.0, "onnx export: ", layer,
                     ": APoT-C's unclamped 8-bit weight codes go below -128 (weight ", w[i], ", max ", m,
                     "); int8 cannot hold them");
      }
      return uniform_weight(g, layer, w, wq, dims, scale, clamped ? -127 : -128, 127, report);
    }
    case WeightQuant::Binary: {
      if (spec.binary_from_optimizer) {
        // The optimizer wrote the binarised values into the parameter: BipolarQuant when they are one +-scale,
        // else (weights that crossed zero by less than the threshold keep alpha * latent) plain floats.
        const float a = std::fabs(w[0]);
        bool bipolar = a > 0.0f;
        for (float v : w) bipolar = bipolar && std::fabs(v) == a;
        if (!bipolar) {
          report.notes.push_back(layer +
                                 ": binary weights from the hysteresis optimizer include values that are "
                                 "not +-scale; exported as the float values the model uses");
          return g.floats(layer + ".weight", w, dims);
        }
        auto* n =
            g.node("BipolarQuant", {g.floats(layer + ".weight", w, dims), g.float_scalar(layer + ".weight_scale", a)},
                   layer + ".weight_quant", kQonnxDomain);
        ++report.qonnx_nodes;
        return n->output(0);
      }
      // minidl: mean(|w|) * sign(w); BipolarQuant: scale * (w >= 0 ? 1 : -1). They differ only at w == 0.
      double s = 0.0;
      for (float v : w) s += std::fabs(v);
      for (size_t i = 0; i < w.size(); ++i) {
        MINIDL_CHECK(w[i] != 0.0f, "onnx export: ", layer, ".weight[", i,
                     "] is exactly 0: minidl binarises it to 0, BipolarQuant to +scale");
      }
      const float scale = std::fabs(wq[0]);
      MINIDL_CHECK(std::fabs(scale - s / static_cast<double>(w.size())) <= 1e-6 * scale, "onnx export: ", layer,
                   ": binary scale ", scale, " is not mean |w|");
      auto* n =
          g.node("BipolarQuant", {g.floats(layer + ".weight", w, dims), g.float_scalar(layer + ".weight_scale", scale)},
                 layer + ".weight_quant", kQonnxDomain);
      ++report.qonnx_nodes;
      return n->output(0);
    }
    default: break;
  }
  // Uniform / PoT / APoT: standardised weights (a constant of the trained weight in eval mode), clip alpha.
  const double alpha = wqz.wgt_alpha.item<double>();
  const LevelSet& ls = wqz.levels;
  if (ls.rounding) {
    // round(clamp(w_hat / alpha, -1, 1) * s) / s * alpha: int8 codes -s..s of scale alpha / s.
    NoGradGuard no_grad;
    const Tensor z = weight_standardize(weight, spec.semantics == Semantics::APoT_C);
    const int s = static_cast<int>(ls.steps);
    return uniform_weight(g, layer, host_floats(z), wq, dims, static_cast<float>(alpha / ls.steps), -s, s, report);
  }
  // PoT / APoT: the projection onto the non-uniform set is a constant of the trained weight, done at export:
  // the initializer holds minidl's projected weights, and the Quant node states the integer grid they lie on
  // (codes n * sign, n from the level set, unit alpha / n_max), so a QONNX consumer recovers the integer codes.
  int64_t n_max = 0;
  const std::vector<int64_t> codes = integer_levels(ls, n_max);
  const float scale = static_cast<float>(alpha / static_cast<double>(n_max));
  for (size_t i = 0; i < wq.size(); ++i) {
    const double c = std::fabs(std::nearbyint(static_cast<double>(wq[i]) / scale));
    const bool on_grid = std::find(codes.begin(), codes.end(), static_cast<int64_t>(c)) != codes.end() &&
                         std::fabs(c * scale - std::fabs(wq[i])) <= 1e-5 * std::max(1.0f, std::fabs(wq[i]));
    MINIDL_CHECK(on_grid, "onnx export: ", layer, ".weight[", i, "] = ", wq[i], " is not on the ", ls.str(),
                 " grid of unit ", scale);
  }
  const int bits = bit_length(n_max) + 1;  // sign + magnitude, narrow range +-(2^(bits-1) - 1)
  auto* n = g.node("Quant",
                   {g.floats(layer + ".weight", wq, dims), g.float_scalar(layer + ".weight_scale", scale),
                    g.float_scalar(layer + ".weight_zero_point", 0.0f),
                    g.float_scalar(layer + ".weight_bitwidth", static_cast<float>(bits))},
                   layer + ".weight_quant", kQonnxDomain);
  GraphBuilder::attr(n, "signed", int64_t{1});
  GraphBuilder::attr(n, "narrow", int64_t{1});
  GraphBuilder::attr(n, "rounding_mode", std::string("ROUND"));
  ++report.qonnx_nodes;
  return n->output(0);
}

std::string emit_activation(GraphBuilder& g, const std::string& layer, const std::string& x, const QuantSpec& spec,
                            const Tensor& act_alpha, const LevelSet& act_levels, const std::string& layout,
                            OnnxExportReport& report) {
  if (!spec.act_quantized()) return x;
  const std::string name = layer + ".act_quant";
  switch (spec.act) {
    case ActQuant::IntGrid: {  // clamp(round(x), 0, k): uint8 codes of scale 1
      const int k = (1 << spec.act_bits) - 1;
      return qcdq(g, name, x, 1.0f, 1.0f, 0, k, false, report, quantizer_doc("intgrid", 1.0, k));
    }
    case ActQuant::PACT: {  // clamp(round(x * k / (alpha + 1e-6)), 0, k) * alpha / k
      const int k = (1 << spec.act_bits) - 1;
      const double a = act_alpha.item<double>();
      return qcdq(g, name, x, static_cast<float>((a + 1e-6) / k), static_cast<float>(a / k), 0, k, false, report,
                  quantizer_doc("pact", a, k));
    }
    default: break;
  }
  const double alpha = act_alpha.item<double>();
  if (act_levels.rounding) {
    // round(clamp(x / alpha, 0, 1) * s) / s * alpha: uint8 codes 0..s of scale alpha / s. (APoT-C clips only
    // above; its inputs here are post-ReLU, so the lower saturation at code 0 never acts.)
    const int s = static_cast<int>(act_levels.steps);
    const float scale = static_cast<float>(alpha / act_levels.steps);
    return qcdq(g, name, x, scale, scale, 0, s, false, report,
                quantizer_doc(spec.semantics == Semantics::APoT_C ? "uniform-c" : "uniform", alpha, s));
  }
  // PoT / APoT: nearest level by midpoint thresholds. Each midpoint between levels n_k and n_{k+1} (integer
  // codes) is listed n_{k+1} - n_k times, so MultiThreshold's count of thresholds <= x is the code itself; a
  // standard Mul by alpha / n_max turns it into the level.
  int64_t n_max = 0;
  const std::vector<int64_t> codes = integer_levels(act_levels, n_max);
  MINIDL_CHECK(n_max <= 65536, "onnx export: ", layer, ": the ", act_levels.str(), " activation grid needs ", n_max,
               " thresholds (more than 65536)");
  const std::vector<float> lv = host_floats(act_levels.magnitudes);
  std::vector<float> thresholds;
  for (size_t k = 0; k + 1 < lv.size(); ++k) {
    const float t = static_cast<float>(alpha * (static_cast<double>(lv[k]) + static_cast<double>(lv[k + 1])) / 2.0);
    for (int64_t r = codes[k]; r < codes[k + 1]; ++r) thresholds.push_back(t);
  }
  const int64_t count = static_cast<int64_t>(thresholds.size());
  auto* mt = g.node("MultiThreshold", {x, g.floats(name + ".thresholds", thresholds, {1, count})}, name + ".threshold",
                    kQonnxDomain);
  GraphBuilder::attr(mt, "out_dtype", "UINT" + std::to_string(bit_length(n_max)));
  GraphBuilder::attr(mt, "out_scale", 1.0f);
  GraphBuilder::attr(mt, "out_bias", 0.0f);
  GraphBuilder::attr(mt, "data_layout", layout);
  // minidl's own projection parameters, for checkers that recompute it on the same input (as quantizer_doc).
  std::string doc = quantizer_doc("levels", alpha, static_cast<double>(n_max));
  doc.pop_back();
  doc += ", \"levels\": [";
  for (size_t k = 0; k < lv.size(); ++k) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.9g", k ? ", " : "", static_cast<double>(lv[k]));
    doc += buf;
  }
  doc += "], \"codes\": [";
  for (size_t k = 0; k < codes.size(); ++k) doc += (k ? ", " : "") + std::to_string(codes[k]);
  doc += "]}";
  mt->set_doc_string(doc);
  ++report.qonnx_nodes;
  auto* mul = g.node("Mul", {mt->output(0), g.float_scalar(name + ".unit", static_cast<float>(alpha / n_max))},
                     name + ".scale");
  return mul->output(0);
}

}  // namespace minidl::quant::onnx_export
