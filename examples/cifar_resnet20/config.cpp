// Flag parsing with CLI11 and the Config <-> JSON mapping (nlohmann::json).
#include "config.h"

#include <backends/cuda/cuda_device.h>
#include <minidl.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

namespace cifar_resnet20 {

#define CONFIG_FIELDS(X)                                                                                               \
  X(dataset)                                                                                                           \
  X(data_dir)                                                                                                          \
  X(augment)                                                                                                           \
  X(workers)                                                                                                           \
  X(arch) X(shortcut) X(scheme) X(bit) X(act_bit) X(stage_act_bits) X(weight_thres) X(use_quantize_weight)             \
      X(semantics) X(float_first_last) X(epochs) X(batch_size) X(lr) X(momentum) X(wd) X(alpha_lr) X(alpha_wd)         \
          X(schedule) X(warmup_epochs) X(seed) X(threads) X(save_dir) X(save_every) X(init) X(print_freq) X(max_steps) \
              X(actnn_level) X(ca) X(cabits) X(ibits) X(pergroup) X(perlayer) X(count_bn_bits) X(usegradient)          \
                  X(groupsize) X(actnn_bits)

std::string Config::to_json() const {
  nlohmann::json j;
#define TO_JSON(f) j[#f] = f;
  CONFIG_FIELDS(TO_JSON)
#undef TO_JSON
  return j.dump();
}

Config Config::from_json(const std::string& text) {
  Config c;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw minidl::Error(std::string("checkpoint config is not valid JSON: ") + e.what());
  }
#define FROM_JSON(f) \
  if (j.contains(#f)) j.at(#f).get_to(c.f);
  CONFIG_FIELDS(FROM_JSON)
#undef FROM_JSON
  return c;
}

std::optional<Config> parse_args(int argc, char** argv) {
  Config c;
  CLI::App app{"cifar_resnet20: train or evaluate a (quantized) CIFAR ResNet with minidl"};
  app.option_defaults()->always_capture_default();
  app.add_option("--dataset", c.dataset, "cifar10 | cifar100 | fashion-mnist")
      ->check(CLI::IsMember({"cifar10", "cifar100", "fashion-mnist"}));
  app.add_option("--data", c.data_dir, "dataset directory (fashion-mnist default: /usr/share/datasets/fashion-mnist)");
  app.add_option("--augment", c.augment, "crop-flip | none")->check(CLI::IsMember({"crop-flip", "none"}));
  app.add_option("-j,--workers", c.workers, "data loading threads");
  app.add_option("--arch", c.arch, "resnet20 | resnet32 | resnet56 | preact_resnet56 (the ActNN seed's network)")
      ->check(CLI::IsMember({"resnet20", "resnet32", "resnet56", "preact_resnet56"}));
  app.add_option("--shortcut", c.shortcut, "B (1x1 conv + BN) | A (parameter-free)")->check(CLI::IsMember({"A", "B"}));
  app.add_option("--scheme", c.scheme, "float | apot | pot | uniform | pact | binary")
      ->check(CLI::IsMember({"float", "apot", "pot", "uniform", "pact", "binary"}));
  app.add_option("--bit", c.bit, "weight bit width (32 = full precision)");
  app.add_option("--act-bit", c.act_bit, "activation bit width (default: --bit)");
  int q1 = -1, q2 = -1, q3 = -1;
  app.add_option("--quantized-layer1,--quantize-layer1", q1, "activation bits in stage 1 (seed 004)");
  app.add_option("--quantized-layer2,--quantize-layer2", q2, "activation bits in stage 2");
  app.add_option("--quantized-layer3,--quantize-layer3", q3, "activation bits in stage 3");
  app.add_option("--weight-thres", c.weight_thres, "hysteresis threshold of the binary-weight optimizer");
  app.add_flag("--use-quantize-weight", c.use_quantize_weight, "binary weights trained by the hysteresis optimizer");
  app.add_option("--semantics", c.semantics, "apot-i | apot-c")->check(CLI::IsMember({"apot-i", "apot-c"}));
  app.add_flag("--float-first-last", c.float_first_last, "keep the first conv and the last linear in float");
  app.add_option("--actnn-level", c.actnn_level, "ActNN activation-compressed training: L0 (count only) .. L3");
  // the seed's flags, written --ca=True / --pergroup=False there (also accepted bare, as flags)
  app.add_flag("--ca{true}", c.ca, "ActNN: compress activations (False: as L0)");
  app.add_option("--cabits", c.cabits, "ActNN: bits per activation element (default: 4 at L1/L2, 2 at L3)");
  app.add_option("--ibits", c.ibits, "ActNN at L3: initial / maximum bits of the adaptive allocator (default 8)");
  app.add_flag("--pergroup{true}", c.pergroup, "ActNN: per-group ranges (False: one range per tensor)");
  app.add_flag("--perlayer{true}", c.perlayer,
               "ActNN at L3: re-allocate bits across layers after each backward (default true, as ActNN's L3)");
  app.add_flag(
      "--count-bn-bits{true}", c.count_bn_bits,
      "ActNN at L3: the per-layer budget also counts the codes of the batch norms that copy a conv's bits, so "
      "every stored code averages --cabits (default false: ActNN's budget over conv / linear inputs; docs/actnn.md)");
  app.add_flag("--usegradient{true}", c.usegradient, "ActNN: per-sample gradient sensitivity");
  app.add_option("--groupsize", c.groupsize, "ActNN: elements per quantization group (a multiple of 8)");
  app.add_option("--actnn-bits", c.actnn_bits, "ActNN: per-module bits, e.g. conv1=8,layer3.2.conv2=4");
  app.add_option("--epochs", c.epochs);
  app.add_option("-b,--batch-size", c.batch_size);
  app.add_option("--lr", c.lr, "learning rate");
  app.add_option("--momentum", c.momentum);
  app.add_option("--wd,--weight-decay", c.wd, "weight decay (L2)");
  app.add_option("--alpha-lr", c.alpha_lr, "learning rate of clipping parameters (default: --lr)");
  app.add_option("--alpha-wd", c.alpha_wd, "weight decay of clipping parameters (default: the scheme's)");
  app.add_option("--schedule", c.schedule, "cosine, or comma-separated milestone epochs (x0.1 at each)");
  app.add_option("--warmup-epochs", c.warmup_epochs, "linear learning-rate warm-up");
  app.add_option("--seed", c.seed);
  app.add_option("--threads", c.threads, "compute threads (0 = all cores)");
  app.add_option("--device", c.device, "cpu | cuda (model, optimizer state and batches on the GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--save", c.save_dir, "directory for checkpoints and metrics.csv");
  app.add_option("--save-every", c.save_every,
                 "also checkpoint last.safetensors every N optimizer steps, mid-epoch (0 = only at epoch ends)");
  app.add_option("--resume", c.resume, "resume from a checkpoint (file or --save directory)");
  app.add_option("--init,--pretrained", c.init, "initialise weights from a checkpoint (e.g. a higher-bit model)");
  app.add_option("-e,--evaluate", c.evaluate, "evaluate a checkpoint on the test set (no training)");
  app.add_option("--predict", c.predict_in, "with --evaluate: run the model on tensor `input` of this file");
  app.add_option("--out", c.predict_out, "with --predict: write tensor `logits` to this file");
  app.add_option("--dtype", c.dtype,
                 "with --evaluate: run the model in f32 or f64 (f64: on the ref backend; logits in that dtype); "
                 "with --evaluate-packed: the packed model in f64 and, with -e, the fake-quant model as the same "
                 "model in f64 (docs/deploy.md)")
      ->check(CLI::IsMember({"f32", "f64"}));
  std::vector<std::string> export_args;
  app.add_option("--export", export_args,
                 "FORMAT OUT: write the checkpoint of -e/--resume as FORMAT (onnx | packed) to OUT")
      ->expected(2);
  app.add_option("--export-samples", c.export_samples,
                 "with --export: also write OUT.samples.safetensors (the first N test images and minidl's logits)");
  app.add_option("--evaluate-packed", c.evaluate_packed,
                 "evaluate a packed model (--export packed) on the test set; with -e CKPT also compare it with the "
                 "fake-quant model image by image");
  app.add_option("--packed-batch", c.packed_batch, "with --evaluate-packed: batch size")->check(CLI::PositiveNumber);
  app.add_option("--print-freq", c.print_freq, "batches between progress lines");
  app.add_option("--max-steps", c.max_steps, "stop each epoch (and evaluation) after this many batches");
  app.add_flag("--profile", c.profile, "print where the time went at exit: every op's forward and backward, summed");
  app.add_flag("--sync-bn", c.sync_bn, "distributed: BatchNorm statistics over all ranks (SyncBatchNorm)");
  app.add_flag("--no-overlap", c.no_overlap, "distributed: allreduce gradients after backward, not during it");
  app.add_option("--bucket-mb", c.bucket_mb, "distributed: gradient bucket size in MB")->check(CLI::PositiveNumber);
  app.add_option("--loss-log", c.loss_log, "write each step's exact loss (hex float) to this file");
  app.add_option("--measure-var", c.measure_var,
                 "ActNN: print the Overall Bias / Var / SampleVar of the weight gradients of this checkpoint under "
                 "the --actnn-level / --cabits / --ibits / --pergroup / --perlayer / --usegradient settings");
  app.add_option("--var-batches", c.var_batches, "with --measure-var: training batches measured")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::cout << app.help();
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    throw minidl::Error(e.what());
  }
  if (!export_args.empty()) {
    c.export_format = export_args[0];
    c.export_path = export_args[1];
    MINIDL_CHECK(c.export_format == "onnx" || c.export_format == "packed", "--export: unknown format '",
                 c.export_format, "' (valid: onnx, packed)");
    MINIDL_CHECK(!c.evaluate.empty() || !c.resume.empty(), "--export needs a checkpoint: -e/--evaluate or --resume");
  }
  MINIDL_CHECK(c.evaluate_packed.empty() || c.export_format.empty(), "--evaluate-packed and --export go separately");
  MINIDL_CHECK(c.export_samples >= 0, "--export-samples must be >= 0, got ", c.export_samples);
  MINIDL_CHECK(c.export_samples == 0 || !c.export_format.empty(), "--export-samples needs --export FORMAT OUT");
  if (q1 > 0 || q2 > 0 || q3 > 0) c.stage_act_bits = {q1, q2, q3};
  if (c.act_bit < 0) c.act_bit = c.bit;
  if (c.use_quantize_weight && c.scheme == "float") c.scheme = "binary";
  if (c.scheme == "float" && c.bit != 32) c.scheme = "apot";  // the seeds' default scheme for --bit
  MINIDL_CHECK(c.epochs >= 0, "--epochs must be >= 0, got ", c.epochs);
  MINIDL_CHECK(c.batch_size > 0, "--batch-size must be > 0, got ", c.batch_size);
  MINIDL_CHECK(c.save_every >= 0, "--save-every must be >= 0, got ", c.save_every);
  MINIDL_CHECK(c.save_every == 0 || !c.save_dir.empty() || !c.resume.empty(), "--save-every needs --save DIR");
  MINIDL_CHECK(c.predict_in.empty() || !c.evaluate.empty(), "--predict needs --evaluate CKPT");
  MINIDL_CHECK(c.predict_in.empty() == c.predict_out.empty(), "--predict and --out go together");
  MINIDL_CHECK(c.dtype == "f32" || !c.evaluate.empty() || !c.evaluate_packed.empty(), "--dtype ", c.dtype,
               " needs --evaluate CKPT or --evaluate-packed FILE (training runs in float32 only)");
  MINIDL_CHECK(c.dtype == "f32" || c.export_format.empty(), "--dtype ", c.dtype,
               " does not apply to --export (the exporters read the float32 model)");
  MINIDL_CHECK(c.device == "cpu" || c.dtype == "f32", "--device cuda runs float32 only (--dtype ", c.dtype, ")");
  MINIDL_CHECK(c.device == "cpu" || minidl::cuda_device_count() > 0, "--device cuda: no usable GPU (",
               minidl::cuda_device_status(), ")");
  if (c.data_dir.empty() && c.dataset == "fashion-mnist") c.data_dir = "/usr/share/datasets/fashion-mnist";
  return c;
}

}  // namespace cifar_resnet20
