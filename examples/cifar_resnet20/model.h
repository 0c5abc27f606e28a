// The network and its optimizer for a Config: float ResNets from nn/models, quantized ones from quant/
// (scheme/bit flags of the seeds), and the parameter groups of each recipe (spec/quant.md 1.12, 3.3).
#pragma once

#include <nn/module.h>
#include <optim/optimizer.h>
#include <quant/actnn/adaptive_bits.h>
#include <tensor/safetensors.h>

#include "config.h"

namespace cifar_resnet20 {

/// The (quantized) ResNet of --arch/--scheme/--bit (or the float pre-activation ResNet-56 of the ActNN seed) for the
/// dataset's channels and classes. `checkpoint_meta`, when given, is the metadata of a foreign checkpoint (e.g. the
/// APoT release) whose `bit`/`semantics` decide the quantization.
/// `probes`, when given, builds the float networks' convs and linears with output-gradient probes feeding that
/// adaptive-bits policy (ActNN's gradient scale S); quantized networks ignore it.
std::shared_ptr<minidl::nn::Module> make_model(const Config& c, int64_t in_channels, int64_t num_classes,
                                               const minidl::Metadata* checkpoint_meta = nullptr,
                                               std::shared_ptr<minidl::quant::actnn::AdaptiveBits> probes = nullptr);

/// The model that `weights` fit: input channels and classes come from their conv1 / fc shapes, so foreign
/// checkpoints need no extra flags (defaults 3 and 10 when those tensors are absent).
std::shared_ptr<minidl::nn::Module> make_model_for_weights(const Config& c, const minidl::TensorMap& weights,
                                                           const minidl::Metadata* checkpoint_meta);

/// SGD with the scheme's parameter groups (clipping parameters on their own lr/wd), or the hysteresis
/// optimizer for binary weights.
std::unique_ptr<minidl::optim::Optimizer> make_optimizer(const minidl::nn::Module& model, const Config& c);

/// Whether the model has quantizer state worth printing with show_params().
bool is_quantized(const Config& c);

}  // namespace cifar_resnet20
