// The ActNN codec on channels-last samples without a transpose (AVX2): the codec's groups run along one channel
// plane (backends/actnn_codec.h, "Element order"), so the generic path copies each channels-last sample into
// that order first and back after decoding. These kernels read and write the NHWC sample in place: 8 channels
// per vector, the groups' ranges folded down the pixels, the codes of 32 pixels x 8 channels turned into 8
// channels' code runs by a transpose of bytes in registers. They write exactly the reference's bytes and values.
#pragma once

#include <cstdint>

namespace minidl::cpu {

/// A channels-last tensor of N samples, each `pixels` pixels of `channels` channels, coded in groups of `group`.
struct ActnnNhwc {
  int64_t channels = 0, pixels = 0, group = 0;
  bool bf16 = true;               // metadata as two bf16 (4 bytes per group) or two f32
  const int64_t* off = nullptr;   // byte offset of each sample's codes (ActnnCodec::sample_offsets)
  const uint8_t* bits = nullptr;  // per sample, 1..8
  // the stream: element j of sample n draws at position n * channels * pixels + j under the chunk key (klo, khi)
  uint32_t klo = 0, khi = 0;
};

/// Whether the kernels below take this geometry: channels a multiple of 8, pixels and group multiples of 16 (so
/// every group boundary cuts a plane at a multiple of 16 pixels), and no sample with padding (channels * pixels a
/// multiple of group). That covers 32 x 32, 28 x 28, 16 x 16 and 8 x 8 planes in groups of 256, not 14 x 14 or
/// 7 x 7 ones. The caller also checks that every element's stream position is below 2^32 (one chunk key for the
/// tensor).
bool actnn_nhwc_direct_fits(int64_t channels, int64_t pixels, int64_t group);

/// Quantizes samples [n0, n1) of x (channels-last) into codes and meta (group-major, as ActnnCodec lays them out).
void actnn_quant_nhwc_avx2(uint8_t* codes, uint8_t* meta, const float* x, const ActnnNhwc& a, int64_t n0, int64_t n1);
/// Decodes samples [n0, n1) into out (channels-last).
void actnn_dequant_nhwc_avx2(float* out, const uint8_t* codes, const uint8_t* meta, const ActnnNhwc& a, int64_t n0,
                             int64_t n1);

}  // namespace minidl::cpu
