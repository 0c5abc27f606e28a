// How many bits each sample of a compressed activation gets: the one interface between the packer (which stores
// codes at whatever bits it is told) and bit allocation. FixedBits gives every sample the layer's fixed bits
// (--cabits, or a per-module override); ActNN's adaptive allocation (per-sample inside a layer, per-layer across
// layers, spec/quant.md sections 2.4-2.7) is another BitPolicy.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/saved_tensor.h"
#include "backends/actnn_codec.h"

namespace minidl::quant::actnn {

class BitPolicy {
 public:
  virtual ~BitPolicy() = default;
  /// Bits (each 1..8) for the x.size(0) samples of x, which `info` saves and the packer is about to compress;
  /// layer_bits is the fixed choice for this tensor (per-module map, else the level's bits).
  virtual std::vector<uint8_t> sample_bits(const autograd::SaveInfo& info, const Tensor& x, int layer_bits) = 0;
  /// After packing: the codec used and its per-group metadata (the group ranges a sensitivity model needs).
  virtual void on_packed(const autograd::SaveInfo& /*info*/, const ActnnCodec& /*codec*/, const Tensor& /*meta*/) {}
  /// When backward unpacks the tensor again.
  virtual void on_unpack(const autograd::SaveInfo& /*info*/) {}
};

/// Every sample at the layer's fixed bits.
class FixedBits final : public BitPolicy {
 public:
  std::vector<uint8_t> sample_bits(const autograd::SaveInfo&, const Tensor& x, int layer_bits) override {
    const int64_t n = x.dim() == 0 ? 1 : x.size(0);
    return std::vector<uint8_t>(static_cast<size_t>(n), static_cast<uint8_t>(layer_bits));
  }
};

}  // namespace minidl::quant::actnn
