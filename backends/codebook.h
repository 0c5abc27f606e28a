// Lossless code-book coding (Backend::codebook_encode / codebook_decode): the order of the entries and the checks
// every backend shares.
#pragma once

#include <bit>
#include <cstdint>

#include "tensor/tensor.h"

namespace minidl {

/// The IEEE total order of a value as a signed integer (its bits, the magnitude bits flipped when negative):
/// -0 sorts just below +0, and two values have one key exactly when their bits are equal. A code book's entries
/// are strictly ascending by it.
inline int32_t codebook_key(float v) {
  const auto b = std::bit_cast<int32_t>(v);
  return b ^ ((b >> 31) & 0x7fffffff);
}
inline int64_t codebook_key(double v) {
  const auto b = std::bit_cast<int64_t>(v);
  return b ^ ((b >> 63) & 0x7fffffffffffffff);
}

/// The code book of the activation quantizer's outputs (Backend::quantize_clip_forward_coded) for alpha (one
/// element, floating) and its grid, in alpha's dtype on the host: levels[k] * a for each level k (levels
/// defined, 1-D, sorted), or on the uniform path {-0} followed by (j / steps) * a for j = 0..steps (-0 is what a
/// -0 input gives); so code k is level k, and on the uniform path code 0 is -0 and code 1 + j is grid point j.
/// Undefined when the entries would not be strictly ascending (codebook_key) or exceed 256.
Tensor quantize_clip_codebook(const Tensor& alpha, const Tensor& levels, double steps);

/// The code book of PACT's outputs (Backend::pact_forward_coded) for alpha (one floating element) and the grid
/// maximum k, in alpha's dtype on the host: {-0 * a / k} followed by (t * a) / k for t = 0..k (the forward's
/// expression; -0 is what a small negative x gives), so code 0 is -0 and code 1 + t is grid point t. Undefined when
/// the entries would not be strictly ascending (codebook_key; alpha <= 0) or exceed 256 (k > 254).
Tensor pact_forward_codebook(const Tensor& alpha, double k);

namespace codebook_detail {
/// Throws unless codebook is 1-D, contiguous, of `dt`, with 1..256 entries strictly ascending by codebook_key,
/// on host memory.
void check_codebook(const char* op, const Tensor& codebook, DType dt);
/// Throws unless values (floating) and codes (u8) are host tensors of one shape, dense (contiguous or
/// channels-last) and laid out alike.
void check_coded_pair(const char* op, const Tensor& values, const Tensor& codes);
}  // namespace codebook_detail

}  // namespace minidl
