// The run configuration of cifar_resnet20: every flag, its default, parsing (CLI11) and its JSON form, which is
// stored in every checkpoint so a resumed or evaluated run knows exactly how it was made.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cifar_resnet20 {

struct Config {
  // data
  std::string dataset = "cifar10";    // cifar10 | cifar100 | fashion-mnist
  std::string data_dir;               // default per dataset (fashion-mnist: Debian's dataset-fashion-mnist)
  std::string augment = "crop-flip";  // crop-flip | none
  int workers = 2;
  // model
  std::string arch = "resnet20";  // resnet20 | resnet32 | resnet56
  std::string shortcut = "B";     // B (1x1 conv + BN, the APoT code's) | A (parameter-free)
  // quantization (issue 5): scheme for weights and activations; 32 bits = full precision
  std::string scheme = "float";     // float | apot | pot | uniform | pact | binary
  int bit = 32;                     // weight bits
  int act_bit = -1;                 // activation bits (-1: same as --bit)
  std::vector<int> stage_act_bits;  // --quantized-layer1/2/3 (seed 004): per-stage activation bits
  double weight_thres = 0.0;        // hysteresis threshold for binary weights
  bool use_quantize_weight = false;
  std::string semantics = "apot-i";  // apot-i | apot-c
  bool float_first_last = false;     // first conv / last linear in full precision (seed 004's choice)
  // activation-compressed training (ActNN, issue 13; quant/actnn): "" = off (no packer), L0 = packer that only counts
  std::string actnn_level;
  bool ca = true;              // --ca: compress activations (false = L0)
  int cabits = 0;              // --cabits: bits per activation element (0: the level's, 4 at L1/L2, 2 at L3)
  int ibits = 8;               // --ibits: start / maximum of the adaptive allocator
  bool pergroup = true;        // --pergroup: per-group ranges (false: one range per tensor)
  bool perlayer = true;        // --perlayer: across-layer reallocation (ActNN's default; adaptive bits are L3's)
  bool count_bn_bits = false;  // --count-bn-bits: the per-layer budget counts batch-norm codes (off: ActNN's)
  bool usegradient = false;    // --usegradient: per-sample gradient sensitivity
  int64_t groupsize = 256;     // --groupsize
  std::string actnn_bits;      // --actnn-bits "module=bits,...": per-module bits
  // optimisation
  int epochs = 200;
  int64_t batch_size = 128;
  double lr = 0.1;
  double momentum = 0.9;
  double wd = 1e-4;
  double alpha_lr = -1;             // clipping-parameter lr (-1: same as --lr)
  double alpha_wd = -1;             // clipping-parameter weight decay (-1: spec default for the scheme)
  std::string schedule = "cosine";  // cosine | milestones like "100,150"
  double warmup_epochs = 0;
  uint64_t seed = 0;
  int threads = 0;  // 0 = all cores
  // --device cpu | cuda: where the model, its optimizer state and the batches live
  std::string device = "cpu";
  // files
  std::string save_dir;     // checkpoints + metrics.csv; empty = no checkpoints
  int64_t save_every = 0;   // also checkpoint last.safetensors every N optimizer steps, mid-epoch (0 = off)
  std::string resume;       // checkpoint to resume from (a file, or a directory holding last.safetensors)
  std::string init;         // --init / --pretrained: weights to start from (progressive init)
  std::string evaluate;     // checkpoint to evaluate (no training)
  std::string predict_in;   // --predict IN.safetensors (tensor `input`)
  std::string predict_out;  // --out OUT.safetensors (tensor `logits`)
  // --export FORMAT OUT (with -e/--evaluate or --resume CKPT): write the model in another format, no training
  std::string export_format;  // onnx | packed
  // --evaluate-packed FILE: top-1 of a packed model (docs/deploy.md); with -e CKPT also the argmax agreement
  // and logit difference against the fake-quant model over the test set. --packed-batch: its batch size.
  std::string evaluate_packed;
  int64_t packed_batch = 100;
  std::string export_path;
  int64_t export_samples = 0;  // --export-samples N: also OUT.samples.safetensors (N test images, minidl's logits)
  std::string dtype = "f32";   // --dtype f32 | f64: what --evaluate runs the model in (f64 on the ref backend)
  int64_t print_freq = 50;     // batches between progress lines
  int64_t max_steps = -1;      // stop an epoch early (smoke tests)
  std::string loss_log;        // write every step's loss, exactly (hex float), for determinism checks
  bool profile = false;        // --profile: print the per-op time table at exit (a run option: not in checkpoints)
  // ActNN gradient-variance measurement (spec/quant.md 2.8): a checkpoint, and how many training batches
  std::string measure_var;
  int var_batches = 10;
  // distributed runs (mpirun, or RANK/WORLD_SIZE): see distributed_run.h
  bool sync_bn = false;     // BatchNorm statistics of the global batch (SyncBatchNorm)
  bool no_overlap = false;  // allreduce gradients after backward, not during it (to measure the overlap)
  double bucket_mb = 25;    // gradient bucket size (ResNet-20's 1.1 MB of gradients fit one 25 MB bucket)

  std::string to_json() const;
  static Config from_json(const std::string& json);
};

/// Parses argv. On --help prints usage and returns nullopt (exit 0); on bad input throws minidl::Error with a
/// one-line message.
std::optional<Config> parse_args(int argc, char** argv);

}  // namespace cifar_resnet20
