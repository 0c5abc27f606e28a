// minidl against PyTorch itself: fixtures written by tests/tools/gen_pytorch_fixtures.py (PyTorch 1.13, fp32)
// hold inputs, PyTorch's outputs and gradients for conv2d, batch_norm (train/eval), the pools, linear,
// cross_entropy, and one whole ResNet-20 training step (two SGD steps). Each check runs on every CPU backend
// (ref and the active fast one) and prints its measured error with MESSAGE, so tests/pytorch/README.md can
// quote it. Error measure throughout: max|got - want| / max(1e-6, max|want|) over the tensor.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "backends/backend.h"
#include "nn/models/resnet.h"
#include "optim/sgd.h"
#include "tensor/safetensors.h"
#include "test_scopes.h"

using namespace minidl;
using minidl::test::BackendScope;

namespace {

// Single ops: one fp32 op sums at most a few hundred products, so two correct implementations agree to ~1e-6
// (measured: <= 5e-7); 1e-5 keeps a 20x margin for other CPUs' summation orders and still catches a wrong
// index, scale or formula (those show as 1e-3 and up).
constexpr double kOpTol = 1e-5;
// ResNet-20 step: 20 layers of fp32 rounding between the input and the gradients. PyTorch's own fp32 vs fp64 is
// 7.8e-6 on the step-1 gradients of this batch (printed by the generator, which also picks a batch without
// ReLU inputs within rounding error of 0). 1e-4 is the figure for fp32.
constexpr double kNetTol = 1e-4;

std::string fixture_path(const std::string& name) {
  // MINIDL_TESTS_DIR is absolute (tests/CMakeLists.txt); __FILE__ is relative under ccache's CCACHE_BASEDIR.
  return (std::filesystem::path(MINIDL_TESTS_DIR) / "pytorch" / "fixtures" / (name + ".safetensors")).string();
}

const Tensor& get(const TensorMap& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) MINIDL_FAIL("pytorch fixture: no tensor '", key, "' (regenerate the fixtures?)");
  return it->second;
}

std::vector<int64_t> ints(const TensorMap& m, const std::string& key) { return get(m, key).to_vector<int64_t>(); }

/// A fresh leaf holding a copy of t (a new one per backend, so gradients never accumulate across runs).
Tensor leaf(const Tensor& t) {
  Tensor c = t.clone().detach();
  c.set_requires_grad(true);
  return c;
}

/// max|got - want| / max(1e-6, max|want|) over two equally long vectors; infinite when got has a NaN/inf.
double max_rel_err(const std::vector<double>& g, const std::vector<double>& w) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (!std::isfinite(g[i])) return INFINITY;
    diff = std::max(diff, std::abs(g[i] - w[i]));
    scale = std::max(scale, std::abs(w[i]));
  }
  return diff / std::max(1e-6, scale);
}
double max_rel_err(const Tensor& got, const Tensor& want) {
  return max_rel_err(got.to_vector<double>(), want.to_vector<double>());
}

/// a - b elementwise, in double (the SGD update from the weights before and after it).
std::vector<double> minus(const Tensor& a, const Tensor& b) {
  std::vector<double> d = a.to_vector<double>();
  const std::vector<double> bv = b.to_vector<double>();
  for (size_t i = 0; i < d.size(); ++i) d[i] -= bv[i];
  return d;
}

/// Compares and reports one check; `tol` is the stated relative tolerance (see kOpTol / kNetTol).
void check(const std::string& what, const Tensor& got, const Tensor& want, double tol) {
  REQUIRE_MESSAGE(got.defined(), what, ": minidl produced no tensor (no gradient?)");
  const bool same_shape = got.shape() == want.shape() || (got.numel() == 1 && want.numel() == 1);
  REQUIRE_MESSAGE(same_shape, what, ": shape ", shape_str(got.shape()), " vs PyTorch ", shape_str(want.shape()));
  const double e = max_rel_err(got, want);
  std::ostringstream os;
  os << "[" << cpu_backend_name() << "] " << what << ": max rel err " << e << " (tol " << tol << ")";
  MESSAGE(os.str());
  CHECK_MESSAGE(e <= tol, os.str());
}

/// The CPU backends built in ("ref", and "cpu" when built with oneDNN): the ones set_cpu_backend selects (cuda is
/// a device backend; cuda-host, the CUDA kernels on the CPU, is checked against ref by the conformance suite).
std::vector<std::string> cpu_backends() {
  std::vector<std::string> out;
  for (const auto& b : available_backends())
    if (b == "ref" || b == "cpu") out.push_back(b);
  return out;
}

// ---- the deterministic ResNet-20 initial weights (mirror of init_value() in gen_pytorch_fixtures.py) ----

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ULL;
  return h;
}

uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Every value is exact in float64 (a 24-bit integer times a power of two, plus 0, 1 or 2) and rounded once to
/// float32, so C++ and NumPy produce the same bits.
Tensor init_value(const std::string& key, const Tensor& like) {
  const Shape& shape = like.shape();
  if (ends_with(key, "num_batches_tracked")) return zeros(shape, TensorOptions{}.dtype(DType::i64));
  if (ends_with(key, "running_mean")) return zeros(shape);
  if (ends_with(key, "running_var")) return ones(shape);
  const int64_t n = shape_numel(shape);
  const uint64_t seed = fnv1a64("minidl-pytorch-parity/" + key);
  std::vector<float> v(static_cast<size_t>(n));
  double scale = 0, offset = 0;
  if (shape.size() >= 2) {  // conv / fc weight: Kaiming-variance uniform, bound rounded to a power of two
    const double fan_in = static_cast<double>(n / shape[0]);
    scale = std::ldexp(1.0, static_cast<int>(std::nearbyint(std::log2(std::sqrt(6.0 / fan_in)))));
  } else if (key.rfind("fc.", 0) == 0) {
    scale = 1.0 / 16;
  } else if (ends_with(key, "weight")) {  // BN gamma
    scale = 0.25, offset = 1.0;
  } else if (ends_with(key, "bn1.bias")) {  // beta of a BN followed directly by a ReLU
    scale = 1.0 / 8, offset = 2.0;
  } else {
    scale = 1.0 / 8;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t z = splitmix64(seed + static_cast<uint64_t>(i));
    const double s = static_cast<double>(static_cast<int64_t>(z >> 40) - (int64_t{1} << 23)) / 8388608.0;
    v[static_cast<size_t>(i)] = static_cast<float>(offset + s * scale);
  }
  return from_vector(v, shape);
}

}  // namespace

TEST_CASE("pytorch parity: conv2d forward and backward") {
  const TensorMap f = load_safetensors(fixture_path("conv2d")).tensors;
  const std::vector<std::string> cases = {"s2_p1_bias",        "dil2_p2",     "groups2_bias",
                                          "depthwise_3x5_s21", "proj_1x1_s2", "resnet_3x3"};
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (const auto& c : cases) {
      const std::string p = c + ".";
      const std::vector<int64_t> q = ints(f, p + "params");
      Conv2dParams cp;
      cp.stride_h = q[0], cp.stride_w = q[1], cp.pad_h = q[2], cp.pad_w = q[3];
      cp.dilation_h = q[4], cp.dilation_w = q[5], cp.groups = q[6];
      const bool has_bias = q[7] != 0;
      Tensor x = leaf(get(f, p + "x")), w = leaf(get(f, p + "w"));
      Tensor b = has_bias ? leaf(get(f, p + "b")) : Tensor{};
      Tensor y = conv2d(x, w, b, cp);
      y.backward(get(f, p + "gy"));
      check("conv2d " + c + " y", y, get(f, p + "y"), kOpTol);
      check("conv2d " + c + " grad x", x.grad(), get(f, p + "gx"), kOpTol);
      check("conv2d " + c + " grad w", w.grad(), get(f, p + "gw"), kOpTol);
      if (has_bias) check("conv2d " + c + " grad b", b.grad(), get(f, p + "gb"), kOpTol);
    }
  }
}

TEST_CASE("pytorch parity: batch_norm train (output, gradients, running stats) and eval") {
  const TensorMap f = load_safetensors(fixture_path("batch_norm")).tensors;
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (const std::string c : {"train", "train_n1", "eval"}) {
      const std::string p = c + ".";
      const bool training = c != "eval";
      const double momentum = training ? get(f, p + "momentum").item<double>() : 0.1;
      Tensor x = leaf(get(f, p + "x")), w = leaf(get(f, p + "w")), b = leaf(get(f, p + "b"));
      Tensor rm = get(f, p + "running_mean").clone(), rv = get(f, p + "running_var").clone();
      Tensor y = batch_norm(x, rm, rv, w, b, training, momentum, 1e-5);
      y.backward(get(f, p + "gy"));
      const std::string n = "batch_norm " + c;
      check(n + " y", y, get(f, p + "y"), kOpTol);
      check(n + " grad x", x.grad(), get(f, p + "gx"), kOpTol);
      check(n + " grad weight", w.grad(), get(f, p + "gw"), kOpTol);
      check(n + " grad bias", b.grad(), get(f, p + "gb"), kOpTol);
      // train: PyTorch's updated running stats (unbiased batch variance); eval: unchanged inputs
      check(n + " running_mean", rm, get(f, p + (training ? "running_mean_after" : "running_mean")), kOpTol);
      check(n + " running_var", rv, get(f, p + (training ? "running_var_after" : "running_var")), kOpTol);
    }
  }
}

TEST_CASE("pytorch parity: max_pool2d, avg_pool2d, adaptive_avg_pool2d") {
  const TensorMap f = load_safetensors(fixture_path("pool")).tensors;
  const std::vector<std::string> cases = {"max_k3s2p1",      "max_k2s2", "max_k2x3_s1x2", "avg_k3s2p1_incl",
                                          "avg_k3s2p1_excl", "avg_k2s2", "adaptive_1x1",  "adaptive_3x2"};
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (const auto& c : cases) {
      const std::string p = c + ".";
      const std::vector<int64_t> q = ints(f, p + "params");
      Tensor x = leaf(get(f, p + "x"));
      Tensor y;
      std::string op;
      if (c.rfind("adaptive", 0) == 0) {
        op = "adaptive_avg_pool2d";
        y = adaptive_avg_pool2d(x, q[0], q[1]);
      } else {
        Pool2dParams pp;
        pp.kernel_h = q[0], pp.kernel_w = q[1], pp.stride_h = q[2], pp.stride_w = q[3];
        pp.pad_h = q[4], pp.pad_w = q[5], pp.count_include_pad = q[6] != 0;
        const bool is_max = c.rfind("max", 0) == 0;
        op = is_max ? "max_pool2d" : "avg_pool2d";
        y = is_max ? max_pool2d(x, pp) : avg_pool2d(x, pp);
      }
      y.backward(get(f, p + "gy"));
      check(op + " " + c + " y", y, get(f, p + "y"), kOpTol);
      check(op + " " + c + " grad x", x.grad(), get(f, p + "gx"), kOpTol);
    }
  }
}

TEST_CASE("pytorch parity: linear") {
  const TensorMap f = load_safetensors(fixture_path("linear")).tensors;
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (const std::string c : {"small_bias", "no_bias", "fc_64x10"}) {
      const std::string p = c + ".";
      const bool has_bias = f.count(p + "b") != 0;
      Tensor x = leaf(get(f, p + "x")), w = leaf(get(f, p + "w"));
      Tensor b = has_bias ? leaf(get(f, p + "b")) : Tensor{};
      Tensor y = linear(x, w, b);
      y.backward(get(f, p + "gy"));
      check("linear " + c + " y", y, get(f, p + "y"), kOpTol);
      check("linear " + c + " grad x", x.grad(), get(f, p + "gx"), kOpTol);
      check("linear " + c + " grad w", w.grad(), get(f, p + "gw"), kOpTol);
      if (has_bias) check("linear " + c + " grad b", b.grad(), get(f, p + "gb"), kOpTol);
    }
  }
}

TEST_CASE("pytorch parity: cross_entropy with and without label smoothing") {
  const TensorMap f = load_safetensors(fixture_path("cross_entropy")).tensors;
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    for (const std::string c : {"ls0.1", "ls0", "ls0.1_wide"}) {
      const std::string p = c + ".";
      Tensor logits = leaf(get(f, p + "logits"));
      Tensor loss = cross_entropy(logits, get(f, p + "target"), get(f, p + "label_smoothing").item<double>());
      loss.backward();
      check("cross_entropy " + c + " loss", loss, get(f, p + "loss"), kOpTol);
      check("cross_entropy " + c + " grad logits", logits.grad(), get(f, p + "glogits"), kOpTol);
    }
  }
}

TEST_CASE("pytorch parity: ResNet-20 (option B) training step, two SGD steps with momentum and weight decay") {
  const SafetensorsFile file = load_safetensors(fixture_path("resnet20_step"));
  const TensorMap& f = file.tensors;
  for (const auto& be : cpu_backends()) {
    BackendScope scope(be);
    nn::ResNetConfig cfg;
    cfg.shortcut = nn::Shortcut::B;
    cfg.num_classes = 10;
    auto model = nn::resnet20(cfg);

    // The initial weights come from the generator both sides share; the fixture's samples prove the bits agree.
    TensorMap init;
    for (const auto& [key, t] : model->state_dict()) init[key] = init_value(key, t);
    for (const auto& [key, t] : init) {
      if (t.dtype() != DType::f32 || t.numel() < 2) continue;
      const std::vector<float> mine = t.to_vector<float>(), theirs = get(f, "init_sample." + key).to_vector<float>();
      REQUIRE(theirs.size() == (mine.size() + 60) / 61);
      for (size_t i = 0; i < theirs.size(); ++i) REQUIRE_MESSAGE(mine[i * 61] == theirs[i], key, "[", i * 61, "]");
    }
    model->load_state_dict(init);
    model->train();

    optim::SGDOptions opt_cfg;
    opt_cfg.lr = 0.1, opt_cfg.momentum = 0.9, opt_cfg.weight_decay = 1e-4;
    optim::SGD opt(model->parameters(), opt_cfg);
    const Tensor& x = get(f, "x");
    const Tensor& labels = get(f, "labels");
    for (int step = 1; step <= 2; ++step) {
      const std::string s = "step" + std::to_string(step) + ".";
      // PyTorch's weights before this step: the shared initial ones, then its own after step 1
      const std::string before_prefix = step == 1 ? "" : "step1.after.";
      if (step == 2) {
        // Step 2 starts from PyTorch's own step-1 weights and running statistics (the momentum buffers stay
        // minidl's, within 2e-5 of PyTorch's). Starting from our own step-1 weights (~2e-7 away) would let a
        // pre-activation that sits at 0 flip its ReLU and move gradients by 1e-3: a chaotic amplification that
        // depends on which kernels ran (it did under ONEDNN_MAX_CPU_ISA=SSE41, 1 thread), not a wrong kernel.
        TensorMap step1_after = model->state_dict();
        for (auto& [key, t] : step1_after) {
          if (t.dtype() == DType::f32) t = get(f, "step1.after." + key);
        }
        model->load_state_dict(step1_after);
      }
      TensorMap mine_before;
      for (const auto& [key, p] : model->named_parameters()) mine_before[key] = p.detach().clone();
      model->zero_grad();
      Tensor logits = (*model)(x);
      Tensor loss = cross_entropy(logits, labels);
      loss.backward();
      check("resnet20 " + s + "logits", logits, get(f, s + "logits"), kNetTol);
      check("resnet20 " + s + "loss", loss, get(f, s + "loss"), kNetTol);
      if (step == 1) {
        double worst = 0;
        std::string worst_key;
        for (const auto& [key, p] : model->named_parameters()) {
          const Tensor& want = get(f, "step1.grad." + key);
          REQUIRE_MESSAGE(p.grad().defined(), key, ": no gradient");
          const double e = max_rel_err(p.grad(), want);
          CHECK_MESSAGE(e <= kNetTol, "[", be, "] grad ", key, ": max rel err ", e, " (tol ", kNetTol, ")");
          if (e > worst) worst = e, worst_key = key;
        }
        MESSAGE("[" << be << "] resnet20 step1 grads (" << model->named_parameters().size()
                    << " parameters): worst max rel err " << worst << " at " << worst_key << " (tol " << kNetTol
                    << ")");
      }
      opt.step();
      // Parameters after the update, running statistics after this step's forward. The weights are also compared
      // as updates (after - before, each side from its own weights), relative to the update's size: the weights
      // themselves hide an error in a term as small as weight decay (lr * wd * w ~ 1e-5 of w).
      struct Worst {
        double err = 0, tol = 0;
        std::string key;
        void see(double e, const std::string& k, double t = kNetTol) {  // the worst by err / tol
          if (key.empty() || e / t >= err / tol) err = e, tol = t, key = k;
        }
      } params, updates, stats;
      for (const auto& [key, t] : model->state_dict()) {
        if (t.dtype() != DType::f32) continue;  // num_batches_tracked
        const Tensor& want = get(f, s + "after." + key);
        const double e = max_rel_err(t, want);
        CHECK_MESSAGE(e <= kNetTol, "[", be, "] ", s, "after ", key, ": max rel err ", e, " (tol ", kNetTol, ")");
        if (ends_with(key, "running_mean") || ends_with(key, "running_var")) {
          stats.see(e, key);
          continue;
        }
        params.see(e, key);
        const Tensor& torch_before = step == 1 ? init.at(key) : get(f, before_prefix + key);
        const std::vector<double> torch_update = minus(want, torch_before);
        const double u = max_rel_err(minus(t, mine_before.at(key)), torch_update);
        // Tolerance: kNetTol plus the float32 rounding of the weights the updates are taken from: two sides that
        // round w - lr * d differently (an FMA or not) differ by 1 ulp of w, i.e. up to FLT_EPSILON * max|w|; we
        // allow 2 ulp, which is still 40x below the weight-decay term lr * wd * w.
        double w_max = 0, u_max = 0;
        for (double v : want.to_vector<double>()) w_max = std::max(w_max, std::abs(v));
        for (double v : torch_update) u_max = std::max(u_max, std::abs(v));
        const double tol = kNetTol + 2 * FLT_EPSILON * w_max / std::max(1e-6, u_max);
        CHECK_MESSAGE(u <= tol, "[", be, "] ", s, "update of ", key, ": max rel err ", u, " (tol ", tol, ")");
        updates.see(u, key, tol);
      }
      MESSAGE("[" << be << "] resnet20 " << s << "SGD updates (after - before): worst max rel err " << updates.err
                  << " at " << updates.key << " (tol " << updates.tol << " = 1e-4 + 2 ulp of max|w| / max|update|)");
      MESSAGE("[" << be << "] resnet20 " << s << "weights after SGD: worst max rel err " << params.err << " at "
                  << params.key << " (tol " << kNetTol << ")");
      MESSAGE("[" << be << "] resnet20 " << s << "running stats: worst max rel err " << stats.err << " at " << stats.key
                  << " (tol " << kNetTol << ")");
    }
  }
}
