// The host executor of the shared kernels (the "cuda-host" backend): for_each is a plain loop, and
// reduce_groups emulates the device's order exactly (per chunk of kReduceChunk elements: kReduceLanes partials,
// lane t folding elements t, t + lanes, ..., then the same binary tree; the chunks left to right; short groups
// left to right), so cuda-host rounds the way the device does.
#pragma once

#include <cstdint>

#include "backends/cuda/kernels/reduce.h"

namespace minidl::cuda::kern {

struct HostExec {
  template <class F>
  static void for_each(int64_t n, F f) {
    for (int64_t i = 0; i < n; ++i) f(i);
  }

  template <class Acc, class Load, class Combine, class Store>
  static void reduce_groups(int64_t groups, int64_t len, Acc init, Load load, Combine combine, Store store) {
    if (len <= kShortReduce) {
      for (int64_t g = 0; g < groups; ++g) {
        Acc a = init;
        for (int64_t r = 0; r < len; ++r) a = combine(a, load(g, r));
        store(g, a);
      }
      return;
    }
    const int64_t chunks = reduce_chunks(len);
    Acc part[kReduceLanes];
    for (int64_t g = 0; g < groups; ++g) {
      Acc total = init;
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t begin = c * kReduceChunk, end = begin + kReduceChunk < len ? begin + kReduceChunk : len;
        for (int t = 0; t < kReduceLanes; ++t) {
          Acc a = init;
          for (int64_t r = begin + t; r < end; r += kReduceLanes) a = combine(a, load(g, r));
          part[t] = a;
        }
        for (int s = kReduceLanes / 2; s > 0; s >>= 1)
          for (int t = 0; t < s; ++t) part[t] = combine(part[t], part[t + s]);
        total = c == 0 ? part[0] : combine(total, part[0]);
      }
      store(g, total);
    }
  }
};

}  // namespace minidl::cuda::kern
