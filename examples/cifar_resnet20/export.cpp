// The --export job (see export.h).
#include "export.h"

#include <core/env.h>
#include <data/loader.h>
#include <minidl.h>
#include <quant/checkpoint.h>
#include <quant/onnx/onnx_export.h>
#include <quant/packed/pack.h>
#include <quant/packed/packed_reference.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

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

int write_packed(nn::ResNet& model, const std::string& path) {
  const quant::PackedResNet p = quant::pack(model);
  quant::save_packed(p, path);
  int integer = 0;
  for (const quant::PackedLayer* l : p.layers()) {
    integer += l->integer();
    const bool fw = l->weight_kind == quant::WeightQuant::Float;
    std::string weights = fw ? std::string("float32 weights") : std::to_string(l->weight_bits);
    if (!fw) weights.append("-bit weights, ").append(std::to_string(l->codes.bits)).append("-bit indices");
    std::string input = quant::act_quant_name(l->act);
    if (l->act != quant::ActQuant::Float) input.append(" ").append(std::to_string(l->act_bits)).append("-bit");
    std::printf("   %-22s %-8s %-36s input %-12s %s path\n", l->name.c_str(), quant::weight_quant_name(l->weight_kind),
                weights.c_str(), input.c_str(), l->integer() ? "integer" : "float");
  }
  const quant::PackedSizes sz = quant::measure_sizes(model, path, path + ".fp32.tmp");
  std::printf(
      "=> wrote %s (%s): %lld bytes packed vs %lld bytes fp32 (state dict as safetensors): %.2fx smaller; "
      "%d of %zu layers on the integer path\n",
      path.c_str(), p.description.c_str(), static_cast<long long>(sz.packed), static_cast<long long>(sz.fp32),
      sz.ratio(), integer, p.layers().size());
  return 0;
}

// Argmax of row i of a contiguous (N, C) tensor's values.
int64_t row_argmax(const std::vector<double>& v, int64_t i, int64_t c) {
  int64_t best = 0;
  for (int64_t j = 1; j < c; ++j)
    if (v[static_cast<size_t>(i * c + j)] > v[static_cast<size_t>(i * c + best)]) best = j;
  return best;
}

}  // namespace

int run_evaluate_packed(const Config& flags) {
  set_num_threads(flags.threads);
  // --dtype f64: the packed model in double (PackedResNet::forward_f64) and, with -e, the fake-quant model made
  // the same model in float64 (quant::make_f64_reference) on the ref backend: docs/deploy.md, "Exactness in float64".
  MINIDL_CHECK(flags.dtype == "f32" || flags.dtype == "f64", "--dtype: expected f32 or f64, got '", flags.dtype, "'");
  const bool f64 = flags.dtype == "f64";
  if (f64) {
    MINIDL_CHECK(env_string("MINIDL_BACKEND").value_or("") != "cpu",
                 "--evaluate-packed --dtype f64 runs the fake-quant reference on the ref backend (the cpu backend's "
                 "convolutions are float32 only); unset MINIDL_BACKEND=cpu");
    set_cpu_backend("ref");
  }
  const quant::PackedResNet packed = quant::load_packed(flags.evaluate_packed);
  std::printf("=> packed model %s (%s), %zu layers, evaluated in %s\n", flags.evaluate_packed.c_str(),
              packed.description.c_str(), packed.layers().size(), f64 ? "float64" : "float32");
  if (!f64) {  // which integer kernels this host runs (the float64 path has its own exact loops)
    std::map<std::string, int> kernels;
    int integer = 0;
    for (const quant::PackedLayer* l : packed.layers())
      if (l->integer()) {
        ++integer;
        ++kernels[l->int_kernel()];
      }
    std::string list;
    for (const auto& [name, count] : kernels) list += (list.empty() ? "" : ", ") + name + " " + std::to_string(count);
    std::printf("=> integer convolutions: %d of %zu layers%s%s%s\n", integer, packed.layers().size(),
                list.empty() ? "" : " (", list.c_str(), list.empty() ? "" : ")");
  }
  Config c = flags;
  std::shared_ptr<nn::Module> model;
  if (!flags.evaluate.empty()) {
    Checkpoint ck = load_checkpoint(flags.evaluate);
    if (ck.config) c = *ck.config;
    c.threads = flags.threads;
    c.workers = flags.workers;
    if (!flags.data_dir.empty()) c.data_dir = flags.data_dir;
    model = make_model_for_weights(c, ck.model, ck.config ? nullptr : &ck.metadata);
    quant::load_checkpoint(*model, ck.model);
    model->eval();
    if (f64) {
      auto* resnet = dynamic_cast<nn::ResNet*>(model.get());
      MINIDL_CHECK(resnet != nullptr, "--evaluate-packed --dtype f64: -e ", flags.evaluate,
                   " is not a CIFAR ResNet (--arch ", c.arch, ")");
      quant::make_f64_reference(*resnet, packed);
      std::printf(
          "=> comparing with the fake-quant model of %s in float64 on the %s backend (batch norm as the cpu "
          "kernel's float32 x * a + b, weights frozen at code x unit, exact APoT levels: checked against the "
          "packed file)\n",
          flags.evaluate.c_str(), cpu_backend_name().c_str());
    } else {
      std::printf("=> comparing with the fake-quant model of %s\n", flags.evaluate.c_str());
    }
  }
  Datasets ds = make_datasets(c);
  data::DataLoader loader(ds.test, {.batch_size = flags.packed_batch,
                                    .shuffle = false,
                                    .seed = c.seed,
                                    .drop_last = false,
                                    .num_workers = c.workers,
                                    .prefetch_factor = 2});
  int64_t seen = 0, correct_p = 0, correct_f = 0, agree = 0, close_rows = 0, tight_rows = 0, batches = 0;
  double max_diff = 0, t_packed = 0, t_fake = 0;
  NoGradGuard no_grad;
  using clock = std::chrono::steady_clock;
  for (data::Batch& b : loader.epoch(0)) {
    if (flags.max_steps > 0 && batches >= flags.max_steps) break;
    ++batches;
    const Tensor x = f64 ? b.images.to(DType::f64).contiguous() : b.images.contiguous();
    const int64_t n = x.size(0), k = packed.num_classes;
    const std::vector<int64_t> y = b.labels.to_vector<int64_t>();
    auto t0 = clock::now();
    const std::vector<double> lp = (f64 ? packed.forward_f64(x) : packed.forward(x)).to_vector<double>();
    t_packed += std::chrono::duration<double>(clock::now() - t0).count();
    std::vector<double> lf;
    if (model) {
      t0 = clock::now();
      lf = (*model)(x).contiguous().to_vector<double>();
      t_fake += std::chrono::duration<double>(clock::now() - t0).count();
      MINIDL_CHECK(lf.size() == lp.size(), "--evaluate-packed: the checkpoint's model gives ", lf.size() / n,
                   " logits per image, the packed model ", k);
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t ap = row_argmax(lp, i, k);
      correct_p += ap == y[static_cast<size_t>(i)];
      if (!model) continue;
      const int64_t af = row_argmax(lf, i, k);
      correct_f += af == y[static_cast<size_t>(i)];
      agree += af == ap;
      double d = 0;
      for (int64_t j = 0; j < k; ++j)
        d = std::max(d, std::abs(lp[static_cast<size_t>(i * k + j)] - lf[static_cast<size_t>(i * k + j)]));
      max_diff = std::max(max_diff, d);
      close_rows += d <= 1e-4;
      tight_rows += d <= 1e-9;
    }
    seen += n;
  }
  std::printf("=> packed: top-1 %.3f%% (%lld / %lld), %.2f ms per batch of %lld (%.1f img/s)\n",
              100.0 * static_cast<double>(correct_p) / static_cast<double>(seen), static_cast<long long>(correct_p),
              static_cast<long long>(seen), 1e3 * t_packed / static_cast<double>(batches),
              static_cast<long long>(flags.packed_batch), static_cast<double>(seen) / t_packed);
  if (model) {
    std::printf("=> fake-quant: top-1 %.3f%% (%lld / %lld), %.2f ms per batch (%.1f img/s)\n",
                100.0 * static_cast<double>(correct_f) / static_cast<double>(seen), static_cast<long long>(correct_f),
                static_cast<long long>(seen), 1e3 * t_fake / static_cast<double>(batches),
                static_cast<double>(seen) / t_fake);
    std::printf(
        "=> argmax agreement packed vs fake-quant: %lld / %lld images; logits within 1e-4 on %lld / %lld; "
        "max |logit diff| %.3g\n",
        static_cast<long long>(agree), static_cast<long long>(seen), static_cast<long long>(close_rows),
        static_cast<long long>(seen), max_diff);
    if (f64)
      std::printf("=> float64: logits within 1e-9 on %lld / %lld images\n", static_cast<long long>(tight_rows),
                  static_cast<long long>(seen));
  }
  return 0;
}

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
  MINIDL_CHECK(resnet != nullptr, "--export ", flags.export_format,
               ": the exporter writes the CIFAR ResNets (resnet20/32/56); --arch ", c.arch, " is not one of them");
  if (flags.export_format == "packed") return write_packed(*resnet, flags.export_path);

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
