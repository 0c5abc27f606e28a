// Quantized models in float64: Module::to(DType::f64) converts parameters, buffers, learned alphas and the
// quantizers' level sets (the reference's float32 level values, held in float64, see quant/levels.h); the f64
// quantizers decide inputs a float32 round trip could not separate from a level midpoint, the same way on the
// cpu and ref backends; a whole quantized ResNet in float64 (ref backend) computes the float32 model's function;
// and the cpu backend refuses float64 convolutions with an error that points to ref.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/ref_backend_guard.h"
#include "quant/quant_layers.h"
#include "quant/quant_resnet.h"
#include "tensor/generator.h"

using namespace minidl;
using namespace minidl::quant;

namespace {

std::vector<std::shared_ptr<QuantConv2d>> quant_convs(const nn::Module& m) {
  std::vector<std::shared_ptr<QuantConv2d>> out;
  for (const auto& [name, child] : m.named_modules())
    if (auto c = std::dynamic_pointer_cast<QuantConv2d>(child)) out.push_back(c);
  return out;
}

// Level sets as the quantizers hold them: (activation set, weight set) of every quantized conv.
void check_level_dtypes(const nn::Module& m, DType dt) {
  for (const auto& c : quant_convs(m)) {
    INFO(c->path());
    for (const LevelSet* ls : {&c->act_levels, &c->weight_quant->levels}) {
      if (ls->magnitudes.defined()) CHECK(ls->magnitudes.dtype() == dt);
    }
  }
}

bool has_backend(const std::string& name) {
  for (const auto& n : available_backends())
    if (n == name) return true;
  return false;
}

// Runs a scope on the named CPU backend and restores the previous one, also when a REQUIRE throws.
struct BackendGuard {
  std::string prev = cpu_backend_name();
  explicit BackendGuard(const std::string& name) { set_cpu_backend(name); }
  ~BackendGuard() { set_cpu_backend(prev); }
  BackendGuard(const BackendGuard&) = delete;
  BackendGuard& operator=(const BackendGuard&) = delete;
};

}  // namespace

TEST_CASE("Module::to(f64) converts a quantized ResNet: parameters, buffers, alphas and level sets") {
  manual_seed(3);
  auto model = make_quant_resnet_cifar(20, QuantConfig::apot(4, Semantics::APoT_C));
  const auto convs = quant_convs(*model);
  REQUIRE(convs.size() == 21);                         // stem, 18 block convs, 2 projection shortcuts
  const std::shared_ptr<QuantConv2d> conv = convs[1];  // layer1.0.conv1: APoT 4-bit weights and activations
  REQUIRE(conv->act_levels.magnitudes.defined());
  REQUIRE(conv->weight_quant->levels.magnitudes.defined());
  const Tensor weight = conv->weight, act_alpha = conv->act_alpha;  // handles taken before the conversion
  const std::vector<float> w32 = weight.to_vector<float>();
  const TensorMap before = model->state_dict();

  model->to(DType::f64);
  for (const auto& [name, t] : model->named_parameters()) {
    INFO(name);
    CHECK(t.dtype() == DType::f64);
    CHECK(t.requires_grad());
  }
  for (const auto& [name, t] : model->named_buffers()) {
    INFO(name);
    CHECK(t.dtype() == (name.ends_with("num_batches_tracked") ? DType::i64 : DType::f64));
  }
  CHECK(weight.dtype() == DType::f64);  // the same TensorImpl, converted in place
  CHECK(act_alpha.dtype() == DType::f64);
  CHECK(conv->weight_quant->wgt_alpha.dtype() == DType::f64);
  const std::vector<double> w64 = weight.to_vector<double>();
  for (size_t i = 0; i < w32.size(); ++i) REQUIRE(w64[i] == static_cast<double>(w32[i]));  // widened exactly
  check_level_dtypes(*model, DType::f64);
  // The reference's level values (float32 numbers, widened exactly), as its own float64 run uses them: the
  // converted model is the same model, computed in finer arithmetic.
  const std::vector<float> act32 = LevelSet::make(Scheme::APoT, 4, false).magnitudes.to_vector<float>();
  const std::vector<float> wgt32 = LevelSet::make(Scheme::APoT, 4, true).magnitudes.to_vector<float>();
  const std::vector<double> act = conv->act_levels.magnitudes.to_vector<double>();
  const std::vector<double> wgt = conv->weight_quant->levels.magnitudes.to_vector<double>();
  REQUIRE(act.size() == act32.size());
  REQUIRE(wgt.size() == wgt32.size());
  for (size_t i = 0; i < act.size(); ++i) CHECK(act[i] == static_cast<double>(act32[i]));
  for (size_t i = 0; i < wgt.size(); ++i) CHECK(wgt[i] == static_cast<double>(wgt32[i]));

  // And back: float32 levels as the reference builds them, bit for bit; the values as they were.
  model->to(DType::f32);
  check_level_dtypes(*model, DType::f32);
  CHECK(conv->act_levels.magnitudes.to_vector<float>() == act32);
  for (const auto& [name, t] : model->state_dict()) {
    INFO(name);
    CHECK(t.dtype() == before.at(name).dtype());
    CHECK(t.to_vector<double>() == before.at(name).to_vector<double>());
  }
}

TEST_CASE("float64 quantizers decide inputs 1e-12 from a level midpoint, on the cpu and ref backends alike") {
  const TensorOptions f64 = TensorOptions().dtype(DType::f64);
  const double alpha = 1.3;  // not a power of two: x / alpha is rounded
  for (const std::string& be : {std::string("ref"), std::string("cpu")}) {
    if (!has_backend(be)) continue;
    INFO("backend " << be);
    BackendGuard on(be);
    autograd::NoGradGuard no_grad;
    for (bool is_signed : {false, true}) {
      INFO((is_signed ? "weights" : "activations"));
      const LevelSet ls = LevelSet::make(Scheme::APoT, 4, is_signed, DType::f64);
      const std::vector<double> lv = ls.magnitudes.to_vector<double>();
      // Just below and just above every midpoint: float32 would see both as the midpoint itself.
      std::vector<double> x, want;
      for (size_t k = 0; k + 1 < lv.size(); ++k) {
        const double mid = (lv[k] + lv[k + 1]) / 2;
        x.insert(x.end(), {(mid - 1e-12) * alpha, (mid + 1e-12) * alpha});
        want.insert(want.end(), {lv[k] * alpha, lv[k + 1] * alpha});
      }
      const int64_t n = static_cast<int64_t>(x.size());
      const Tensor xt = from_vector(x, {n}, f64), a = scalar_tensor(alpha, f64);
      const Tensor q =
          is_signed ? quantize_weight(xt, a, ls, Semantics::APoT_C) : quantize_activation(xt, a, ls, Semantics::APoT_C);
      REQUIRE(q.dtype() == DType::f64);
      const std::vector<double> got = q.to_vector<double>();
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("x = " << x[i]);
        CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-15));
      }
    }
  }
}

TEST_CASE("a quantized ResNet-20 in float64 (ref backend) computes the float32 model's logits") {
  manual_seed(11);
  QuantConfig cfg = QuantConfig::apot(4, Semantics::APoT_C);
  auto m32 = make_quant_resnet_cifar(20, cfg);
  for (const auto& c : quant_convs(*m32))
    if (c->act_alpha.defined()) c->act_alpha.detach().fill_(2.0);  // inputs span the levels, not all clipped
  // Trained-looking batch norms: with fresh ones (mean 0, var 1, gamma 1, beta 0) a conv of quantized inputs
  // and weights lands on a lattice of level products, putting many next-layer inputs exactly on midpoints,
  // where float32 and float64 (and two float32 summation orders) legitimately decide differently.
  for (const auto& [name, t] : m32->named_buffers()) {
    if (name.ends_with("running_mean")) t.detach().copy_(uniform(t.sizes(), -0.5, 0.5));
    if (name.ends_with("running_var")) t.detach().copy_(uniform(t.sizes(), 0.5, 2.0));
  }
  for (const auto& [name, t] : m32->named_parameters()) {
    if (!name.ends_with("bias") && !name.ends_with("weight")) continue;
    if (name.find("bn") == std::string::npos && name.find("downsample.1") == std::string::npos) continue;
    t.detach().copy_(name.ends_with("weight") ? uniform(t.sizes(), 0.5, 1.5) : uniform(t.sizes(), -0.2, 0.2));
  }
  m32->eval();
  auto m64 = make_quant_resnet_cifar(20, cfg);
  m64->load_state_dict(m32->state_dict());
  m64->eval();
  m64->to(DType::f64);
  const Tensor x = randn({2, 3, 32, 32});
  autograd::NoGradGuard no_grad;
  const Tensor y32 = (*m32)(x);  // default backend (cpu when built), float32
  Tensor y64;
  {
    RefBackendGuard on_ref;
    y64 = (*m64)(x.to(DType::f64));
  }
  REQUIRE(y64.dtype() == DType::f64);
  const std::vector<double> a = y32.to_vector<double>(), b = y64.to_vector<double>();
  double max_abs = 0, max_ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_abs = std::max(max_abs, std::abs(a[i] - b[i]));
    max_ref = std::max(max_ref, std::abs(b[i]));
  }
  MESSAGE("float32 vs float64 logits: max |diff| ", max_abs, " (max |logit| ", max_ref, ")");
  CHECK(max_ref > 0.1);  // a network that computes something
  CHECK(max_abs <= 1e-4 * std::max(1.0, max_ref));
}

#ifdef MINIDL_WITH_ONEDNN
TEST_CASE("the cpu backend refuses float64 convolutions and says that ref runs them") {
  BackendGuard on("cpu");
  const TensorOptions f64 = TensorOptions().dtype(DType::f64);
  Conv2dParams p;
  CHECK_THROWS_WITH_AS(conv2d(zeros({1, 2, 4, 4}, f64), zeros({3, 2, 3, 3}, f64), Tensor(), p),
                       doctest::Contains("the ref backend does float64"), Error);
}
#endif
