// DistributedSampler: W ranks' step-s batches together are exactly the samples of one process's step-s batch
// (batch W*B, same seed), epochs reshuffle, padding repeats the order's first samples, drop_last truncates; a
// DataLoader with the sampler yields the rank's indices.
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "data/loader.h"
#include "data/sample_rng.h"
#include "data/sampler.h"

using namespace minidl;
using namespace minidl::data;

TEST_CASE("DistributedSampler: the ranks' batches together are the single process's batches") {
  const int64_t n = 1000, per_rank_batch = 16;
  const int world = 4;
  for (int64_t epoch : {0, 3}) {
    const auto global = epoch_order(n, true, 42, epoch);
    std::vector<std::vector<int64_t>> orders;
    for (int r = 0; r < world; ++r) orders.push_back(DistributedSampler(n, r, world, true, 42).order(epoch));
    for (int64_t step = 0; step * per_rank_batch * world < n; ++step) {
      std::multiset<int64_t> ranks, single;
      for (int r = 0; r < world; ++r)
        for (int64_t i = step * per_rank_batch; i < std::min<int64_t>((step + 1) * per_rank_batch, 250); ++i)
          ranks.insert(orders[r][i]);
      const int64_t b = step * per_rank_batch * world;
      for (int64_t i = b; i < std::min<int64_t>(b + per_rank_batch * world, n); ++i) single.insert(global[i]);
      CHECK(ranks == single);
    }
  }
  CHECK(DistributedSampler(n, 0, world, true, 42).order(0) != DistributedSampler(n, 0, world, true, 42).order(1));
}

TEST_CASE("DistributedSampler: padding, drop_last, no shuffle, errors") {
  // 10 samples on 4 ranks: 3 each, positions 10 and 11 wrap to the order's first two samples
  std::vector<int64_t> all;
  for (int r = 0; r < 4; ++r) {
    DistributedSampler s(10, r, 4, /*shuffle=*/false);
    CHECK(s.size() == 3);
    auto o = s.order(0);
    all.insert(all.end(), o.begin(), o.end());
  }
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<int64_t>{0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(DistributedSampler(10, 1, 4, false, 0, /*drop_last=*/true).order(0) == std::vector<int64_t>{1, 5});
  CHECK_THROWS_WITH_AS(DistributedSampler(10, 4, 4), doctest::Contains("rank 4 outside world size 4"), Error);
}
