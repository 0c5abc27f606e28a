// The acceptance test of the quant issue: the APoT project's released CIFAR-10 ResNet-20 checkpoints (float
// and W4/A4, APoT-C semantics, ../shared/data/apot/) loaded by name into minidl's quantized ResNet-20
// reproduce the logits that project's PyTorch code computed for 16 fixed inputs: a max absolute difference
// <= 1e-3 and the same argmax. The learned alphas read back by layer_alphas equal the metadata's list.
//
// Level decisions at near-ties: a quantizer input within float32 noise of a midpoint between two levels can be
// decided either way by two correct implementations whose convolutions sum in different orders (minidl's cpu and
// ref backends disagree on different samples, PyTorch on others). One such decision moves a logit by ~0.2.
// So a sample that misses 1e-3 passes only when the gap is explained: re-running that sample with one near-tie
// decision (|x - midpoint| <= 1e-5 relative) taken the other way reproduces the reference within 1e-3 and with
// the same argmax. The count of such samples is printed.
//
// The float checkpoint runs on the default convolutions (on AVX2 cpus: Winograd F(4x4,3x3) for the 3x3 layers,
// ~4e-6 relative error). The W4/A4 one pins the cpu backend's direct (oneDNN) convolutions, whose ~1e-7 error is
// PyTorch's own: with Winograd's error about five of the 16 samples cross a level midpoint somewhere (each
// moving logits by 0.1-0.5), which is the same model evaluated with a coarser float, not a different one, but
// would leave nothing of this bit-level reproduction to test. `MINIDL_CPU_CONV=direct` does the same for users.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "quant/checkpoint.h"
#include "quant/quant_layers.h"
#include "quant/quant_resnet.h"
#include "tensor/safetensors.h"
#include "test_skip.h"
#ifdef MINIDL_WITH_ONEDNN
#include "backends/cpu/cpu_winograd.h"
#endif

using namespace minidl;
using namespace minidl::quant;

namespace {
const std::string kDir = std::string(MINIDL_SHARED_DIR) + "/data/apot/";

// The metadata "alphas" is a JSON list of [weight, act] pairs: read every number in order.
std::vector<double> numbers_in(const std::string& s) {
  std::vector<double> out;
  const char* p = s.c_str();
  while (*p) {
    if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '.') {
      char* end = nullptr;
      out.push_back(std::strtod(p, &end));
      p = end;
    } else {
      ++p;
    }
  }
  return out;
}

struct Compared {
  double max_abs = 0;         // over the samples that match directly
  int argmax_mismatches = 0;  // samples whose argmax differs and is not explained by a near-tie
  int unexplained = 0;        // samples beyond 1e-3 with no single near-tie flip explaining them
  int explained_by_tie = 0;
};

// A near-tie decision of an activation quantizer: layer (in forward order), element, and the value the other
// neighbouring level would give.
struct Tie {
  int layer;
  int64_t elem;
  float other;
  double rel;  // |x - midpoint| / midpoint
};

// The ResNet forward re-done with hooks at each quantized conv's input: collect near-ties, or flip one.
struct TieProbe {
  const Tie* flip = nullptr;
  std::vector<Tie>* collect = nullptr;
  int counter = 0;

  Tensor conv(const nn::ModulePtr& m, const Tensor& x) {
    auto c = std::dynamic_pointer_cast<QuantConv2d>(m);
    REQUIRE(c != nullptr);
    const int id = counter++;
    Tensor xq = quantize_input(x, c->spec, c->act_alpha, c->act_levels).contiguous().clone();
    if (c->spec.act_quantized()) {
      if (collect) find_ties(*c, x, id);
      if (flip && flip->layer == id) xq.data<float>()[flip->elem] = flip->other;
    }
    return conv2d(xq, c->quantized_weight(), c->bias, c->params());
  }
  void find_ties(const QuantConv2d& c, const Tensor& X, int id) {
    const float alpha = c.act_alpha.item<float>();
    const auto lv = c.act_levels.magnitudes.to_vector<float>();
    const auto xv = X.contiguous().to_vector<float>();
    for (size_t e = 0; e < xv.size(); ++e) {
      const float v = std::min(xv[e] / alpha, 1.0f);
      for (size_t k = 0; k + 1 < lv.size(); ++k) {
        const float mid = (lv[k] + lv[k + 1]) / 2;
        if (std::abs(v - mid) <= 1e-5f * mid)
          collect->push_back({id, static_cast<int64_t>(e), (v <= mid ? lv[k + 1] : lv[k]) * alpha,
                              std::abs(static_cast<double>(v) - mid) / mid});
      }
    }
  }
  Tensor forward(nn::ResNet& net, const Tensor& x) {
    Tensor y = (*net.relu)((*net.bn1)(conv(net.conv1, x)));
    for (auto& layer : net.layers)
      for (auto& b : layer->children()) {
        auto blk = std::static_pointer_cast<nn::BasicBlock>(b);
        Tensor out = (*blk->relu)((*blk->bn1)(conv(blk->conv1, y)));
        out = (*blk->bn2)(conv(blk->conv2, out));
        Tensor id = y;
        if (blk->downsample) id = (*(*blk->downsample)[1])(conv((*blk->downsample)[0], y));
        y = (*blk->relu)(out + id);
      }
    return (*net.fc)((*net.avgpool)(y).flatten(1));
  }
};

double row_diff(const std::vector<float>& a, const std::vector<float>& b, size_t off, size_t k, bool* same_argmax) {
  double d = 0;
  size_t am = 0, bm = 0;
  for (size_t j = 0; j < k; ++j) {
    d = std::max(d, static_cast<double>(std::abs(a[j] - b[off + j])));
    if (a[j] > a[am]) am = j;
    if (b[off + j] > b[off + bm]) bm = j;
  }
  *same_argmax = am == bm;
  return d;
}

Compared run_checkpoint(const std::string& bits, std::vector<LayerAlphas>* alphas, Metadata* ref_meta) {
  const SafetensorsFile ck = load_safetensors(kDir + "apot_res20_" + bits + "bit.safetensors");
  const SafetensorsFile ref = load_safetensors(kDir + "apot_res20_" + bits + "bit_reference.safetensors");
  const QuantConfig cfg = config_from_metadata(ck.metadata);
  REQUIRE(cfg.body.semantics == Semantics::APoT_C);
  auto model = make_quant_resnet_cifar(20, cfg);
  load_checkpoint(*model, ck.tensors);
  model->eval();
  Tensor logits;
  {
    autograd::NoGradGuard no_grad;
    logits = (*model)(ref.tensors.at("input"));
  }
  const Tensor want = ref.tensors.at("logits");
  REQUIRE(logits.sizes() == want.sizes());
  const auto a = logits.to_vector<float>(), b = want.to_vector<float>();
  Compared c;
  const size_t n = static_cast<size_t>(want.size(0)), k = static_cast<size_t>(want.size(1));
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < n; ++i) {
    bool same = false;
    const std::vector<float> row(a.begin() + static_cast<long>(i * k), a.begin() + static_cast<long>((i + 1) * k));
    const double d = row_diff(row, b, i * k, k, &same);
    if (d <= 1e-3 && same) {
      c.max_abs = std::max(c.max_abs, d);
      continue;
    }
    // Explain the gap by one near-tie decision of this sample.
    const Tensor xi = ref.tensors.at("input").narrow(0, static_cast<int64_t>(i), 1).contiguous();
    std::vector<Tie> ties;
    TieProbe collect;
    collect.collect = &ties;
    bool same0 = false;
    const double d0 = row_diff(collect.forward(*model, xi).to_vector<float>(), b, i * k, k, &same0);
    CHECK_MESSAGE(std::abs(d0 - d) < 1e-4, "the re-done forward differs from the model's for sample ", i);
    bool explained = false;
    for (const Tie& t : ties) {
      TieProbe flip;
      flip.flip = &t;
      bool s2 = false;
      if (row_diff(flip.forward(*model, xi).to_vector<float>(), b, i * k, k, &s2) <= 1e-3 && s2) {
        explained = true;
        MESSAGE("sample ", i, ": gap ", d, " is one near-tie decision (conv #", t.layer, ", element ", t.elem,
                ", |x - mid| / mid = ", t.rel, "; ", ties.size(), " near-ties in this sample)");
        break;
      }
    }
    if (explained) {
      ++c.explained_by_tie;
    } else {
      ++c.unexplained;
      c.argmax_mismatches += !same;
      MESSAGE("sample ", i, ": gap ", d, " not explained by one of its ", ties.size(), " near-tie decisions");
    }
  }
  if (alphas) *alphas = layer_alphas(*model);
  if (ref_meta) *ref_meta = ref.metadata;
  return c;
}
// Skips the calling test case (tests/test_skip.h) when a released file it needs is not there.
#define SKIP_WITHOUT(bits)                                                                                   \
  for (const std::string& p :                                                                                \
       {kDir + "apot_res20_" bits "bit.safetensors", kDir + "apot_res20_" bits "bit_reference.safetensors"}) \
    if (!std::filesystem::exists(p)) MINIDL_SKIP(p << " not found")

}  // namespace

TEST_CASE("released APoT ResNet-20 float checkpoint reproduces its reference logits") {
  SKIP_WITHOUT("32");
  std::vector<LayerAlphas> alphas;
  const Compared c = run_checkpoint("32", &alphas, nullptr);
  MESSAGE("32-bit: max |logit diff| = ", c.max_abs, ", samples explained by a near-tie: ", c.explained_by_tie);
  CHECK(c.argmax_mismatches == 0);
  CHECK(c.unexplained == 0);
  CHECK(c.explained_by_tie == 0);  // float blocks: the 8-bit first/last layers have no data-dependent ties
  CHECK(c.max_abs <= 1e-3);
  CHECK(alphas.empty());  // float blocks: no clipping parameters (the metadata lists none either)
}

TEST_CASE("released APoT ResNet-20 W4/A4 checkpoint reproduces its reference logits and alphas") {
  SKIP_WITHOUT("4");
#ifdef MINIDL_WITH_ONEDNN
  struct DirectConvolutions {  // see the file comment: this test reproduces PyTorch's arithmetic
    DirectConvolutions() { cpu::set_winograd_enabled(false); }
    ~DirectConvolutions() { cpu::clear_winograd_override(); }
  } direct;
#endif
  std::vector<LayerAlphas> alphas;
  Metadata meta;
  const Compared c = run_checkpoint("4", &alphas, &meta);
  MESSAGE("4-bit: max |logit diff| = ", c.max_abs,
          " over the samples that match directly; samples explained by a "
          "near-tie: ",
          c.explained_by_tie);
  CHECK(c.argmax_mismatches == 0);
  CHECK(c.unexplained == 0);
  CHECK(c.explained_by_tie <= 4);  // cpu: 1 sample, ref: 3 (which ones depends on the convolution's sum order)
  CHECK(c.max_abs <= 1e-3);
  const std::vector<double> want = numbers_in(meta.at("alphas"));
  REQUIRE(want.size() == 40);
  REQUIRE(alphas.size() == 20);
  for (size_t i = 0; i < alphas.size(); ++i) {
    CHECK(alphas[i].weight_alpha == doctest::Approx(want[2 * i]).epsilon(1e-7));
    CHECK(alphas[i].act_alpha == doctest::Approx(want[2 * i + 1]).epsilon(1e-7));
  }
  CHECK(alphas[8].name == "layer2.0.downsample.0");
}

TEST_CASE("a checkpoint of another architecture or precision gives one clear error") {
  SKIP_WITHOUT("4");
  const SafetensorsFile ck4 = load_safetensors(kDir + "apot_res20_4bit.safetensors");
  // ResNet-32 has more blocks: missing keys.
  auto r32 = make_quant_resnet_cifar(32, QuantConfig::apot(4, Semantics::APoT_C));
  CHECK_THROWS_WITH_AS(load_checkpoint(*r32, ck4.tensors), doctest::Contains("missing keys"), Error);
  CHECK_THROWS_WITH_AS(load_progressive(*r32, ck4.tensors), doctest::Contains("missing keys 72 [layer1.3.bn1.bias"),
                       Error);
  // A float model strictly loading a quantized checkpoint: unexpected alpha keys.
  auto f20 = make_quant_resnet_cifar(20, QuantConfig::apot(32, Semantics::APoT_C));
  CHECK_THROWS_WITH_AS(load_checkpoint(*f20, ck4.tensors), doctest::Contains("unexpected keys 40"), Error);
  // 100 classes: shape mismatch of fc.
  QuantConfig c100 = QuantConfig::apot(4, Semantics::APoT_C);
  c100.num_classes = 100;
  auto r100 = make_quant_resnet_cifar(20, c100);
  CHECK_THROWS_WITH_AS(load_progressive(*r100, ck4.tensors),
                       doctest::Contains("'fc.bias' has shape [10] in the checkpoint but [100]"), Error);
}
