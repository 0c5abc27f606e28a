// The --export job (see export.h).
#include "export.h"

#include <data/loader.h>
#include <minidl.h>
#include <quant/checkpoint.h>
#include <quant/onnx/onnx_export.h>

#include <cstdio>

#include "checkpoint.h"
#include "datasets.h"
#include "model.h"

namespace cifar_resnet20 {

using namespace minidl;

namespace {

// The first n test images in evaluation order with minidl's logits, in batches of 500 (ResNet activations of
// the whole test set at once would take gigabytes).
void write_samples(nn::Module& model, const Config& c, int64_t n, const std::string& path) {
  Datasets ds = make_datasets(c);
  n = std::min<int64_t>(n, static_cast<int64_t>(ds.test->size()));
  data::DataLoader loader(ds.test, {.batch_size = std::min<int64_t>(n, 500),
                                    .shuffle = false,
                                    .seed = c.seed,
                                    .drop_last = false,
                                    .num_workers = c.workers,
                                    .prefetch_factor = 2});
  std::vector<Tensor> inputs, logits, labels;
  int64_t seen = 0;
  NoGradGuard no_grad;
  for (data::Batch& b : loader.epoch(0)) {
    if (seen >= n) break;
    const int64_t take = std::min<int64_t>(b.labels.numel(), n - seen);
    const Tensor x = b.images.slice(0, 0, take).contiguous();
    inputs.push_back(x);
    logits.push_back(model(x).contiguous());
    labels.push_back(b.labels.slice(0, 0, take).contiguous());
    seen += take;
  }
  save_safetensors(path, {{"input", cat(inputs, 0)}, {"logits", cat(logits, 0)}, {"labels", cat(labels, 0)}},
                   {{"backend", cpu_backend_name()}});
  std::printf("=> wrote %lld test images and minidl's logits to %s\n", static_cast<long long>(seen), path.c_str());
}

}  // namespace

int run_export(const Config& flags) {
  set_num_threads(flags.threads);
  const std::string source = flags.evaluate.empty() ? flags.resume : flags.evaluate;
  Checkpoint ck = load_checkpoint(source);
  Config c = ck.config ? *ck.config : flags;
  c.threads = flags.threads;
  c.workers = flags.workers;
  if (!flags.data_dir.empty()) c.data_dir = flags.data_dir;
  auto model = make_model_for_weights(c, ck.model, ck.config ? nullptr : &ck.metadata);
  quant::load_checkpoint(*model, ck.model);
  model->eval();
  auto* resnet = dynamic_cast<nn::ResNet*>(model.get());
  MINIDL_CHECK(resnet != nullptr, "--export onnx: the exporter writes the CIFAR ResNets (resnet20/32/56); --arch ",
               c.arch, " is not one of them");

  quant::OnnxExportOptions opts;
  opts.metadata["minidl.checkpoint"] = source;
  opts.metadata["minidl.scheme"] = c.scheme + " w" + std::to_string(c.bit) + "a" + std::to_string(c.act_bit);
  const quant::OnnxExportReport r = quant::export_onnx(*resnet, flags.export_path, opts);
  std::printf("=> wrote %s: %lld nodes, %lld QCDQ patterns, %lld QONNX nodes (%s), %lld weight tie fixes\n",
              flags.export_path.c_str(), static_cast<long long>(r.nodes), static_cast<long long>(r.qcdq_patterns),
              static_cast<long long>(r.qonnx_nodes),
              r.standard_only() ? "standard ONNX only" : "needs a QONNX-aware runtime",
              static_cast<long long>(r.weight_tie_fixes));
  for (const auto& note : r.notes) std::printf("=> note: %s\n", note.c_str());
  if (flags.export_samples > 0)
    write_samples(*model, c, flags.export_samples, flags.export_path + ".samples.safetensors");
  return 0;
}

}  // namespace cifar_resnet20
