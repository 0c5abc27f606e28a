// The per-sample passes of ActNN's adaptive bits (adaptive_bits.cpp) over whole activations and gradients, as
// kernels built for each ISA level: the per-channel ranges of channels-last samples and the gradients' squared
// norms. Each level gives the same bits (compares and selects; double sums of exact products in a fixed order).
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

/// The sum of x[i]^2 over [0, n) in double: 16 running sums, x[j] into sum j % 16 for j below the last multiple of
/// 16 and the rest into sum 0, then the 16 added in order. float * float is exact in double, so a fused
/// multiply-add gives the bits of the separate ones. The caller keeps a float.
using SquaredNorm = double (*)(const float* x, int64_t n);

/// As channel_min_max_kernel, for squared norms.
SquaredNorm squared_norm_kernel();

}  // namespace minidl::quant::actnn
