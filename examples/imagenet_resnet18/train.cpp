// Training and evaluation jobs (see train.h).
#include "train.h"

#include <checkpoint_file.h>
#include <core/env.h>
#include <data/loader.h>
#include <minidl.h>
#include <quant/checkpoint.h>
#include <quant/quant_resnet.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "meters.h"
#include "model.h"
#include "pipeline.h"

namespace imagenet_resnet18 {

using namespace minidl;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kFormat = "minidl-imagenet-resnet/1";

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

data::DataLoader make_loader(const data::DatasetPtr& ds, const Config& c, bool train) {
  return data::DataLoader(ds, {.batch_size = c.batch_size,
                               .shuffle = train,
                               .seed = c.seed,
                               .drop_last = false,
                               .num_workers = c.workers,
                               .prefetch_factor = 2});
}

struct ValResult {
  double loss = 0, top1 = 0, top5 = 0;
};

// PyTorch's validate(): "Test: [i/n] Time .. Loss .. Acc@1 .. Acc@5" every print_freq batches, then
// " * Acc@1 x Acc@5 y".
ValResult validate(nn::Module& model, data::DataLoader& loader, const Config& c) {
  NoGradGuard no_grad;
  model.eval();
  const auto params = model.parameters();
  const Device dev = params.empty() ? kCPU : params.front().device();  // batches go where the model is
  Average time, loss, top1, top5;
  const int64_t nb = loader.num_batches();
  const int64_t steps = c.max_steps > 0 ? std::min(nb, c.max_steps) : nb;
  auto t = Clock::now();
  for (data::Batch& b : loader.epoch(0)) {
    if (b.batch_index >= steps) break;
    Tensor logits = model(b.images.to(dev));
    const int64_t n = b.labels.numel();
    loss.add(cross_entropy(logits, b.labels.to(dev)).item<double>(), n);
    auto [a1, a5] = topk_accuracy(logits, b.labels);
    top1.add(a1, n);
    top5.add(a5, n);
    time.add(since(t));
    t = Clock::now();
    if (b.batch_index % c.print_freq == 0 || b.batch_index + 1 == steps)
      std::printf("Test: [%lld/%lld]\tTime %6.3f (%6.3f)\tLoss %.4e (%.4e)\tAcc@1 %6.2f (%6.2f)\tAcc@5 %6.2f (%6.2f)\n",
                  static_cast<long long>(b.batch_index), static_cast<long long>(steps), time.last, time.avg(),
                  loss.last, loss.avg(), top1.last, top1.avg(), top5.last, top5.avg());
  }
  std::printf(" * Acc@1 %.3f Acc@5 %.3f\n", top1.avg(), top5.avg());
  std::fflush(stdout);
  return {loss.avg(), top1.avg(), top5.avg()};
}

void print_quant_state(const nn::Module& model) {
  if (quant::layer_alphas(model).empty()) return;
  quant::show_params(model, std::cout);
  std::cout.flush();
}

// --pretrained: progressive init from a float / higher-bit checkpoint, or torchvision-named weights.
void load_pretrained(nn::Module& model, const std::string& path) {
  minidl_examples::CheckpointContents ck = minidl_examples::load_checkpoint_file(path);
  auto res = quant::load_progressive(model, ck.model);
  std::printf("=> loaded pretrained weights from %s (%zu missing, %zu unexpected keys)\n", path.c_str(),
              res.missing_keys.size(), res.unexpected_keys.size());
  for (auto& k : res.missing_keys) std::printf("   missing (kept at its initial value): %s\n", k.c_str());
  for (auto& k : res.unexpected_keys) std::printf("   unexpected (ignored): %s\n", k.c_str());
}

}  // namespace

int run_training(const Config& flags) {
  Config c = flags;
  std::optional<minidl_examples::CheckpointContents> resume;
  if (!flags.resume.empty()) {
    resume = minidl_examples::load_checkpoint_file(flags.resume);
    MINIDL_CHECK(
        !resume->config_json.empty() && resume->metadata.count("format") && resume->metadata.at("format") == kFormat,
        "--resume ", flags.resume, ": not an imagenet_resnet18 training checkpoint");
    c = Config::from_json(resume->config_json);  // the run continues as it was configured
    c.resume = flags.resume;
    if (!flags.data.empty()) c.data = flags.data;
    if (!flags.save_dir.empty()) c.save_dir = flags.save_dir;
    if (c.save_dir.empty() && fs::is_directory(flags.resume)) c.save_dir = flags.resume;
    c.workers = flags.workers;
    c.threads = flags.threads;
    c.device = flags.device;
    c.max_steps = flags.max_steps;
    if (flags.epochs_given) c.epochs = flags.epochs;
  }
  set_num_threads(c.threads);
  manual_seed(c.seed);
  std::printf(
      "=> imagenet_resnet18: %s %s, %d epochs, batch %lld, lr %g, wd %g, image size %lld, backend %s, %d "
      "threads, %d loader workers\n",
      c.arch.c_str(), c.bit == 32 ? "float" : ("APoT " + std::to_string(c.bit) + "-bit").c_str(), c.epochs,
      static_cast<long long>(c.batch_size), c.lr, c.wd, static_cast<long long>(c.image_size),
      c.device == "cuda" ? "cuda" : cpu_backend_name().c_str(), get_num_threads(), c.workers);
  Datasets ds = make_datasets(c, /*need_train=*/true);
  auto model = make_model(c, ds.num_classes);
  const Device dev = c.device == "cuda" ? Device::cuda(0) : kCPU;
  model->to(dev);  // parameters and buffers; the optimizer makes its state next to them
  std::printf("=> train: %s\n=> val: %s\n=> %lld parameters\n", ds.train->describe().c_str(),
              ds.val->describe().c_str(), static_cast<long long>(model->num_parameters()));
  if (!c.pretrained.empty() && !resume) load_pretrained(*model, c.pretrained);
  auto opt = make_optimizer(*model, c);
  data::DataLoader train_loader = make_loader(ds.train, c, true);
  data::DataLoader val_loader = make_loader(ds.val, c, false);
  const int64_t nb = train_loader.num_batches();
  auto sched = make_scheduler(*opt, c, nb);
  int64_t next_epoch = 0;
  double best = 0;
  if (resume) {
    model->load_state_dict(resume->model);
    opt->load_state_dict(resume->optimizer);
    sched->load_state_dict(resume->scheduler);
    next_epoch = resume->next_epoch;
    best = resume->best_acc;
    std::printf("=> resumed from %s at epoch %lld (best Acc@1 %.3f)\n", c.resume.c_str(),
                static_cast<long long>(next_epoch), best);
  }
  fs::path metrics;
  if (!c.save_dir.empty()) {
    fs::create_directories(c.save_dir);
    metrics = fs::path(c.save_dir) / "metrics.csv";
    if (!fs::exists(metrics))
      std::ofstream(metrics) << "epoch,lr,train_loss,train_acc1,val_loss,val_acc1,val_acc5,epoch_s,img_per_s,data_s\n";
  }

  for (int64_t epoch = next_epoch; epoch < c.epochs; ++epoch) {
    model->train();
    Average batch_time, data_time, loss, top1, top5;
    const int64_t steps = c.max_steps > 0 ? std::min(nb, c.max_steps) : nb;
    const auto t_epoch = Clock::now();
    auto t = Clock::now();
    train_loader.start_epoch(epoch);
    for (int64_t i = 0; i < steps; ++i) {
      std::optional<data::Batch> b = train_loader.next();  // the wait for data is the "Data" column
      MINIDL_CHECK(b.has_value(), "loader ended the epoch after ", i, " of ", steps, " batches");
      data_time.add(since(t));
      Tensor logits = (*model)(b->images.to(dev));
      Tensor l = cross_entropy(logits, b->labels.to(dev));
      opt->zero_grad();
      l.backward();
      opt->step();
      sched->step();
      const int64_t n = b->labels.numel();
      loss.add(l.item<double>(), n);
      auto [a1, a5] = topk_accuracy(logits, b->labels);
      top1.add(a1, n);
      top5.add(a5, n);
      batch_time.add(since(t));
      t = Clock::now();
      if (i % c.print_freq == 0 || i + 1 == steps) {
        std::printf(
            "Epoch: [%lld][%lld/%lld]\tTime %6.3f (%6.3f)\tData %6.3f (%6.3f)\tLoss %.4e (%.4e)\tAcc@1 %6.2f "
            "(%6.2f)\tAcc@5 %6.2f (%6.2f)\n",
            static_cast<long long>(epoch), static_cast<long long>(i), static_cast<long long>(steps), batch_time.last,
            batch_time.avg(), data_time.last, data_time.avg(), loss.last, loss.avg(), top1.last, top1.avg(), top5.last,
            top5.avg());
        std::fflush(stdout);
      }
    }
    train_loader.stop();
    const double epoch_s = since(t_epoch);
    const double lr_now = opt->param_groups()[0].lr();
    ValResult v = validate(*model, val_loader, c);
    print_quant_state(*model);
    const bool is_best = v.top1 > best;
    best = std::max(best, v.top1);
    const double img_s = static_cast<double>(loss.count) / epoch_s;
    std::printf(
        "=> epoch %lld: train loss %.4f Acc@1 %.3f | val loss %.4f Acc@1 %.3f Acc@5 %.3f (best %.3f) | "
        "%.1f s, %.1f img/s, data wait %.1f s",
        static_cast<long long>(epoch), loss.avg(), top1.avg(), v.loss, v.top1, v.top5, best, epoch_s, img_s,
        data_time.sum);
    if (c.skip_bad_images) std::printf(", %lld bad images skipped", static_cast<long long>(ds.skipped()));
    std::printf("\n");
    std::fflush(stdout);
    if (!c.save_dir.empty()) {
      std::ofstream(metrics, std::ios::app)
          << epoch << ',' << lr_now << ',' << loss.avg() << ',' << top1.avg() << ',' << v.loss << ',' << v.top1 << ','
          << v.top5 << ',' << epoch_s << ',' << img_s << ',' << data_time.sum << '\n';
      const std::string json = c.to_json();
      minidl_examples::save_checkpoint_file((fs::path(c.save_dir) / "last.safetensors").string(), kFormat, *model, *opt,
                                            *sched, epoch + 1, best, json);
      if (is_best)
        minidl_examples::save_checkpoint_file((fs::path(c.save_dir) / "best.safetensors").string(), kFormat, *model,
                                              *opt, *sched, epoch + 1, best, json);
    }
  }
  std::printf("=> done: best Acc@1 %.3f\n", best);
  return 0;
}

int run_evaluation(const Config& flags) {
  set_num_threads(flags.threads);
  const std::string path = !flags.resume.empty() ? flags.resume : flags.pretrained;
  minidl_examples::CheckpointContents ck = minidl_examples::load_checkpoint_file(path);
  Config c = ck.config_json.empty() ? flags : Config::from_json(ck.config_json);
  c.threads = flags.threads;
  c.workers = flags.workers;
  c.max_steps = flags.max_steps;
  c.print_freq = flags.print_freq;
  c.batch_size = flags.batch_size;
  if (!flags.data.empty()) c.data = flags.data;
  if (flags.synthetic) c.synthetic = true;
  if (flags.val_resize > 0) c.val_resize = flags.val_resize;  // an evaluation choice, not a property of the weights
  if (ck.config_json.empty()) c.bit = flags.bit;  // foreign weights: the flags say what they are
  Datasets ds = make_datasets(c, /*need_train=*/false);
  auto model = make_model(c, ds.num_classes);
  quant::load_checkpoint(*model, ck.model);
  model->to(flags.device == "cuda" ? Device::cuda(0) : kCPU);
  std::printf("=> evaluating %s (%s) from %s on %s, backend %s\n", c.arch.c_str(),
              c.bit == 32 ? "float" : ("APoT " + std::to_string(c.bit) + "-bit").c_str(), path.c_str(),
              ds.val->describe().c_str(), cpu_backend_name().c_str());
  print_quant_state(*model);
  data::DataLoader loader = make_loader(ds.val, c, false);
  validate(*model, loader, c);
  if (c.skip_bad_images) std::printf("=> %lld bad images skipped\n", static_cast<long long>(ds.skipped()));
  return 0;
}

}  // namespace imagenet_resnet18
