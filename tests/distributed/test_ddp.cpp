// DistributedDataParallel with ranks as threads over loopback Gloo:
// - equivalence: 2 ranks x batch 64 (SyncBatchNorm) against 1 process x batch 128 after 10 SGD steps (momentum,
//   weight decay), for a float ResNet and an APoT W4/A4 ResNet (quantizer alphas trained too): every parameter and
//   buffer within 1e-5 relative, and the two ranks bit-identical;
// - rank 1 starts from other weights: the broadcast at wrap makes them rank 0's;
// - small buckets (many allreduces in flight during backward) and overlap off give the same weights;
// - per-rank BatchNorm (PyTorch's default) keeps the ranks' weights identical;
// - a killed run resumed from rank 0's checkpoint ends where the uninterrupted run ends;
// - a rank that dies mid-training makes the other's backward fail with a clear error.
// minidl-test-requires: GLOO (tests/CMakeLists.txt leaves this file out, reported skipped, without them)
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "autograd/ops.h"
#include "backends/backend.h"
#include "distributed/ddp.h"
#include "distributed/init.h"
#include "nn/models/resnet.h"
#include "optim/hysteresis.h"
#include "optim/sgd.h"
#include "quant/param_groups.h"
#include "quant/quant_resnet.h"
#include "rank_threads.h"
#include "tensor/generator.h"
#include "tensor/safetensors.h"

using namespace minidl;
using namespace minidl::distributed;
using namespace std::chrono_literals;
using minidl_test::fresh_store_dir;
using minidl_test::run_ranks;
using minidl_test::run_ranks_collect;
using minidl_test::thread_rank_options;

namespace {

// Ranks here are threads of one process, and the cpu backend is not safe for concurrent training threads: two
// threads training identical models at once on it diverge (up to 1e-1 relative after 3 steps, measured; the ref
// backend and separate processes agree exactly). These tests therefore run on the ref backend, the oracle.
struct RefBackend {
  RefBackend() { set_cpu_backend("ref"); }
};
const RefBackend use_ref_backend;

constexpr int kSteps = 10;
constexpr int64_t kBatch = 128;

struct Data {
  std::vector<Tensor> x, y;
};

Data make_data(int steps) {
  manual_seed(1234);
  Data d;
  for (int s = 0; s < steps; ++s) {
    d.x.push_back(randn({kBatch, 3, 4, 4}));
    std::vector<int64_t> labels(kBatch);
    for (int64_t i = 0; i < kBatch; ++i) labels[i] = (i * 7 + s * 3) % 10;
    d.y.push_back(from_vector(labels, {kBatch}, TensorOptions().dtype(DType::i64)));
  }
  return d;
}

using ModelFactory = std::shared_ptr<nn::Module> (*)();

std::shared_ptr<nn::Module> float_resnet8() {
  nn::ResNetConfig c;
  c.depth = 8;
  return nn::resnet_cifar(c);
}

std::shared_ptr<nn::Module> apot_w4a4_resnet8() {
  return quant::make_quant_resnet_cifar(8, quant::QuantConfig::apot(4));
}

optim::SGDOptions sgd_options() {
  optim::SGDOptions o;
  o.lr = 0.02;
  o.momentum = 0.9;
  o.weight_decay = 5e-4;
  return o;
}

void train_steps(nn::Module& m, const std::function<Tensor(const Tensor&)>& fwd, optim::Optimizer& opt, const Data& d,
                 int first, int last, int64_t begin, int64_t len) {
  for (int s = first; s < last; ++s) {
    Tensor logits = fwd(d.x[s].narrow(0, begin, len).contiguous());
    Tensor loss = cross_entropy(logits, d.y[s].narrow(0, begin, len).contiguous());
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  (void)m;
}

/// The single-process reference: batch 128.
TensorMap reference_state(ModelFactory make, const Data& d) {
  manual_seed(7);
  auto m = make();
  optim::SGD opt(m->parameters(), sgd_options());
  train_steps(
      *m, [&](const Tensor& x) { return (*m)(x); }, opt, d, 0, static_cast<int>(d.x.size()), 0, kBatch);
  return m->state_dict();
}

double rel_diff(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    num += (va[i] - vb[i]) * (va[i] - vb[i]);
    den += vb[i] * vb[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

/// Worst relative difference over every floating entry; `worst` names it.
double max_rel_diff(const TensorMap& a, const TensorMap& b, std::string& worst) {
  double m = 0;
  for (const auto& [k, t] : b) {
    if (!is_floating(t.dtype())) {
      CHECK_MESSAGE(a.at(k).to_vector<int64_t>() == t.to_vector<int64_t>(), k);
      continue;
    }
    const double r = rel_diff(a.at(k), t);
    if (r > m) m = r, worst = k;
  }
  return m;
}

/// 2 ranks x batch 64 under DDP; returns each rank's final state. Rank 1's model starts from other weights.
std::vector<TensorMap> ddp_states(ModelFactory make, const Data& d, DDPOptions opts, int world = 2) {
  std::vector<std::shared_ptr<nn::Module>> models;
  for (int r = 0; r < world; ++r) {
    manual_seed(r == 0 ? 7 : 99 + r);
    models.push_back(make());
  }
  std::vector<TensorMap> out(world);
  const std::string store = fresh_store_dir();
  run_ranks(world, [&](int r) {
    auto pg = init_process_group(thread_rank_options(store, r, world, 60s));
    DistributedDataParallel ddp(models[r], pg, opts);
    optim::SGD opt(models[r]->parameters(), sgd_options());
    const int64_t per = kBatch / world;
    train_steps(
        *models[r], [&](const Tensor& x) { return ddp(x); }, opt, d, 0, static_cast<int>(d.x.size()), r * per, per);
    out[r] = models[r]->state_dict();
  });
  return out;
}

void check_equivalence(ModelFactory make, const char* what) {
  const Data d = make_data(kSteps);
  const TensorMap ref = reference_state(make, d);
  DDPOptions o;
  o.sync_batchnorm = true;
  auto ranks = ddp_states(make, d, o);
  std::string worst;
  const double rel = max_rel_diff(ranks[0], ref, worst);
  MESSAGE(std::string(what) << ": 2x64 vs 1x128 after " << kSteps << " steps, worst relative difference " << rel << " ("
                            << worst << ")");
  CHECK(rel <= 1e-5);
  std::string w2;
  CHECK(max_rel_diff(ranks[1], ranks[0], w2) == 0);  // the ranks agree exactly
}

}  // namespace

TEST_CASE("ddp: 2 ranks x 64 equal 1 process x 128 after 10 SGD steps (float ResNet, SyncBatchNorm)") {
  check_equivalence(&float_resnet8, "float");
}

TEST_CASE("ddp: 2 ranks x 64 equal 1 process x 128 after 10 SGD steps (APoT W4/A4 ResNet, SyncBatchNorm)") {
  check_equivalence(&apot_w4a4_resnet8, "APoT W4/A4");
}

TEST_CASE("ddp: many small buckets, overlap off, and per-rank BatchNorm keep the ranks in step") {
  const Data d = make_data(2);
  DDPOptions base;
  base.sync_batchnorm = true;
  DDPOptions small = base;
  small.bucket_bytes = 4096;  // dozens of buckets, allreduced while backward runs
  DDPOptions no_overlap = base;
  no_overlap.overlap = false;
  auto a = ddp_states(&float_resnet8, d, small);
  auto b = ddp_states(&float_resnet8, d, no_overlap);
  std::string w;
  CHECK(max_rel_diff(a[0], b[0], w) <= 1e-6);
  DDPOptions per_rank_bn;  // the default: local statistics, rank 0's running statistics
  auto c = ddp_states(&float_resnet8, d, per_rank_bn);
  // parameters agree exactly; running statistics are each rank's own since rank 0's were broadcast before the
  // last forward (as in PyTorch: checkpoints take rank 0's)
  for (const auto& [k, t] : c[0]) {
    if (k.find("running_") != std::string::npos || k.find("num_batches") != std::string::npos) continue;
    CHECK_MESSAGE(rel_diff(c[1].at(k), t) == 0, k);
  }
}

TEST_CASE("ddp: a killed run resumed from rank 0's checkpoint continues to the same weights") {
  const Data d = make_data(4);
  auto make = &float_resnet8;
  DDPOptions o;
  o.sync_batchnorm = true;
  const std::string dir = fresh_store_dir();
  const std::string ckpt = dir + "/last.safetensors";
  auto run = [&](int first, int last, bool resume, bool save, std::vector<TensorMap>* out) {
    std::vector<std::shared_ptr<nn::Module>> models;
    for (int r = 0; r < 2; ++r) {
      manual_seed(7);
      models.push_back(make());
    }
    const std::string store = fresh_store_dir();
    run_ranks(2, [&](int r) {
      auto pg = init_process_group(thread_rank_options(store, r, 2, 60s));
      optim::SGD opt(models[r]->parameters(), sgd_options());
      if (resume) {  // every rank loads the same file
        SafetensorsFile f = load_safetensors(ckpt);
        TensorMap model_state, opt_state;
        for (auto& [k, t] : f.tensors)
          (k.rfind("model.", 0) == 0 ? model_state : opt_state)[k.substr(k.find('.') + 1)] = t;
        models[r]->load_state_dict(model_state);
        opt.load_state_dict(opt_state);
      }
      DistributedDataParallel ddp(models[r], pg, o);
      train_steps(
          *models[r], [&](const Tensor& x) { return ddp(x); }, opt, d, first, last, r * 64, 64);
      if (save && r == 0) {  // rank 0 writes, atomically (temp file + rename)
        TensorMap all;
        for (auto& [k, t] : models[r]->state_dict()) all["model." + k] = t;
        for (auto& [k, t] : opt.state_dict()) all["optim." + k] = t;
        save_safetensors(ckpt + ".tmp", all, {});
        std::filesystem::rename(ckpt + ".tmp", ckpt);
      }
      pg->barrier();  // the others wait for the checkpoint
      if (out) (*out)[r] = models[r]->state_dict();
    });
  };
  std::vector<TensorMap> straight(2), resumed(2);
  run(0, 4, false, false, &straight);
  run(0, 2, false, true, nullptr);  // killed after step 2 (everything is torn down)
  run(2, 4, true, false, &resumed);
  std::string w;
  const double rel = max_rel_diff(resumed[0], straight[0], w);
  MESSAGE("resumed vs uninterrupted: worst relative difference " << rel << " (" << w << ")");
  CHECK(rel <= 1e-6);
}

TEST_CASE("ddp: a rank that dies mid-training makes the other fail with a clear error within the timeout") {
  const Data d = make_data(3);
  std::vector<std::shared_ptr<nn::Module>> models;
  for (int r = 0; r < 2; ++r) {
    manual_seed(7);
    models.push_back(float_resnet8());
  }
  const std::string store = fresh_store_dir();
  const auto t0 = std::chrono::steady_clock::now();
  auto errors = run_ranks_collect(2, [&](int r) {
    auto pg = init_process_group(thread_rank_options(store, r, 2, 3s));
    DistributedDataParallel ddp(models[r], pg, {});
    optim::SGD opt(models[r]->parameters(), sgd_options());
    train_steps(
        *models[r], [&](const Tensor& x) { return ddp(x); }, opt, d, 0, 1, r * 64, 64);
    if (r == 1) return;  // dies after one step: DDP and its process groups close their connections
    train_steps(
        *models[r], [&](const Tensor& x) { return ddp(x); }, opt, d, 1, 3, r * 64, 64);
  });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(errors[1] == nullptr);
  REQUIRE(errors[0] != nullptr);
  try {
    std::rethrow_exception(errors[0]);
  } catch (const Error& e) {
    MESSAGE("survivor's error after " << s << " s: " << std::string(e.what()));
    CHECK(std::string(e.what()).find("rank 0 of 2") != std::string::npos);
  }
  CHECK(s < 20);
}

TEST_CASE("ddp: the hysteresis optimizer of binary weights stays identical on every rank") {
  const Data d = make_data(3);
  std::vector<std::shared_ptr<nn::Module>> models;
  auto make = [] {
    return quant::make_quant_resnet_cifar(8, quant::QuantConfig::from_scheme("binary", 1, 32, quant::Semantics::APoT_I,
                                                                             /*binary_from_optimizer=*/true));
  };
  for (int r = 0; r < 2; ++r) {
    manual_seed(r == 0 ? 7 : 8);
    models.push_back(make());
  }
  std::vector<TensorMap> out(2);
  const std::string store = fresh_store_dir();
  run_ranks(2, [&](int r) {
    auto pg = init_process_group(thread_rank_options(store, r, 2, 60s));
    DDPOptions o;
    o.sync_batchnorm = true;
    DistributedDataParallel ddp(models[r], pg, o);
    optim::HysteresisOptions ho;
    ho.lr = 0.05;
    optim::Hysteresis opt(quant::hysteresis_param_groups(*models[r]), ho);
    train_steps(
        *models[r], [&](const Tensor& x) { return ddp(x); }, opt, d, 0, 3, r * 64, 64);
    out[r] = models[r]->state_dict();
  });
  std::string w;
  CHECK(max_rel_diff(out[1], out[0], w) == 0);
}
