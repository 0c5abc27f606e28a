// Strided walks for the kernel bodies: the sizes of an index space and, per operand, the element strides, so
// a flat row-major index becomes each operand's element offset (any strides, stride 0 for broadcast). The host
// side builds a Walk with dims merged where every operand allows it (a contiguous tensor becomes one dim, and
// the walk is flagged dense so the bodies skip the division chain).
#pragma once

#include <cstdint>

#include "backends/cuda/kernels/hd.h"

namespace minidl::cuda::kern {

inline constexpr int kMaxDims = 8;

template <int N>
struct Walk {
  int rank = 0;                       // 0: a single element
  bool dense = false;                 // every operand contiguous: offset == flat index
  int64_t sizes[kMaxDims] = {};       // index space, row-major
  int64_t strides[N][kMaxDims] = {};  // per operand
};

/// off[k] = element offset of flat index i (row-major over w.sizes) in operand k.
template <int N>
MINIDL_HD void walk_offsets(const Walk<N>& w, int64_t i, int64_t (&off)[N]) {
  if (w.dense) {
    for (int k = 0; k < N; ++k) off[k] = i;
    return;
  }
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int d = w.rank - 1; d >= 0; --d) {
    const int64_t q = i / w.sizes[d];
    const int64_t r = i - q * w.sizes[d];
    i = q;
    for (int k = 0; k < N; ++k) off[k] += r * w.strides[k][d];
  }
}

/// Strides of one (N, C, H, W) operand; an (N, C) batch-norm input has H = W = 1 and zero strides there.
struct Nchw {
  int64_t n = 0, c = 0, h = 0, w = 0;
  MINIDL_HD int64_t at(int64_t in, int64_t ic, int64_t ih, int64_t iw) const {
    return in * n + ic * c + ih * h + iw * w;
  }
};

/// The extents of an (N, C, H, W) index space and the decoding of a flat row-major index into it.
struct Dims4 {
  int64_t N = 0, C = 0, H = 0, W = 0;
  MINIDL_HD int64_t numel() const { return N * C * H * W; }
  MINIDL_HD void decode(int64_t i, int64_t& n, int64_t& c, int64_t& h, int64_t& w) const {
    w = i % W;
    i /= W;
    h = i % H;
    i /= H;
    c = i % C;
    n = i / C;
  }
};

}  // namespace minidl::cuda::kern
