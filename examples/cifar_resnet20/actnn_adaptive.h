// ActNN's adaptive bits for a cifar_resnet20 run (--ibits, --perlayer, --usegradient; spec/quant.md 2.5-2.6),
// and the --measure-var job (2.8).
#pragma once

#include <autograd/saved_tensor.h>
#include <data/loader.h>
#include <quant/actnn/adaptive_bits.h>
#include <quant/actnn/config.h>
#include <quant/actnn/packer.h>

#include <memory>

#include "config.h"

namespace cifar_resnet20 {

/// The packer configuration of the --actnn-level / --ca / --cabits / --ibits / --pergroup / --perlayer /
/// --usegradient / --groupsize flags (checked; throws minidl::Error on a bad value).
minidl::quant::actnn::Config actnn_config(const Config& c);

/// The adaptive-bits policy the ActNN config asks for, or null when its bits are fixed: adaptivity is L3's
/// (ActNN's L1 / L2 have none), and then only with ibits > cabits (per-sample bits) or --perlayer. Quantized
/// networks (--scheme) keep fixed bits: their layers have no gradient probes. `train_size` is the training
/// set's size (the per-sample gradient scales of --usegradient).
std::shared_ptr<minidl::quant::actnn::AdaptiveBits> make_adaptive_bits(const Config& c,
                                                                       const minidl::quant::actnn::Config& ac,
                                                                       int64_t train_size);

/// ActNN in the training loop: the packer (with the adaptive policy when there is one), the batch's sample
/// indices for --usegradient, and the bit map printed per epoch. The per-layer allocation runs by itself at the
/// end of every backward (AdaptiveBits).
class ActnnTraining {
 public:
  explicit ActnnTraining(const Config& c);
  /// For make_model: the policy whose gradient probes the float convs and linears feed (null: fixed bits).
  std::shared_ptr<minidl::quant::actnn::AdaptiveBits> policy() const { return policy_; }
  void set_dataset_size(int64_t n);
  /// Before a step's forward: the batch's dataset indices (--usegradient), and the hooks to install around the
  /// forward (null when nothing is compressed).
  std::unique_ptr<minidl::autograd::SavedTensorHooksGuard> begin_step(const minidl::data::Batch& b);
  /// The end-of-epoch lines: level and, with adaptive bits, each layer's budget and per-sample bits.
  void print_epoch() const;

 private:
  minidl::quant::actnn::Config cfg_;
  std::shared_ptr<minidl::quant::actnn::AdaptiveBits> policy_;
  std::unique_ptr<minidl::quant::actnn::Packer> packer_;
};

/// --measure-var CKPT: the Overall Bias / Var / SampleVar of the weight gradients under the ActNN config, on the
/// first --var-batches training batches (epoch 0's order), per layer and overall (the seed's debug.py::get_var).
int run_measure_var(const Config& flags);

}  // namespace cifar_resnet20
