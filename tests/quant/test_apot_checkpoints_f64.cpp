// The float64 oracle of the released APoT checkpoints (../shared/data/apot/README.md): the float and W4/A4
// ResNet-20 loaded by name, converted with Module::to(DType::f64) and run on the ref backend (the cpu backend's
// oneDNN convolutions are float32 only) must match `logits_f64`, the APoT code's own float64 run, within 1e-6
// in every one of the 16 rows, with the same argmax. In float32 a level decision within a few ulps of a
// midpoint hangs on summation order (test_apot_checkpoints.cpp explains the near-ties it has to allow); in
// float64 no such tie decides anything, so this comparison has no escape hatch.
// Without the shared data the test cases report skipped to CTest (tests/test_skip.h), never passed.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "nn/ref_backend_guard.h"
#include "quant/checkpoint.h"
#include "quant/quant_resnet.h"
#include "tensor/safetensors.h"
#include "test_skip.h"

using namespace minidl;
using namespace minidl::quant;

namespace {

const std::string kDir = std::string(MINIDL_SHARED_DIR) + "/data/apot/";

std::string checkpoint_path(const std::string& bits) { return kDir + "apot_res20_" + bits + "bit.safetensors"; }
std::string reference_path(const std::string& bits) {
  return kDir + "apot_res20_" + bits + "bit_reference.safetensors";
}

// The data this test needs, or an empty string when all of it is there.
std::string missing_data() {
  for (const char* bits : {"32", "4"}) {
    for (const std::string& p : {checkpoint_path(bits), reference_path(bits)}) {
      if (!std::filesystem::exists(p)) return p;
    }
  }
  return "";
}

size_t argmax(const std::vector<double>& v, size_t off, size_t k) {
  size_t best = 0;
  for (size_t j = 1; j < k; ++j)
    if (v[off + j] > v[off + best]) best = j;
  return best;
}

struct RowComparison {
  std::vector<double> max_abs;  // per row
  int argmax_mismatches = 0;
  double worst() const {
    double w = 0;
    for (double d : max_abs) w = std::max(w, d);
    return w;
  }
};

RowComparison compare_rows(const std::vector<double>& got, const std::vector<double>& want, size_t n, size_t k) {
  RowComparison r;
  for (size_t i = 0; i < n; ++i) {
    double d = 0;
    for (size_t j = 0; j < k; ++j) d = std::max(d, std::abs(got[i * k + j] - want[i * k + j]));
    r.max_abs.push_back(d);
    r.argmax_mismatches += argmax(got, i * k, k) != argmax(want, i * k, k);
  }
  return r;
}

struct F64Run {
  Tensor logits;  // minidl, float64
  SafetensorsFile ref;
};

F64Run run_in_float64(const std::string& bits) {
  const SafetensorsFile ck = load_safetensors(checkpoint_path(bits));
  F64Run run{Tensor(), load_safetensors(reference_path(bits))};
  REQUIRE(run.ref.tensors.count("logits_f64") == 1);
  const QuantConfig cfg = config_from_metadata(ck.metadata);
  REQUIRE(cfg.body.semantics == Semantics::APoT_C);
  auto model = make_quant_resnet_cifar(20, cfg);
  load_checkpoint(*model, ck.tensors);  // float32 values, exactly as released
  model->eval();
  model->to(DType::f64);
  RefBackendGuard on_ref;  // float64 convolutions: ref's (cpu refuses them, see README)
  autograd::NoGradGuard no_grad;
  run.logits = (*model)(run.ref.tensors.at("input").to(DType::f64));
  REQUIRE(run.logits.dtype() == DType::f64);
  return run;
}

void check_against_logits_f64(const std::string& bits) {
  const F64Run run = run_in_float64(bits);
  const Tensor want = run.ref.tensors.at("logits_f64");
  REQUIRE(want.dtype() == DType::f64);
  REQUIRE(run.logits.sizes() == want.sizes());
  const size_t n = static_cast<size_t>(want.size(0)), k = static_cast<size_t>(want.size(1));
  const RowComparison c = compare_rows(run.logits.to_vector<double>(), want.to_vector<double>(), n, k);
  MESSAGE(bits, "-bit in float64: max |logit - logits_f64| = ", c.worst(), " over ", n, " rows");
  for (size_t i = 0; i < n; ++i) CHECK_MESSAGE(c.max_abs[i] <= 1e-6, "row ", i, ": max |diff| ", c.max_abs[i]);
  CHECK(c.argmax_mismatches == 0);
}

}  // namespace

TEST_CASE("released APoT ResNet-20 float checkpoint in float64 matches logits_f64 within 1e-6") {
  if (const std::string m = missing_data(); !m.empty()) MINIDL_SKIP(m << " not found");
  check_against_logits_f64("32");
}

TEST_CASE("released APoT ResNet-20 W4/A4 checkpoint in float64 matches logits_f64 within 1e-6") {
  if (const std::string m = missing_data(); !m.empty()) MINIDL_SKIP(m << " not found");
  check_against_logits_f64("4");
}
