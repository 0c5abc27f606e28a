// The largest batch for which a step fits: doubling from `start` until the first failure (or `max`), then
// bisection between the last success and the first failure. `fits` must be monotone (a batch that fits means
// every smaller one fits), which holds for memory under a cap. Returns 0 when not even `start` fits. With
// `resolution` r > 0 the bisection stops once the gap is at most r * the last success (a batch within that
// fraction of the largest, in fewer of the costly big steps); r = 0 finds the exact largest batch. Used by
// bench/actnn_max_batch; header-only so the tests can check it.
#pragma once

#include <cstdint>
#include <functional>

#include "core/error.h"

namespace minidl::bench {

inline int64_t largest_fitting_batch(const std::function<bool(int64_t)>& fits, int64_t start, int64_t max,
                                     double resolution = 0) {
  MINIDL_CHECK(start >= 1 && max >= start, "largest_fitting_batch: need 1 <= start (", start, ") <= max (", max, ")");
  if (!fits(start)) return 0;
  int64_t good = start, bad = 0;
  while (bad == 0) {
    if (good == max) return max;
    const int64_t next = good * 2 > max ? max : good * 2;
    if (fits(next))
      good = next;
    else
      bad = next;
  }
  while (bad - good > 1 && static_cast<double>(bad - good) > resolution * static_cast<double>(good)) {
    const int64_t mid = good + (bad - good) / 2;
    if (fits(mid))
      good = mid;
    else
      bad = mid;
  }
  return good;
}

}  // namespace minidl::bench
