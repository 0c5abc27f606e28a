// The activation quantizer's float32 backward from its input (CpuBackend::quantize_clip_backward_from_input),
// exposed chunk by chunk for a caller that interleaves it with its own work: the batch norm + ReLU + quantizer
// backward runs it one row block at a time just before that block's batch-norm sums, while the block is in cache.
// The chunks, their vector kernel and the alpha sum's order are the primitive's, so the results are its bits.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tensor/tensor.h"

namespace minidl::cpu {

class QuantClipBackwardChunks {
 public:
  /// Elements per partial of the alpha-gradient sum (a chunk must not straddle two callers' ranges).
  static constexpr int64_t kChunk = 4096;
  /// For float32 x (dense, the quantizer's input), alpha and levels (undefined: the uniform grid of `steps`) that the
  /// primitive runs with one AVX2 / AVX-512 vector pass on this host; null otherwise (the caller then calls the
  /// primitive). Throws the primitive's errors for bad levels.
  static std::unique_ptr<QuantClipBackwardChunks> make(const Tensor& x, const Tensor& alpha, const Tensor& levels,
                                                       double steps, double lo, double hi);
  virtual ~QuantClipBackwardChunks() = default;
  /// gx[b, e) = gy[b, e) * mask (gx may be gy; null: not written), returning the alpha sum's partial of [b, e):
  /// b a multiple of kChunk, e = min(b + kChunk, n).
  virtual double chunk(float* gx, const float* gy, int64_t b, int64_t e) const = 0;
  /// galpha (when defined) from the partials of chunks 0, 1, ... in order, times scale, as the primitive stores it.
  static void store(Tensor& galpha, const std::vector<double>& partial, double scale);
};

}  // namespace minidl::cpu
