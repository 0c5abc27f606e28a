// Per-sample random numbers for data augmentation and shuffling. A SampleRng is a pure function of
// (seed, epoch, index) built on Philox (tensor/generator.h), so a crop or flip decision does not depend on
// which worker thread loads the sample or in what order: a multi-worker loader gives the same batches as a
// single-threaded one.
#pragma once

#include <cstdint>
#include <vector>

namespace minidl::data {

class SampleRng {
 public:
  SampleRng(uint64_t seed, int64_t epoch, int64_t index);
  uint32_t next_u32();
  /// Uniform in [0, 1).
  double uniform();
  /// Uniform integer in [lo, hi] (inclusive); hi >= lo.
  int64_t randint(int64_t lo, int64_t hi);

 private:
  uint64_t key_;
  uint64_t epoch_;
  uint64_t index_;
  uint32_t block_ = 0;  // which group of 4 Philox words
  uint32_t words_[4] = {0, 0, 0, 0};
  int used_ = 4;  // words_ consumed; 4 = refill on next draw
};

/// The order in which an epoch visits the samples 0..n-1: a Fisher-Yates shuffle drawn from (seed, epoch),
/// or the identity when !shuffle.
std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch);

}  // namespace minidl::data
