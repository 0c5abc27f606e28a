// Byte helpers shared by the ActNN codec's hand-written kernels (cpu_actnn_avx2.cpp, cpu_actnn_avx512.cpp).
#pragma once

#include <cstdint>

namespace minidl::cpu {

/// The BYTES little-endian bytes at src as an integer, assembled in registers. A memcpy into a local would store
/// 3, 5, 6 or 7 bytes piecewise and then load them as one word, a load the store buffer cannot forward: a stall
/// of ~a dozen cycles per 8 codes (3-bit dequantize ran at a sixth of the 2-bit speed).
template <int BYTES, typename Word>
[[gnu::always_inline]] inline Word load_le(const uint8_t* src) {
  Word w = 0;
  for (int k = 0; k < BYTES; ++k) w |= static_cast<Word>(src[k]) << (8 * k);
  return w;
}

}  // namespace minidl::cpu
