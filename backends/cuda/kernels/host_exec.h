// The host executor of the shared kernels (the "cuda-host" backend): for_each is a plain loop, and
// reduce_groups emulates one GPU block per group exactly (kReduceLanes partials, lane t folding elements t,
// t + lanes, ..., then the same binary tree; short groups left to right), so cuda-host rounds the way the device does.
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
    Acc part[kReduceLanes];
    for (int64_t g = 0; g < groups; ++g) {
      for (int t = 0; t < kReduceLanes; ++t) {
        Acc a = init;
        for (int64_t r = t; r < len; r += kReduceLanes) a = combine(a, load(g, r));
        part[t] = a;
      }
      for (int s = kReduceLanes / 2; s > 0; s >>= 1)
        for (int t = 0; t < s; ++t) part[t] = combine(part[t], part[t + s]);
      store(g, part[0]);
    }
  }
};

}  // namespace minidl::cuda::kern
