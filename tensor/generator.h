// Counter-based random numbers (Philox4x32-10). A draw is a pure function of (seed, stream, offset), so
// initialisation and stochastic rounding give the same numbers on every backend and thread count for a seed.
// The global generator hands out disjoint offset ranges; each consumer draws element i from offset + i.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

namespace minidl {

/// Philox4x32-10: four 32-bit random words for a (key, counter) pair.
std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo);

/// Uniform float in [0, 1) from one 32-bit word (24 random bits).
inline float uint_to_unit_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
/// Uniform double in [0, 1) from two 32-bit words (53 random bits).
inline double uint_to_unit_double(uint32_t hi, uint32_t lo) {
  uint64_t v = (static_cast<uint64_t>(hi) << 21) ^ (lo >> 11);
  return static_cast<double>(v & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0);
}

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed);
  uint64_t seed() const { return seed_; }
  /// Reserves n counter values and returns the first; thread-safe.
  uint64_t reserve(uint64_t n);
  uint64_t offset() const;
  void set_offset(uint64_t off);

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
  mutable std::mutex mu_;
};

/// The process-wide default generator used by rand/randn/uniform, dropout and initialisers.
Generator& default_generator();
/// Seeds the default generator (and resets its offset).
void manual_seed(uint64_t seed);

/// Fills out[0..n) with uniform [0,1) values for (seed, stream, offset + i), the same on every backend.
void philox_uniform(float* out, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset);
void philox_uniform(double* out, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset);
/// Standard normal values (Box-Muller on pairs of uniforms).
void philox_normal(float* out, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset);
void philox_normal(double* out, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset);

}  // namespace minidl
