// Adaptive bits and --measure-var for cifar_resnet20 (see actnn_adaptive.h).
#include "actnn_adaptive.h"

#include <data/loader.h>
#include <minidl.h>
#include <quant/actnn/gradient_variance.h>
#include <quant/actnn/packer.h>
#include <quant/checkpoint.h>

#include <cstdio>

#include "actnn_run.h"
#include "checkpoint.h"
#include "datasets.h"
#include "model.h"

namespace cifar_resnet20 {

using namespace minidl;
namespace actnn = minidl::quant::actnn;

std::shared_ptr<actnn::AdaptiveBits> make_adaptive_bits(const Config& c, const actnn::Config& ac, int64_t train_size) {
  auto policy = actnn::make_adaptive_bits(ac, train_size);
  if (!policy) return nullptr;
  if (is_quantized(c)) {
    std::printf("=> actnn: --scheme %s layers have no gradient probes: fixed %d-bit activations, no adaptive bits\n",
                c.scheme.c_str(), ac.bits);
    return nullptr;
  }
  MINIDL_CHECK(c.device == "cpu",
               "ActNN: L3's adaptive bits (--ibits above --cabits, or --perlayer, both L3's "
               "defaults) run on the cpu only; with --device ",
               c.device, " use fixed bits: --ibits 2 --perlayer=false (or --actnn-level L1 / L2)");
  std::printf("=> actnn adaptive bits: per-sample from ibits %d%s%s\n", ac.ibits,
              !ac.per_layer      ? ""
              : ac.count_bn_bits ? ", per-layer (the budget counts batch-norm codes)"
                                 : ", per-layer (ActNN's budget: conv / linear inputs only)",
              ac.use_gradient ? ", gradient sensitivity per sample" : "");
  return policy;
}

int run_measure_var(const Config& flags) {
  const actnn::Config ac = actnn_config(flags);
  set_num_threads(flags.threads);
  Checkpoint ck = load_checkpoint(flags.measure_var);
  MINIDL_CHECK(ck.config.has_value(), "--measure-var ", flags.measure_var, ": not a cifar_resnet20 checkpoint");
  Config c = *ck.config;  // the network and data of the checkpoint; batch size and seed from the flags
  c.threads = flags.threads;
  c.workers = flags.workers;
  c.batch_size = flags.batch_size;
  c.seed = flags.seed;
  if (!flags.data_dir.empty()) c.data_dir = flags.data_dir;
  manual_seed(c.seed);
  Datasets ds = make_datasets(c);
  auto policy = make_adaptive_bits(c, ac, ds.train->size());
  auto model = make_model(c, ds.in_channels, ds.num_classes, nullptr, policy);
  quant::load_checkpoint(*model, ck.model);
  std::printf("=> --measure-var %s: %s on %s, batch %lld, %d batches, %s%s\n", flags.measure_var.c_str(),
              c.arch.c_str(), c.dataset.c_str(), static_cast<long long>(c.batch_size), flags.var_batches,
              ac.str().c_str(), policy ? " (adaptive bits)" : " (fixed bits)");
  data::DataLoader loader(
      ds.train,
      {.batch_size = c.batch_size, .shuffle = true, .seed = c.seed, .drop_last = true, .num_workers = c.workers});
  std::vector<actnn::VarianceBatch> batches;
  for (data::Batch& b : loader.epoch(0)) {
    batches.push_back({b.images, b.labels, b.indices});
    if (static_cast<int>(batches.size()) == flags.var_batches) break;
  }
  actnn::Packer packer(ac);
  if (policy) packer.set_bit_policy(policy);
  const actnn::VarianceReport r = actnn::measure_gradient_variance(*model, batches, packer.hooks(), policy);
  for (const auto& l : r.layers)
    std::printf("%s, grad norm = %.6g, sample var = %.6g, bias = %.6g, var = %.6g\n", l.name.c_str(), l.grad_sqnorm,
                l.sample_var, l.bias, l.var);
  if (policy) std::printf("=> bits after the measurement:\n%s", policy->bit_map().c_str());
  std::printf("%s\n", r.overall().c_str());
  return 0;
}

}  // namespace cifar_resnet20
