// Packed models in float64 (issue 18, "Exactness"; docs/deploy.md, "Exactness in float64"): PackedLayer::forward_f64
// and PackedResNet::forward_f64 against the fake-quant model made the same model in float64
// (quant::make_f64_reference, run on the ref backend). Both compute the same model, so they may differ only by
// double rounding: the tests require 1e-12 relative, where the float32 paths differ by ~1e-7, and show that a
// one-ulp float32 change in the model is caught.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "nn/modules/batch_norm.h"
#include "nn/ref_backend_guard.h"
#include "quant/packed/pack.h"
#include "quant/packed/packed_reference.h"
#include "quant/quant_layers.h"
#include "quant/quant_resnet.h"
#include "tensor/generator.h"

using namespace minidl;
using namespace minidl::quant;

namespace {

struct SchemeCase {
  const char* name;
  const char* scheme;
  int bits, act_bits;
  nn::Shortcut shortcut;
};
// Every scheme of the issue (PoT 4-bit: activations of 2^14 codes, the int64 path), and option A.
const SchemeCase kSchemes[] = {{"apot4", "apot", 4, 4, nn::Shortcut::B},
                               {"apot3", "apot", 3, 3, nn::Shortcut::B},
                               {"apot2", "apot", 2, 2, nn::Shortcut::B},
                               {"uniform4", "uniform", 4, 4, nn::Shortcut::B},
                               {"pot3", "pot", 3, 3, nn::Shortcut::B},
                               {"pot4", "pot", 4, 4, nn::Shortcut::B},
                               {"binary_pact2", "binary", 1, 2, nn::Shortcut::B},
                               {"apot4_optionA", "apot", 4, 4, nn::Shortcut::A}};

// A float32 ResNet-20 for 1-channel inputs with random batch-norm statistics and non-round clips, eval mode (as
// test_packed.cpp builds them; the same seed gives the same model).
std::shared_ptr<nn::ResNet> make_model(const SchemeCase& s, uint64_t seed) {
  manual_seed(seed);
  QuantConfig cfg = QuantConfig::from_scheme(s.scheme, s.bits, s.act_bits);
  cfg.in_channels = 1;
  cfg.shortcut = s.shortcut;
  auto m = make_quant_resnet_cifar(20, cfg);
  for (auto& [name, mod] : m->named_modules()) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(mod.get())) {
      const int64_t c = bn->num_features;
      const auto fill = [](Tensor& t, const Tensor& v) {
        const auto src = v.to_vector<float>();
        std::copy(src.begin(), src.end(), t.data<float>());
      };
      fill(bn->running_mean, uniform({c}, -0.3, 0.3));
      fill(bn->running_var, uniform({c}, 0.5, 2.0));
      fill(bn->weight, uniform({c}, 0.6, 1.4));
      fill(bn->bias, uniform({c}, -0.2, 0.3));
    }
    if (auto* q = dynamic_cast<QuantConv2d*>(mod.get())) {
      const double r = uniform({}, 0.0, 1.0).item<double>();
      if (q->act_alpha.defined()) q->act_alpha.detach().fill_((q->spec.act == ActQuant::PACT ? 2.5 : 2.0) + 0.3 * r);
      if (q->weight_quant->wgt_alpha.defined()) q->weight_quant->wgt_alpha.detach().fill_(2.5 + 0.5 * r);
    }
  }
  m->eval();
  return m;
}

// max |a - b| over max(1, max |b|).
double rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double worst = 0, scale = 1;
  for (size_t i = 0; i < x.size(); ++i) {
    worst = std::max(worst, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  return worst / scale;
}

int64_t argmax_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  const int64_t n = a.size(0), k = a.size(1);
  int64_t diff = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t ax = 0, ay = 0;
    for (int64_t j = 1; j < k; ++j) {
      if (x[static_cast<size_t>(i * k + j)] > x[static_cast<size_t>(i * k + ax)]) ax = j;
      if (y[static_cast<size_t>(i * k + j)] > y[static_cast<size_t>(i * k + ay)]) ay = j;
    }
    diff += ax != ay;
  }
  return diff;
}

Tensor f64_uniform(const Shape& shape, double lo, double hi) { return uniform(shape, lo, hi).to(DType::f64); }

// The reference's output for one packed layer: its conv (or fc), its batch norm, + residual, ReLU, in float64.
Tensor reference_layer(const std::map<std::string, nn::ModulePtr>& mods, const PackedLayer& l, const Tensor& x,
                       const Tensor& residual, bool relu_on) {
  Tensor y = mods.at(l.name)->forward(x);
  if (!l.linear) {
    const std::string bn = l.name == "conv1" ? "bn1"
                           : l.name.size() > 13 && l.name.ends_with("downsample.0")
                               ? l.name.substr(0, l.name.size() - 1) + "1"
                               : l.name.substr(0, l.name.size() - 5) + "bn" + l.name.back();
    y = mods.at(bn)->forward(y);
  }
  if (residual.defined()) y = y + residual;
  return relu_on ? relu(y) : y;
}

}  // namespace

TEST_CASE("packed f64: every layer and the whole model equal the float64 reference, every scheme") {
  RefBackendGuard on_ref;  // the reference's float64 convolutions run on ref
  for (const SchemeCase& s : kSchemes) {
    CAPTURE(std::string(s.name));
    const PackedResNet p = pack(*make_model(s, 21));
    auto ref = make_model(s, 21);
    make_f64_reference(*ref, p);
    std::map<std::string, nn::ModulePtr> mods;
    for (auto& [n, m] : ref->named_modules()) mods[n] = m;
    NoGradGuard ng;

    // Per layer, on one input of the layer's own scale: the stem a normalised image, the others ReLU outputs
    // up to above the clip (so every code, the clip included, occurs), with a residual and the ReLU.
    int64_t layers = 0, integer = 0;
    manual_seed(7);
    for (const PackedLayer* l : p.layers()) {
      CAPTURE(l->name);
      const Tensor x = l->linear      ? f64_uniform({3, l->in}, 0.0, 3.0)
                       : l == &p.stem ? f64_uniform({3, l->in, 9, 9}, -1.0, 2.5)
                                      : relu(f64_uniform({3, l->in, 8, 8}, -0.2, 3.0));
      const bool with_tail = !l->linear;
      const int64_t oh = l->linear ? 0 : (x.size(2) + 2 * l->padding - l->kernel) / l->stride + 1;
      const Tensor res = with_tail ? f64_uniform({3, l->out, oh, oh}, -1.0, 1.0) : Tensor();
      const Tensor want = reference_layer(mods, *l, x, res, with_tail);
      const Tensor got = l->forward_f64(x, res, with_tail);
      CHECK(got.dtype() == DType::f64);
      CHECK(rel_diff(got, want) <= 1e-12);
      ++layers;
      integer += l->integer();
    }
    CHECK(layers == static_cast<int64_t>(p.layers().size()));
    CHECK(integer == (std::string(s.name) == "pot4" ? 0 : static_cast<int64_t>(p.layers().size()) - 2));

    // The whole model on random images.
    manual_seed(9);
    const Tensor img = f64_uniform({2, 1, 28, 28}, -0.8, 2.8);
    const Tensor want = (*ref)(img).contiguous();
    const Tensor got = p.forward_f64(img);
    CHECK(want.dtype() == DType::f64);
    CHECK(rel_diff(got, want) <= 1e-12);
    CHECK(argmax_diff(got, want) == 0);
  }
}

TEST_CASE("packed f64: the float64 codes are the nearest grid codes off the midpoints, and cover the grid") {
  RefBackendGuard on_ref;
  for (const SchemeCase& s : {kSchemes[0], kSchemes[3], kSchemes[6]}) {
    CAPTURE(std::string(s.name));
    const PackedResNet p = pack(*make_model(s, 5));
    const PackedLayer& l = p.blocks[0].conv1;
    REQUIRE(l.integer());
    // the grid in units: APoT's integer levels, or every code 0..max (uniform, PACT)
    std::vector<int64_t> grid;
    if (l.act == ActQuant::APoT) {
      int64_t n_max = 0;
      grid = integer_levels(LevelSet::make(Scheme::APoT, l.act_bits, false), n_max);
      CHECK(n_max == l.act_max_code());
    } else {
      for (int64_t c = 0; c <= l.act_max_code(); ++c) grid.push_back(c);
    }
    manual_seed(3);
    const Tensor x = f64_uniform({2, l.in, 6, 6}, -0.5, 3.2);
    const std::vector<int32_t> codes = l.input_codes_f64(x);
    const auto xv = x.to_vector<double>();
    int32_t top = 0;
    int64_t checked = 0, wrong = 0;
    for (size_t i = 0; i < codes.size(); ++i) {
      const double v = xv[i] / l.act_unit();
      double best = 1e300, second = 1e300;
      int64_t nearest = 0;
      for (int64_t g : grid) {
        const double d = std::abs(v - static_cast<double>(g));
        if (d < best) {
          second = best;
          best = d;
          nearest = g;
        } else {
          second = std::min(second, d);
        }
      }
      top = std::max(top, codes[i]);
      if (second - best < 1e-4) continue;  // near a midpoint (PACT rounds x * k / (alpha + 1e-6))
      ++checked;
      wrong += codes[i] != nearest;
    }
    CHECK(checked > static_cast<int64_t>(codes.size()) * 9 / 10);
    CHECK(wrong == 0);
    CHECK(top == l.act_max_code());
  }
}

TEST_CASE("packed f64: the comparison is sensitive to a float32 ulp, and the reference refuses another model") {
  RefBackendGuard on_ref;
  const SchemeCase& s = kSchemes[0];
  const PackedResNet p = pack(*make_model(s, 31));
  NoGradGuard ng;
  manual_seed(4);
  const Tensor img = f64_uniform({2, 1, 28, 28}, -0.8, 2.8);

  // The plain float64 fake-quant model (float64 batch norm, float32-valued APoT levels, weights re-quantized in
  // double) is not the packed model: it differs by far more than double rounding.
  auto plain = make_model(s, 31);
  plain->to(DType::f64);
  CHECK(rel_diff(p.forward_f64(img), (*plain)(img).contiguous()) > 1e-9);

  // One batch-norm scale one float32 ulp off: the reference refuses the packed model, and the layer's output moves
  // by more than the tolerance.
  PackedResNet q = p;
  float& sc = q.blocks[1].conv2.scale[3];
  sc = std::nextafter(sc, 2.0f * sc);
  auto ref = make_model(s, 31);
  CHECK_THROWS_WITH_AS(make_f64_reference(*ref, q), doctest::Contains("layer1.1.conv2"), Error);
  const Tensor x = f64_uniform({2, 16, 8, 8}, 0.0, 3.0);
  CHECK(rel_diff(q.blocks[1].conv2.forward_f64(x, Tensor(), false), p.blocks[1].conv2.forward_f64(x, Tensor(), false)) >
        1e-12);

  // A weight code changed by one step, a different activation clip: refused with the layer named.
  PackedResNet w = p;
  PackedLayer& wl = w.blocks[2].conv1;
  std::vector<int32_t> codes = unpack_codes(wl.codes, "t");
  const auto pos = std::find(wl.codes.book.begin(), wl.codes.book.end(), codes[5]);
  codes[5] = pos + 1 != wl.codes.book.end() ? *(pos + 1) : wl.codes.book.front();  // the neighbouring code
  wl.codes = pack_codes(codes);
  CHECK_THROWS_WITH_AS(make_f64_reference(*make_model(s, 31), w), doctest::Contains("not the same weight"), Error);
  PackedResNet a = p;
  a.blocks[0].conv2.act_alpha *= 1.0 + 1e-6;
  CHECK_THROWS_WITH_AS(make_f64_reference(*make_model(s, 31), a), doctest::Contains("activation quantizer"), Error);

  // float32 inputs are refused by the float64 path, and a float64 model by make_f64_reference.
  CHECK_THROWS_WITH_AS(p.forward_f64(img.to(DType::f32)), doctest::Contains("float64"), Error);
  auto as64 = make_model(s, 31);
  as64->to(DType::f64);
  CHECK_THROWS_WITH_AS(make_f64_reference(*as64, p), doctest::Contains("float32 cpu model"), Error);
}
