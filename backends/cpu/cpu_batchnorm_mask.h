// Where the channels-last batch norm backward's ReLU mask comes from (the AVX2 and AVX-512 kernels of
// cpu_batchnorm_avx2.h / cpu_batchnorm_avx512.h take it).
#pragma once

namespace minidl::cpu {

/// None (no ReLU: every field null), the ReLU's output (y > 0), or the forward's affine recomputed from x
/// (x * a[c] + b[c] > 0 in float32, multiply then add: the forward's value before max(., 0), so the same mask as its
/// y > 0, NaN included).
struct BnReluMask {
  const float* y = nullptr;
  const float* a = nullptr;
  const float* b = nullptr;
};

}  // namespace minidl::cpu
