// The float32 activation quantizers' kernels (cpu_quant_clip.cpp: quantize_clip_forward_coded /
// quantize_clip_backward_from_input, and PACT's pact_forward_coded / pact_backward_from_input) for a caller that runs
// them one block of elements at a time inside its own passes: the batch norm + ReLU + quantizer op (cpu_batchnorm.cpp)
// quantizes each block of rows right after normalising it into a buffer that stays in cache, and in backward recomputes
// the block's quantizer input there. The kernels, their alpha-sum chunks and the order of the sum are the primitives',
// so the results are their bits.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backends/backend.h"
#include "tensor/tensor.h"

namespace minidl::cpu {

class ActQuantBlockKernels {
 public:
  /// Elements per partial of the alpha-gradient sum: the primitives' chunk, which a caller's blocks must not split.
  static constexpr int64_t kChunk = 4096;
  /// For a float32 quantizer (alpha one host element; levels float32 or the uniform grid; or PACT) whose primitives
  /// run these kernels on this host (quantize_clip: an AVX2 / AVX-512 vector pass each way; PACT: any level); null
  /// otherwise (the caller then runs the primitives). Throws the primitives' errors for bad arguments.
  /// For = Backward skips what only the forward uses (the level thresholds, a bisection per threshold); forward()
  /// then runs the dividing kernel, with the same bits.
  enum class For { Forward, Backward };
  static std::unique_ptr<ActQuantBlockKernels> make(const ActQuantizer& quantizer, For use);
  virtual ~ActQuantBlockKernels() = default;
  /// q[0, n) = quantize(y[0, n)) and, when codes is not null, their codes (the coded forward primitive's); false
  /// when some element has no code (NaN).
  virtual bool forward(float* q, uint8_t* codes, const float* y, int64_t n) const = 0;
  /// gx[0, n) = gy[0, n) * the straight-through mask of y[0, n) (gx may be gy), returning the alpha sum's partial
  /// of these elements; n <= kChunk, and [0, n) must be one whole chunk of the primitive (or its last, shorter one).
  virtual double backward(float* gx, const float* gy, const float* y, int64_t n) const = 0;
  /// backward() with the forward's codes of y[0, n) (forward()'s: for a level set each element's level index) in
  /// place of the level search, where this quantizer reads them (level sets); the same results. The default ignores
  /// the codes.
  virtual double backward_coded(float* gx, const float* gy, const float* y, const uint8_t* codes, int64_t n) const {
    (void)codes;
    return backward(gx, gy, y, n);
  }
  /// galpha (when defined) from the partials of chunks 0, 1, ... in order, times scale, as the primitive stores it.
  static void store(Tensor& galpha, const std::vector<double>& partial, double scale);
};

}  // namespace minidl::cpu
