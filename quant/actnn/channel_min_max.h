// Per-channel min / max over runs of channels-last pixels: the range pass of ActNN's adaptive bits
// (adaptive_bits.cpp) over a sample whose channel planes hold whole groups of the codec.
#pragma once

#include <cstdint>

namespace minidl::quant::actnn {

/// mn[k] / mx[k] = the min / max of px[i * ch + k] over i in [0, pixels), for k in [0, ch). Exact, and a NaN never
/// wins (v < m ? v : m): the result of group_min_max over the channel's values in any order. All-NaN or
/// pixels == 0 gives +inf / -inf.
using ChannelMinMax = void (*)(const float* px, int64_t pixels, int64_t ch, float* mn, float* mx);

/// The kernel for the highest ISA level MINIDL_CPU_ISA allows on this host (AVX-512, AVX2 or the baseline build
/// of the same loop: only compares and selects, so every level gives the same bits). Choose it once per pass,
/// outside parallel loops.
ChannelMinMax channel_min_max_kernel();

}  // namespace minidl::quant::actnn
