// Training and evaluation jobs (see run.h).
#include "run.h"

#include <backends/cuda_settings.h>
#include <core/env.h>
#include <data/loader.h>
#include <minidl.h>
#include <optim/lr_scheduler.h>
#include <optim/sgd.h>
#include <quant/checkpoint.h>
#include <quant/quant_resnet.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "actnn_adaptive.h"
#include "actnn_run.h"
#include "checkpoint.h"
#include "datasets.h"
#include "distributed_run.h"
#include "evaluate.h"
#include "metrics.h"
#include "model.h"

namespace cifar_resnet20 {

using namespace minidl;
namespace fs = std::filesystem;

namespace {

std::string hms(double seconds) {
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

std::unique_ptr<optim::LRScheduler> make_scheduler(optim::Optimizer& opt, const Config& c, int64_t steps_per_epoch) {
  const int64_t total = static_cast<int64_t>(c.epochs) * steps_per_epoch;
  const int64_t warmup = static_cast<int64_t>(c.warmup_epochs * static_cast<double>(steps_per_epoch));
  std::unique_ptr<optim::LRScheduler> main;
  if (c.schedule == "cosine") {
    main = std::make_unique<optim::CosineAnnealingLR>(opt, std::max<int64_t>(1, total - warmup));
  } else {
    std::vector<int64_t> milestones;
    std::stringstream ss(c.schedule);
    std::string item;
    while (std::getline(ss, item, ',')) {
      try {
        milestones.push_back(std::stoll(item) * steps_per_epoch - warmup);
      } catch (const std::exception&) {
        MINIDL_FAIL("--schedule: expected 'cosine' or comma-separated epochs, got '", c.schedule, "'");
      }
    }
    main = std::make_unique<optim::MultiStepLR>(opt, milestones, 0.1);
  }
  if (warmup > 0) return std::make_unique<optim::LinearWarmupLR>(opt, warmup, std::move(main));
  return main;
}

data::DataLoader make_loader(const data::DatasetPtr& ds, const Config& c, int64_t batch, bool train,
                             std::shared_ptr<const data::Sampler> sampler = nullptr) {
  return data::DataLoader(ds, {.batch_size = batch,
                               .shuffle = train,
                               .seed = c.seed,
                               .drop_last = false,
                               .num_workers = c.workers,
                               .prefetch_factor = 2,
                               .sampler = std::move(sampler),
                               // --device cuda: the workers copy each batch to the GPU through pinned memory
                               .device = c.device == "cuda" ? Device::cuda(0) : kCPU,
                               .pin_memory = c.device == "cuda"});
}

// --dtype f64 runs on the ref backend: the cpu backend's oneDNN kernels (convolutions, average pooling) are
// float32 only and refuse float64 rather than compute it in float32. An explicit MINIDL_BACKEND=cpu is a
// contradiction, not something to override silently.
DType select_eval_dtype(const std::string& name) {
  if (name == "f32") return DType::f32;
  MINIDL_CHECK(name == "f64", "--dtype: expected f32 or f64, got '", name, "'");
  MINIDL_CHECK(env_string("MINIDL_BACKEND").value_or("") != "cpu",
               "--dtype f64 runs on the ref backend (the cpu backend's convolutions are float32 only); unset "
               "MINIDL_BACKEND=cpu");
  set_cpu_backend("ref");
  return DType::f64;
}

}  // namespace

int run_training(const Config& flags) {
  Config c = flags;
  std::optional<Checkpoint> resume;
  if (!flags.resume.empty()) {
    resume = load_checkpoint(flags.resume);
    MINIDL_CHECK(resume->config.has_value(), "--resume ", flags.resume, ": not a cifar_resnet20 training checkpoint");
    c = *resume->config;  // the run continues exactly as it was configured
    c.resume = flags.resume;
    if (!flags.save_dir.empty()) c.save_dir = flags.save_dir;
    if (c.save_dir.empty() && fs::is_directory(flags.resume)) c.save_dir = flags.resume;
    if (flags.max_steps > 0) c.max_steps = flags.max_steps;
    c.loss_log = flags.loss_log;
    c.threads = flags.threads;
    c.workers = flags.workers;
    if (flags.save_every > 0) c.save_every = flags.save_every;
    c.sync_bn = flags.sync_bn;  // how the ranks cooperate is a launch choice, not saved in the checkpoint
    c.no_overlap = flags.no_overlap;
    c.bucket_mb = flags.bucket_mb;
  }
  MINIDL_CHECK(c.save_every == 0 || !c.save_dir.empty(), "--save-every needs --save DIR");
  set_num_threads(c.threads);
  manual_seed(c.seed);

  std::printf("=> cifar_resnet20: %s on %s, %d epochs, batch %lld, lr %g, backend %s, %d threads\n", c.arch.c_str(),
              c.dataset.c_str(), c.epochs, static_cast<long long>(c.batch_size), c.lr,
              c.device == "cuda" ? "cuda" : cpu_backend_name().c_str(), get_num_threads());
  const auto [in_channels, num_classes] = dataset_channels_classes(c);
  std::unique_ptr<quant::actnn::Packer> packer = make_packer(c);  // --actnn-level (null: off)
  // ActNN's adaptive bits (L3 with --ibits above --cabits, or --perlayer) need gradient probes in the model
  auto adaptive = packer ? make_adaptive_bits(c, packer->config(), 0) : nullptr;
  if (adaptive) packer->set_bit_policy(adaptive);
  auto model = make_model(c, in_channels, num_classes, nullptr, adaptive);  // before the data: fail fast
  const Device dev = c.device == "cuda" ? Device::cuda(0) : kCPU;
  model->to(dev);                 // parameters and buffers; the optimizer makes its state next to them
  DistributedRun dist(model, c);  // world size 1 unless launched by mpirun or with RANK/WORLD_SIZE
  Datasets ds = make_datasets(c);
  if (adaptive && c.usegradient) adaptive->set_dataset_size(ds.train->size());
  std::printf("=> %s, %lld parameters\n", ds.train->describe().c_str(),
              static_cast<long long>(model->num_parameters()));
  if (is_quantized(c)) {
    for (const auto& line : quant::describe_layers(*model)) std::printf("   %s\n", line.c_str());
  }

  if (!c.init.empty() && !resume) {
    // Progressive initialisation (spec 1.11): a float or higher-bit checkpoint into this model; quantizer
    // state the checkpoint lacks keeps its initial value.
    Checkpoint init = load_checkpoint(c.init);
    auto res = quant::load_progressive(*model, init.model);
    std::printf("=> initialised from %s (%zu missing, %zu unexpected keys)\n", c.init.c_str(), res.missing_keys.size(),
                res.unexpected_keys.size());
    for (auto& k : res.missing_keys) std::printf("   missing (kept at its initial value): %s\n", k.c_str());
  }

  auto opt_ptr = make_optimizer(*model, c);
  optim::Optimizer& opt = *opt_ptr;
  data::DataLoader train_loader =
      make_loader(ds.train, c, dist.local_batch(c.batch_size), true, dist.train_sampler(ds.train->size(), c.seed));
  data::DataLoader test_loader = make_loader(ds.test, c, 100, false);
  const int64_t nb = train_loader.num_batches();
  auto sched = make_scheduler(opt, c, nb);

  TrainState st;
  if (resume) {
    model->load_state_dict(resume->model);
    opt.load_state_dict(resume->optimizer);
    sched->load_state_dict(resume->scheduler);
    st = resume->state;
    MINIDL_CHECK(st.next_step <= nb, "--resume ", c.resume, ": the checkpoint is at step ", st.next_step, " of epoch ",
                 st.next_epoch, ", but an epoch has only ", nb, " batches");
    // The generator continues where the checkpoint left it (building the model above drew from it again).
    if (st.has_rng) {
      default_generator().manual_seed(st.rng_seed);
      default_generator().set_offset(st.rng_offset);
    }
    if (!dist.is_main()) st.loss_sum = 0.0, st.correct = 0, st.seen = 0;  // rank 0 carries the ranks' sums
    std::printf("=> resumed from %s at epoch %lld, step %lld (best %.3f%%)\n", c.resume.c_str(),
                static_cast<long long>(st.next_epoch), static_cast<long long>(st.next_step), st.best_acc);
  }
  fs::path metrics;
  if (!c.save_dir.empty() && dist.is_main()) {
    fs::create_directories(c.save_dir);
    remove_stale_temporaries(c.save_dir);
    metrics = fs::path(c.save_dir) / "metrics.csv";
    prepare_metrics(metrics, st.next_epoch);
  }

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> loss_log_file(nullptr, &std::fclose);
  if (!c.loss_log.empty()) {
    loss_log_file.reset(std::fopen(c.loss_log.c_str(), "w"));
    MINIDL_CHECK(loss_log_file != nullptr, "--loss-log: cannot write ", c.loss_log);
  }
  std::FILE* loss_log = loss_log_file.get();
  const fs::path last = c.save_dir.empty() ? fs::path() : fs::path(c.save_dir) / "last.safetensors";
  // st.next_epoch == epoch throughout an epoch; st.next_step and the running metrics advance with every step,
  // so a checkpoint taken at any step boundary (--save-every) holds exactly where training stands.
  for (int64_t epoch = st.next_epoch; epoch < c.epochs; ++epoch) {
    model->train();
    const auto t0 = std::chrono::steady_clock::now();
    const double seconds_before = st.train_seconds;  // spent on this epoch before a resume
    auto elapsed = [&] {
      return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    const int64_t steps_this_epoch = c.max_steps > 0 ? std::min(nb, c.max_steps) : nb;
    const int64_t first_step = st.next_step;
    if (packer) memory_line(*packer);  // resets the peaks: the epoch's line covers its training steps only
    for (data::Batch& b : train_loader.epoch(epoch, first_step)) {
      if (st.next_step >= steps_this_epoch) break;
      Tensor logits, loss;
      {
        // the packer compresses what forward saves; backward unpacks through the payloads, hooks or not
        std::unique_ptr<autograd::SavedTensorHooksGuard> actnn;
        if (packer) actnn = std::make_unique<autograd::SavedTensorHooksGuard>(packer->hooks());
        if (adaptive) adaptive->set_batch(b.indices);  // --usegradient: the samples' running sensitivities
        // the batch is handed over: the model frees it after its first convolution (forward_owned)
        Tensor images = b.images.to(dev);
        b.images = Tensor();
        logits = dist.forward(*model, std::move(images));
        loss = cross_entropy(logits, b.labels.to(dev));
      }
      if (packer && epoch == st.next_epoch && st.next_step == first_step && packer->config().active()) {
        std::printf("=> actnn bit map (first step):\n%s", packer->bit_map().c_str());
      }
      opt.zero_grad();
      loss.backward();
      dist.add_comm_wait();
      opt.step();
      sched->step();
      const int64_t n = b.labels.numel();
      const double lv = loss.item<double>();
      if (loss_log) {  // flushed per step: a killed run keeps the losses of the steps it finished
        std::fprintf(loss_log, "%lld %lld %a\n", static_cast<long long>(epoch), static_cast<long long>(st.next_step),
                     lv);
        std::fflush(loss_log);
      }
      st.loss_sum += lv * static_cast<double>(n);
      st.correct += count_correct(logits, b.labels);
      st.seen += n;
      const int64_t steps = ++st.next_step;
      if (steps % c.print_freq == 0 || steps == steps_this_epoch) {
        const double el = elapsed();
        std::printf("Epoch: [%lld/%d][%lld/%lld]\tLoss %.4f (%.4f)\tPrec %.3f%%\tlr %.5f\t%.1f img/s\tETA %s\n",
                    static_cast<long long>(epoch), c.epochs, static_cast<long long>(steps),
                    static_cast<long long>(steps_this_epoch), lv, st.loss_sum / static_cast<double>(st.seen),
                    100.0 * static_cast<double>(st.correct) / static_cast<double>(st.seen), opt.param_groups()[0].lr(),
                    static_cast<double>(st.seen) / el,
                    hms(el / static_cast<double>(steps) * static_cast<double>(steps_this_epoch - steps)).c_str());
        std::fflush(stdout);
      }
      // Mid-epoch checkpoint every --save-every optimizer steps (counted over the whole run, so a resumed run
      // saves at the same steps as an uninterrupted one); the epoch's last step is saved after evaluation below.
      if (c.save_every > 0 && sched->last_step() % c.save_every == 0 && steps < steps_this_epoch) {
        st.train_seconds = elapsed();
        TrainState snapshot = st;
        if (dist.active()) {  // the partial epoch's sums over every rank (a resume gives them to rank 0 only)
          const auto all = dist.sum({st.loss_sum, static_cast<double>(st.correct), static_cast<double>(st.seen)});
          snapshot.loss_sum = all[0], snapshot.correct = static_cast<int64_t>(all[1]);
          snapshot.seen = static_cast<int64_t>(all[2]);
        }
        if (dist.is_main()) {
          save_checkpoint(last.string(), *model, opt, *sched, snapshot, c);
          std::printf("=> saved %s at epoch %lld, step %lld\n", last.string().c_str(), static_cast<long long>(epoch),
                      static_cast<long long>(steps));
        }
      }
    }
    const double train_s = elapsed();
    if (packer) std::printf("%s\n", memory_line(*packer).c_str());
    int64_t seen = st.seen;
    EvalResult ev = evaluate(*model, test_loader, c.print_freq, /*verbose=*/false, c.max_steps);
    double loss_sum = st.loss_sum;
    int64_t correct = st.correct;
    if (dist.active()) {  // the epoch's figures over every rank's samples
      const auto all = dist.sum({loss_sum, static_cast<double>(correct), static_cast<double>(seen)});
      loss_sum = all[0], correct = static_cast<int64_t>(all[1]), seen = static_cast<int64_t>(all[2]);
      std::printf("=> distributed: %.3f s waiting for gradient allreduces after backward so far\n",
                  dist.comm_wait_seconds());
    }
    const double train_loss = loss_sum / static_cast<double>(std::max<int64_t>(seen, 1));
    const double train_acc = 100.0 * static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(seen, 1));
    const bool is_best = ev.accuracy > st.best_acc;
    st.best_acc = std::max(st.best_acc, ev.accuracy);
    st.next_epoch = epoch + 1;
    st.next_step = 0;
    st.loss_sum = 0.0, st.seen = 0, st.correct = 0, st.train_seconds = 0.0;
    std::printf(
        "=> epoch %lld: train loss %.4f acc %.3f%% | test loss %.4f * Prec %.3f%% (best %.3f%%) | %.1f s, %.1f img/s\n",
        static_cast<long long>(epoch), train_loss, train_acc, ev.loss, ev.accuracy, st.best_acc, train_s,
        static_cast<double>(seen) / train_s);
    if (adaptive) {
      std::printf("=> actnn adaptive bits (%lld per-layer allocations so far):\n%s",
                  static_cast<long long>(adaptive->allocations()), adaptive->bit_map().c_str());
    }
    if (dev.is_cuda()) std::printf("=> GPU memory: %s\n", cuda_memory_summary().c_str());
    std::fflush(stdout);
    if (!c.save_dir.empty() && dist.is_main()) {  // rank 0 writes; every rank resumes from its files
      // Order matters for kills: the metrics row first (a run resumed from an older checkpoint drops and
      // rewrites it), then best (a resumed run that redoes this epoch finds it best again and rewrites it), and
      // last, which moves the resume point past this epoch, at the very end.
      std::ostringstream row;
      row << epoch << ',' << opt.param_groups()[0].lr() << ',' << train_loss << ',' << train_acc << ',' << ev.loss
          << ',' << ev.accuracy << ',' << train_s << ',' << static_cast<double>(seen) / train_s;
      append_metrics_row(metrics, row.str());
      if (is_best) save_checkpoint((fs::path(c.save_dir) / "best.safetensors").string(), *model, opt, *sched, st, c);
      save_checkpoint(last.string(), *model, opt, *sched, st, c);
    }
    dist.barrier();  // no rank runs ahead of a checkpoint being written
  }
  std::printf("=> done: best test accuracy %.3f%%\n", st.best_acc);
  return 0;
}

int run_evaluation(const Config& flags) {
  set_num_threads(flags.threads);
  const DType dtype = select_eval_dtype(flags.dtype);
  std::printf("=> Building model...\n");
  Checkpoint ck = load_checkpoint(flags.evaluate);
  Config c = ck.config ? *ck.config : flags;
  c.threads = flags.threads;
  c.workers = flags.workers;
  if (!flags.data_dir.empty()) c.data_dir = flags.data_dir;
  auto model = make_model_for_weights(c, ck.model, ck.config ? nullptr : &ck.metadata);
  const std::string bits = ck.metadata.count("bit") ? ck.metadata.at("bit") : std::to_string(c.bit);
  std::printf("=> loading the %s model from checkpoint %s\n",
              bits == "32" ? "full-precision" : (bits + "-bit quantized").c_str(), flags.evaluate.c_str());
  quant::load_checkpoint(*model, ck.model);
  model->eval();
  // After loading: the checkpoint's float32 values are widened exactly, the level sets follow (Module::to).
  model->to(dtype);
  model->to(flags.device == "cuda" ? Device::cuda(0) : kCPU);  // evaluate() feeds the batches to the model's device
  std::printf("=> running in %s on the %s backend\n", dtype_name(dtype),
              flags.device == "cuda" ? "cuda" : cpu_backend_name().c_str());
  if (!quant::layer_alphas(*model).empty()) quant::show_params(*model, std::cout);
  std::cout.flush();

  if (!flags.predict_in.empty()) {
    SafetensorsFile in = load_safetensors(flags.predict_in);
    auto it = in.tensors.find("input");
    MINIDL_CHECK(it != in.tensors.end(), "--predict ", flags.predict_in, ": no tensor named 'input'");
    NoGradGuard no_grad;
    Tensor logits = (*model)(it->second.to(dtype));
    save_safetensors(flags.predict_out, {{"logits", logits}}, {{"checkpoint", flags.evaluate}});
    std::printf("=> wrote logits %s to %s\n", shape_str(logits.sizes()).c_str(), flags.predict_out.c_str());
    return 0;
  }
  std::printf("=> loading %s data...\n", c.dataset.c_str());
  Datasets ds = make_datasets(c);
  data::DataLoader loader = make_loader(ds.test, c, 100, false);
  evaluate(*model, loader, 10, /*verbose=*/true, flags.max_steps, dtype);
  return 0;
}

}  // namespace cifar_resnet20
