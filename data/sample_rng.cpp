// SampleRng and the epoch shuffle (see sample_rng.h). Philox counter layout: high word = (epoch, block),
// low word = sample index; the key mixes the seed with a purpose tag so a loader's shuffle and a transform
// with the same seed draw unrelated numbers.
#include "data/sample_rng.h"

#include "core/error.h"
#include "tensor/generator.h"

namespace minidl::data {

namespace {

// splitmix64 finaliser: spreads nearby seeds (0, 1, 2...) over the whole key space.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

constexpr uint64_t kTransformTag = 0x7472616E73666F72ULL;  // "transfor"
constexpr uint64_t kShuffleTag = 0x73687566666C6521ULL;    // "shuffle!"

// Uniform integer in [0, bound) from a 64-bit draw by multiply-shift (Lemire); bias < bound / 2^64.
uint64_t bounded(uint64_t r, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * bound) >> 64);
}

}  // namespace

SampleRng::SampleRng(uint64_t seed, int64_t epoch, int64_t index)
    : key_(mix64(seed ^ kTransformTag)), epoch_(static_cast<uint64_t>(epoch)), index_(static_cast<uint64_t>(index)) {
  MINIDL_CHECK(epoch >= 0 && epoch < (int64_t{1} << 32) && index >= 0, "SampleRng: bad epoch ", epoch, " or index ",
               index);
}

uint32_t SampleRng::next_u32() {
  if (used_ == 4) {
    auto w = philox4x32(key_, (epoch_ << 32) | block_++, index_);
    for (int i = 0; i < 4; ++i) words_[i] = w[static_cast<size_t>(i)];
    used_ = 0;
  }
  return words_[used_++];
}

double SampleRng::uniform() {
  const uint32_t hi = next_u32(), lo = next_u32();
  return uint_to_unit_double(hi, lo);
}

int64_t SampleRng::randint(int64_t lo, int64_t hi) {
  MINIDL_CHECK(hi >= lo, "SampleRng::randint: empty range [", lo, ", ", hi, "]");
  const uint64_t r = (static_cast<uint64_t>(next_u32()) << 32) | next_u32();
  return lo + static_cast<int64_t>(bounded(r, static_cast<uint64_t>(hi - lo) + 1));
}

std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch) {
  MINIDL_CHECK(n >= 0, "epoch_order: negative size ", n);
  MINIDL_CHECK(epoch >= 0, "epoch_order: negative epoch ", epoch);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  if (!shuffle) return order;
  const uint64_t key = mix64(seed ^ kShuffleTag);
  // Fisher-Yates from the back; swap i takes its 64-bit draw from Philox block (epoch, i / 2).
  for (int64_t i = n - 1; i > 0; --i) {
    auto w = philox4x32(key, static_cast<uint64_t>(epoch), static_cast<uint64_t>(i / 2));
    const size_t k = static_cast<size_t>(i % 2) * 2;
    const uint64_t r = (static_cast<uint64_t>(w[k]) << 32) | w[k + 1];
    const auto j = static_cast<int64_t>(bounded(r, static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

}  // namespace minidl::data
