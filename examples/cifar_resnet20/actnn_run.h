// ActNN in cifar_resnet20: the packer the flags ask for, and the per-epoch memory line (the bytes the tape held
// through the packer at its peak, by category, and the allocator's peak live and reserved bytes).
#pragma once

#include <quant/actnn/packer.h>

#include <memory>
#include <string>

#include "config.h"

namespace cifar_resnet20 {

/// The packer configuration of --actnn-level and the seed's flags (checked; throws minidl::Error on a bad value).
minidl::quant::actnn::Config actnn_config(const Config& c);

/// The packer of --actnn-level (null when the flag is absent). Throws minidl::Error for a flag that is not
/// bad value. Adaptive bits (--ibits, --perlayer, --usegradient) are set on it by the caller (actnn_adaptive.h).
std::unique_ptr<minidl::quant::actnn::Packer> make_packer(const Config& c);

/// "=> actnn L3: tape peak 16.2 MB (codes ..., meta ..., masks ..., indices ..., exact ...) | allocator peak live
/// ... MB, reserved ... MB", from the packer's and the CPU allocator's peaks since the last reset (and resets them).
std::string memory_line(minidl::quant::actnn::Packer& packer);

}  // namespace cifar_resnet20
