// Configurations that oneDNN 2.6 (Debian's libdnnl2 2.6.3) must not be handed, and the predicates that find
// them. Each predicate is pure geometry, so it is tested on every host, including those where the bug cannot
// fire (the crash needs oneDNN's AVX-512 kernels).
//
// Crash class 1 (shared/notes/onednn-avx512-sum-crash.cpp): a forward convolution with a *sum* post-op (the
// residual add of conv2d_inference) where some output row or column lies entirely in the padding: every tap of
// the kernel window along that axis reads padding (e.g. kh = 1 with ph = 1: output rows 0 and H+1). On AVX-512
// hosts oneDNN picks brgconv:avx512_core, whose "outwork" path for such rows (jit_brgemm_conv.cpp,
// perform_outwork, with sum and no accumulation buffer) segfaults inside the JIT kernel. The same primitive
// without the sum post-op runs, and so does jit:avx2. minidl routes the whole class, on every host, to the
// composed conv2d_forward + add + ReLU, so the choice does not depend on which kernel oneDNN would pick.
#pragma once

#include "backends/op_params.h"
#include "tensor/tensor.h"

namespace minidl::cpu {

/// True when an output position along one axis sees only padding: all `kernel` taps of some window (input
/// extent `in`, stride, left padding `pad`, dilation) fall outside [0, in).
bool axis_has_padding_only_output(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation);

/// Crash class 1: x (N,C,H,W) and w (K,C/g,R,S) with params p have an output row or column made of padding only.
/// conv2d_inference must not give such a convolution a sum post-op.
bool conv_sum_postop_unsafe(const Shape& x, const Shape& w, const Conv2dParams& p);

}  // namespace minidl::cpu
