// ActNN's adaptive bits for a cifar_resnet20 run (--ibits, --perlayer, --usegradient; spec/quant.md 2.5-2.6),
// and the --measure-var job (2.8).
#pragma once

#include <quant/actnn/adaptive_bits.h>
#include <quant/actnn/config.h>

#include <memory>

#include "config.h"

namespace cifar_resnet20 {

/// The adaptive-bits policy the ActNN config asks for, or null when its bits are fixed: adaptivity is L3's
/// (ActNN's L1 / L2 have none), and then only with ibits > cabits (per-sample bits) or --perlayer. Quantized
/// networks (--scheme) keep fixed bits: their layers have no gradient probes. `train_size` is the training
/// set's size (the per-sample gradient scales of --usegradient).
std::shared_ptr<minidl::quant::actnn::AdaptiveBits> make_adaptive_bits(const Config& c,
                                                                       const minidl::quant::actnn::Config& ac,
                                                                       int64_t train_size);

/// --measure-var CKPT: the Overall Bias / Var / SampleVar of the weight gradients under the ActNN config, on the
/// first --var-batches training batches (epoch 0's order), per layer and overall (the seed's debug.py::get_var).
int run_measure_var(const Config& flags);

}  // namespace cifar_resnet20
