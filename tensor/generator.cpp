// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) and the global generator.
#include "tensor/generator.h"

#include <cmath>
#include <numbers>

namespace minidl {

std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n1 = static_cast<uint32_t>(p1);
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    const uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0, c1 = n1, c2 = n2, c3 = n3;
    k0 += kW0, k1 += kW1;
  }
  return {c0, c1, c2, c3};
}

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mu_);
  seed_ = seed;
  offset_ = 0;
}

uint64_t Generator::reserve(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t start = offset_;
  offset_ += n;
  return start;
}

uint64_t Generator::offset() const {
  std::lock_guard<std::mutex> lock(mu_);
  return offset_;
}

void Generator::set_offset(uint64_t off) {
  std::lock_guard<std::mutex> lock(mu_);
  offset_ = off;
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

// Element i uses counter (stream, (offset + i) / 4) and word (offset + i) % 4 for floats; doubles use two
// words of counter (stream, offset + i). Every element is a pure function of its index.
void philox_uniform(float* out, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t idx = offset + static_cast<uint64_t>(i);
    out[i] = uint_to_unit_float(philox4x32(seed, stream, idx / 4)[idx % 4]);
  }
}

void philox_uniform(double* out, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const auto r = philox4x32(seed, stream, offset + static_cast<uint64_t>(i));
    out[i] = uint_to_unit_double(r[0], r[1]);
  }
}

namespace {
template <typename T>
void normal_impl(T* out, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
  // Box-Muller: element i takes the four words of counter (offset + i); u1 in (0, 1] avoids log(0).
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const auto r = philox4x32(seed, stream, offset + static_cast<uint64_t>(i));
    const double u1 = 1.0 - uint_to_unit_double(r[0], r[1]);
    const double u2 = uint_to_unit_double(r[2], r[3]);
    out[i] = static_cast<T>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
  }
}
}  // namespace

void philox_normal(float* out, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
  normal_impl(out, n, seed, stream, offset);
}
void philox_normal(double* out, int64_t n, uint64_t seed, uint64_t stream, uint64_t offset) {
  normal_impl(out, n, seed, stream, offset);
}

}  // namespace minidl
