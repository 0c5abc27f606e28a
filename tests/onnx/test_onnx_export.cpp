// quant::export_onnx: the written file passes ONNX's own C++ checker (libonnx), holds the node pattern of each
// scheme (QCDQ with the b-bit Clip bounds, QONNX Quant / MultiThreshold / BipolarQuant), and its weight
// patterns reproduce minidl's fake-quantized weights (codes x scale == quantized_weight()). End to end against
// onnxruntime: examples/cifar_resnet20/tests/onnx_export.sh.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "autograd/grad_mode.h"
#include "quant/onnx/onnx_export.h"
#include "quant/quant_layers.h"
#include "quant/quant_resnet.h"
#include "test_skip.h"

#if MINIDL_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#endif

using namespace minidl;
namespace fs = std::filesystem;

#if MINIDL_HAVE_ONNX
namespace {

struct Exported {
  onnx::ModelProto model;
  quant::OnnxExportReport report;
  std::map<std::string, const onnx::TensorProto*> init;
  std::map<std::string, int> ops;
  const onnx::NodeProto* producer(const std::string& output) const {
    for (const auto& n : model.graph().node())
      if (n.output(0) == output) return &n;
    return nullptr;
  }
};

Exported export_and_read(nn::ResNet& m, const std::string& tag) {
  const fs::path path = fs::temp_directory_path() / ("minidl_test_onnx_" + tag + ".onnx");
  Exported e;
  e.report = quant::export_onnx(m, path.string());
  std::ifstream f(path, std::ios::binary);
  REQUIRE(e.model.ParseFromIstream(&f));
  onnx::checker::check_model(e.model);  // throws onnx::checker::ValidationError on an invalid model
  fs::remove(path);
  for (const auto& t : e.model.graph().initializer()) e.init[t.name()] = &t;
  for (const auto& n : e.model.graph().node()) ++e.ops[n.op_type()];
  return e;
}

// Every QuantizeLinear -> Clip -> DequantizeLinear of the graph, found from its DequantizeLinear.
struct Qcdq {
  const onnx::NodeProto *q, *clip, *dq;
};
std::vector<Qcdq> qcdq_patterns(const Exported& e) {
  std::vector<Qcdq> out;
  for (const auto& n : e.model.graph().node()) {
    if (n.op_type() != "DequantizeLinear") continue;
    const onnx::NodeProto* clip = e.producer(n.input(0));
    REQUIRE(clip);
    out.push_back({e.producer(clip->input(0)), clip, &n});
  }
  return out;
}

std::vector<float> floats(const onnx::TensorProto& t) {
  std::vector<float> v(t.raw_data().size() / sizeof(float));
  std::memcpy(v.data(), t.raw_data().data(), t.raw_data().size());
  return v;
}
int int8_value(const onnx::TensorProto& t) { return t.int32_data(0); }

std::shared_ptr<nn::ResNet> model_for(const std::string& scheme, int bits, int act_bits) {
  quant::QuantConfig qc = quant::QuantConfig::from_scheme(scheme, bits, act_bits);
  qc.in_channels = 1;
  auto m = quant::make_quant_resnet_cifar(20, qc);
  // Non-trivial batch-norm statistics and clip values, as after training.
  NoGradGuard no_grad;
  int k = 0;
  for (auto& [name, t] : m->named_buffers())
    if (name.find("running_var") != std::string::npos) t.fill_(1.0 + 0.01 * ++k);
  for (auto& [name, t] : m->named_parameters())
    if (name.find("alpha") != std::string::npos) t.fill_(1.7 + 0.01 * ++k);
  m->eval();
  return m;
}

}  // namespace

TEST_CASE("onnx export: uniform w4a4 is QCDQ only, with 4-bit clip bounds, and reproduces minidl's weights") {
  auto m = model_for("uniform", 4, 4);
  const Exported e = export_and_read(*m, "uniform4");
  // 20 quantized body convs (weights and inputs) + the 8-bit first conv and fc weights
  CHECK(e.report.qcdq_patterns == 42);
  CHECK(e.report.standard_only());
  CHECK(e.ops.at("QuantizeLinear") == 42);
  CHECK(e.ops.at("Clip") == 42);
  CHECK(e.ops.at("Conv") == 21);
  CHECK(e.ops.at("BatchNormalization") == 21);
  CHECK(e.ops.at("Gemm") == 1);
  for (const auto& opset : e.model.opset_import()) CHECK(opset.domain().empty());

  // Every weight pattern: clip(round(w / scale)) * scale equals minidl's quantized weight.
  NoGradGuard no_grad;
  int checked = 0;
  for (const auto& [name, mod] : m->named_modules()) {
    auto* qc = dynamic_cast<quant::QuantConv2d*>(mod.get());
    if (!qc) continue;
    const std::vector<float> want = qc->quantized_weight().contiguous().to_vector<float>();
    const onnx::NodeProto* conv = nullptr;
    for (const auto& n : e.model.graph().node())
      if (n.name() == name) conv = &n;
    REQUIRE(conv);
    const onnx::NodeProto* dq = e.producer(conv->input(1));
    REQUIRE(dq);
    REQUIRE(dq->op_type() == "DequantizeLinear");
    const onnx::NodeProto* clip = e.producer(dq->input(0));
    const onnx::NodeProto* q = e.producer(clip->input(0));
    const int lo = int8_value(*e.init.at(clip->input(1))), hi = int8_value(*e.init.at(clip->input(2)));
    if (name == "conv1") {
      CHECK(lo == -127);
      CHECK(hi == 127);
    } else {
      CHECK(lo == -7);  // 4-bit signed: codes -(2^3 - 1) .. 2^3 - 1
      CHECK(hi == 7);
      const onnx::NodeProto* act_dq = e.producer(conv->input(0));
      const onnx::NodeProto* act_clip = e.producer(act_dq->input(0));
      CHECK(int8_value(*e.init.at(act_clip->input(1))) == 0);
      CHECK(int8_value(*e.init.at(act_clip->input(2))) == 15);  // 4-bit unsigned
    }
    const float scale = floats(*e.init.at(q->input(1)))[0];
    const std::vector<float> w = floats(*e.init.at(q->input(0)));
    REQUIRE(w.size() == want.size());
    double worst = 0.0;
    for (size_t i = 0; i < w.size(); ++i) {
      const float code = std::min<float>(std::max<float>(std::nearbyintf(w[i] / scale), float(lo)), float(hi));
      worst = std::max(worst, std::fabs(static_cast<double>(code * scale) - want[i]));
    }
    CHECK(worst <= 1e-6 * scale * std::max(1, hi));
    ++checked;
  }
  CHECK(checked == 21);
}

TEST_CASE("onnx export: APoT w4a4 uses QONNX Quant for weights and MultiThreshold for activations") {
  auto m = model_for("apot", 4, 4);
  const Exported e = export_and_read(*m, "apot4");
  CHECK(e.ops.at("Quant") == 20);
  CHECK(e.ops.at("MultiThreshold") == 20);
  CHECK(e.report.qcdq_patterns == 2);  // the 8-bit first conv and fc
  CHECK_FALSE(e.report.standard_only());
  bool qonnx_opset = false;
  for (const auto& opset : e.model.opset_import()) qonnx_opset |= opset.domain() == "qonnx.custom_op.general";
  CHECK(qonnx_opset);
  for (const auto& n : e.model.graph().node()) {
    if (n.op_type() == "Quant") {
      // 4-bit APoT weights: L_3 = {0, 1, 2, 3, 4, 6, 8, 10} / 10, so sign + 4 magnitude bits
      CHECK(floats(*e.init.at(n.input(3)))[0] == 5.0f);
      CHECK(n.domain() == "qonnx.custom_op.general");
    }
    if (n.op_type() == "MultiThreshold") {
      // 4-bit APoT activations: L_4 = n / 48, one threshold per code step
      const auto& t = *e.init.at(n.input(1));
      CHECK(t.dims(0) == 1);
      CHECK(t.dims(1) == 48);
    }
  }
}

TEST_CASE(
    "onnx export: binary weights become BipolarQuant, PACT inputs QCDQ with separate quantize/dequantize "
    "scales") {
  auto m = model_for("binary", 1, 2);
  const Exported e = export_and_read(*m, "binary");
  CHECK(e.ops.at("BipolarQuant") == 20);
  CHECK(e.report.qcdq_patterns == 20);
  const std::vector<Qcdq> pact = qcdq_patterns(e);
  CHECK(pact.size() == 20);
  for (const Qcdq& p : pact) {
    // PACT: round(x * k / (alpha + 1e-6)), then * alpha / k
    CHECK(p.q->input(1) != p.dq->input(1));
    CHECK(int8_value(*e.init.at(p.clip->input(2))) == 3);
  }
}

TEST_CASE("onnx export: integer-grid activations (Quantized_ResNet's) are QCDQ of scale 1 with 0 .. 2^b - 1 bounds") {
  quant::QuantConfig cfg;
  cfg.in_channels = 1;
  cfg.edges = quant::EdgeLayers::Float;
  cfg.body.weight = quant::WeightQuant::Binary;
  cfg.body.weight_bits = 1;
  cfg.body.act = quant::ActQuant::IntGrid;
  cfg.body.act_bits = 2;
  auto m = quant::make_quant_resnet_cifar(20, cfg);
  m->eval();
  const Exported e = export_and_read(*m, "intgrid");
  CHECK(e.ops.at("BipolarQuant") == 20);
  CHECK(e.report.qcdq_patterns == 20);
  const std::vector<Qcdq> grid = qcdq_patterns(e);
  CHECK(grid.size() == 20);
  for (const Qcdq& p : grid) {
    CHECK(floats(*e.init.at(p.q->input(1)))[0] == 1.0f);  // clamp(round(x), 0, 3): codes are the values
    CHECK(floats(*e.init.at(p.dq->input(1)))[0] == 1.0f);
    CHECK(int8_value(*e.init.at(p.clip->input(1))) == 0);
    CHECK(int8_value(*e.init.at(p.clip->input(2))) == 3);
  }
}

TEST_CASE("onnx export: a float ResNet is plain ONNX, a bad path is a one-line minidl::Error") {
  nn::ResNetConfig rc;
  rc.in_channels = 1;
  rc.shortcut = nn::Shortcut::A;
  auto m = nn::resnet20(rc);
  m->eval();
  const Exported e = export_and_read(*m, "float");
  CHECK(e.report.qcdq_patterns == 0);
  CHECK(e.ops.count("QuantizeLinear") == 0);
  CHECK(e.ops.at("Pad") == 2);  // option-A shortcuts of layer2.0 and layer3.0
  CHECK(e.ops.at("Slice") == 2);
  CHECK_THROWS_WITH_AS(quant::export_onnx(*m, "/nonexistent-dir/x.onnx"),
                       doctest::Contains("cannot open /nonexistent-dir/x.onnx.tmp"), minidl::Error);
}
#else
TEST_CASE("onnx export: unavailable in this build") {
  CHECK_FALSE(quant::onnx_export_available());
  MINIDL_SKIP("minidl was built without libonnx-dev / libprotobuf-dev: no ONNX export to test");
}
#endif
