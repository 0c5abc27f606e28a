// Flag parsing (CLI11) and Config <-> JSON (nlohmann::json).
#include "config.h"

#include <backends/cuda/cuda_device.h>
#include <minidl.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

namespace imagenet_resnet18 {

// clang-format off
#define CONFIG_FIELDS(X)                                                                                     \
  X(data) X(synthetic) X(skip_bad_images) X(workers) X(image_size) X(val_resize) X(min_scale) X(dct_scaling) \
  X(arch) X(bit) X(epochs) X(batch_size) X(lr) X(momentum) X(wd) X(schedule) X(seed) X(threads) X(save_dir)  \
  X(pretrained) X(print_freq) X(max_steps)
// clang-format on

std::string Config::to_json() const {
  nlohmann::json j;
#define TO_JSON(f) j[#f] = f;
  CONFIG_FIELDS(TO_JSON)
#undef TO_JSON
  return j.dump();
}

Config Config::from_json(const std::string& text) {
  Config c;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
#define FROM_JSON(f) \
  if (j.contains(#f)) j.at(#f).get_to(c.f);
    CONFIG_FIELDS(FROM_JSON)
#undef FROM_JSON
  } catch (const std::exception& e) {
    throw minidl::Error(std::string("checkpoint config is not valid: ") + e.what());
  }
  return c;
}

std::optional<Config> parse_args(int argc, char** argv) {
  Config c;
  CLI::App app{"imagenet_resnet18: train or evaluate ResNet-18/34 (float or APoT-quantized) on an ImageFolder tree"};
  app.option_defaults()->always_capture_default();
  app.add_option("data", c.data, "dataset root with train/ and val/ ImageFolder trees");
  app.add_flag("--synthetic", c.synthetic, "random images instead of files (no I/O, for speed measurements)");
  app.add_flag("--skip-bad-images", c.skip_bad_images, "warn about and skip unreadable images instead of failing");
  app.add_option("-j,--workers", c.workers, "data loading threads")->check(CLI::Range(0, 256));
  app.add_option("--image-size", c.image_size, "training crop / validation centre crop")->check(CLI::Range(8, 4096));
  app.add_option("--val-resize", c.val_resize, "validation Resize, shorter side (0: image-size * 256 / 224)");
  app.add_option("--min-scale", c.min_scale, "RandomResizedCrop scale (min-scale, 1)")->check(CLI::Range(0.001, 1.0));
  bool no_dct = false;
  app.add_flag("--no-dct-scaling", no_dct, "always decode training crops at full resolution");
  app.add_option("-a,--arch", c.arch, "resnet18 | resnet34")->check(CLI::IsMember({"resnet18", "resnet34"}));
  app.add_option("--bit", c.bit, "32 (float) or APoT bits 5 | 4 | 3 | 2")->check(CLI::IsMember({32, 5, 4, 3, 2}));
  auto* epochs = app.add_option("--epochs", c.epochs, "epochs (with --resume: continue up to this many)")
                     ->check(CLI::Range(1, 100000));
  app.add_option("-b,--batch-size", c.batch_size, "mini-batch size")->check(CLI::Range(1, 65536));
  app.add_option("--lr,--learning-rate", c.lr, "initial learning rate")->check(CLI::PositiveNumber);
  app.add_option("--momentum", c.momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0));
  app.add_option("--wd,--weight-decay", c.wd, "weight decay")->check(CLI::Range(0.0, 1.0));
  app.add_option("--schedule", c.schedule, "'cosine' or the epochs where lr *= 0.1, e.g. 30,60,90");
  app.add_option("--seed", c.seed, "seed of the initialisation, shuffle and augmentation");
  app.add_option("--threads", c.threads, "compute threads (0 = all cores)")->check(CLI::Range(0, 1024));
  app.add_option("--device", c.device, "cpu | cuda (model, optimizer state and batches on the GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--save-dir", c.save_dir, "directory for last/best checkpoints and metrics.csv");
  app.add_option("--resume", c.resume, "checkpoint (or its directory) to continue from");
  app.add_option("--pretrained,--init", c.pretrained,
                 "start from these weights: a float or higher-bit checkpoint (progressive init) or torchvision-named "
                 "weights in safetensors");
  app.add_flag("-e,--evaluate", c.evaluate, "evaluate the --resume or --pretrained model on val/ and stop");
  app.add_flag("--profile", c.profile, "print where the time went at exit: every op's forward and backward, summed");
  app.add_option("-p,--print-freq", c.print_freq, "batches between progress lines")->check(CLI::Range(1, 1000000));
  app.add_option("--max-steps", c.max_steps, "stop each epoch after this many batches (smoke tests)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    throw minidl::Error(e.what());
  }
  c.dct_scaling = !no_dct;
  c.epochs_given = epochs->count() > 0;
  MINIDL_CHECK(c.synthetic || !c.data.empty() || !c.resume.empty(),
               "no dataset: give the ImageFolder root (with train/ and val/) or --synthetic");
  MINIDL_CHECK(!c.evaluate || !c.resume.empty() || !c.pretrained.empty(),
               "-e/--evaluate needs the model: --resume CHECKPOINT or --pretrained WEIGHTS");
  MINIDL_CHECK(c.schedule == "cosine" || c.schedule.find_first_not_of("0123456789,") == std::string::npos,
               "--schedule: expected 'cosine' or comma-separated epochs, got '", c.schedule, "'");
  MINIDL_CHECK(c.device == "cpu" || minidl::cuda_device_count() > 0, "--device cuda: no usable GPU (",
               minidl::cuda_device_status(), ")");
  return c;
}

}  // namespace imagenet_resnet18
