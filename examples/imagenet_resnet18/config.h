// The run configuration of imagenet_resnet18: the flags of PyTorch's ImageNet example and of the APoT ImageNet
// script (seed 000) where they exist, parsing (CLI11) and the JSON form stored in every checkpoint.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace imagenet_resnet18 {

struct Config {
  std::string data;              // ImageFolder root holding train/ and val/
  bool synthetic = false;        // random tensors instead of files: takes I/O out of a measurement
  bool skip_bad_images = false;  // warn and count unreadable images instead of stopping
  int workers = 4;
  int64_t image_size = 224;       // training crop and validation centre crop
  int64_t val_resize = 0;         // validation Resize (shorter side); 0 = image_size * 256 / 224
  double min_scale = 0.08;        // RandomResizedCrop scale (min_scale, 1)
  bool dct_scaling = true;        // decode large crops at a DCT-domain scale
  std::string arch = "resnet18";  // resnet18 | resnet34
  int bit = 32;                   // 32 = float; 5/4/3/2 = APoT (seed 000)
  int epochs = 90;
  int64_t batch_size = 256;
  double lr = 0.1;
  double momentum = 0.9;
  double wd = 1e-4;
  std::string schedule = "30,60,90";  // epochs where lr *= 0.1, or "cosine"
  uint64_t seed = 0;
  int threads = 0;
  // --device cpu | cuda: where the model, its optimizer state and the batches live (not saved with the run)
  std::string device = "cpu";
  std::string save_dir;
  std::string resume;      // checkpoint (file, or a directory holding last.safetensors)
  std::string pretrained;  // weights to start from: a higher-bit or float checkpoint, or torchvision weights
  bool evaluate = false;   // -e: validate the --resume / --pretrained model and stop
  bool profile = false;    // --profile: print the per-op time table at exit (not stored in checkpoints)
  int64_t print_freq = 10;
  int64_t max_steps = -1;     // stop each epoch (and validation) after this many batches (smoke tests)
  bool epochs_given = false;  // --epochs on the command line: a resumed run then runs to it (not stored)

  std::string to_json() const;
  static Config from_json(const std::string& json);
  int64_t val_resize_size() const { return val_resize > 0 ? val_resize : (image_size * 256 + 112) / 224; }
};

/// Parses argv; nullopt after --help; throws minidl::Error with one line on bad input.
std::optional<Config> parse_args(int argc, char** argv);

}  // namespace imagenet_resnet18
