// The search behind bench/actnn_max_batch: doubling, then bisection, to the exact largest batch that fits.
#include <doctest/doctest.h>

#include <vector>

#include "bench/max_batch_search.h"

using minidl::bench::largest_fitting_batch;

TEST_CASE("largest_fitting_batch finds the exact threshold with few tries") {
  for (int64_t limit : {1, 15, 16, 17, 31, 32, 33, 100, 1000, 4095, 4096, 65535}) {
    std::vector<int64_t> tried;
    auto fits = [&](int64_t b) {
      tried.push_back(b);
      return b <= limit;
    };
    INFO("limit " << limit);
    const int64_t got = largest_fitting_batch(fits, 16, 65536);
    CHECK(got == (limit < 16 ? 0 : limit));
    CHECK(tried.size() <= 1 + 12 + 15);  // the start, log2(65536 / 16) doublings, log2(32768) halvings
  }
  CHECK(largest_fitting_batch([](int64_t) { return true; }, 16, 1000) == 1000);  // capped by max
  // With a resolution: within 5% below the threshold, never above it.
  for (int64_t limit : {100, 1000, 3001}) {
    const int64_t got = largest_fitting_batch([&](int64_t b) { return b <= limit; }, 16, 65536, 0.05);
    CHECK(got <= limit);
    CHECK(static_cast<double>(got) >= 0.95 * static_cast<double>(limit));
  }
  CHECK_THROWS_AS(largest_fitting_batch([](int64_t) { return true; }, 0, 10), minidl::Error);
}
