// ActNN bit allocation (see bit_allocation.h).
#include "quant/actnn/bit_allocation.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <queue>
#include <utility>

#include "core/error.h"

namespace minidl::quant::actnn {
namespace {

// Objective increase per unit weight of going from b to b-1 bits, negated (<= 0), computed in double and
// stored as float as the reference does: equal C and b give equal keys, so the tie rule decides.
float removal_key(float C, int b, int64_t w) {
  const double now = std::ldexp(1.0, b) - 1, fewer = std::ldexp(1.0, b - 1) - 1;
  return static_cast<float>(C * (1.0 / (now * now) - 1.0 / (fewer * fewer)) / static_cast<double>(w));
}

void check_inputs(const char* who, const std::vector<int>& bits, const std::vector<float>& C,
                  const std::vector<int64_t>& w) {
  MINIDL_CHECK(bits.size() == C.size() && bits.size() == w.size(), who, ": ", bits.size(), " bits, ", C.size(),
               " sensitivities and ", w.size(), " weights (expected the same count)");
  for (size_t i = 0; i < bits.size(); ++i) {
    MINIDL_CHECK(bits[i] >= 1 && bits[i] <= 32, who, ": start bits ", bits[i], " at ", i, " (expected 1..32)");
    MINIDL_CHECK(std::isfinite(C[i]) && C[i] >= 0, who, ": sensitivity ", C[i], " at ", i,
                 " (expected finite and >= 0)");
    MINIDL_CHECK(w[i] > 0, who, ": weight ", w[i], " at ", i, " (expected > 0)");
  }
}

double total_bits(const std::vector<int>& bits, const std::vector<int64_t>& w) {
  double t = 0;
  for (size_t i = 0; i < bits.size(); ++i) t += static_cast<double>(bits[i]) * static_cast<double>(w[i]);
  return t;
}

}  // namespace

std::vector<int> greedy_bits(std::vector<int> bits, const std::vector<float>& C, const std::vector<int64_t>& w,
                             double target) {
  check_inputs("actnn::greedy_bits", bits, C, w);
  const double floor_total = static_cast<double>(std::accumulate(w.begin(), w.end(), int64_t{0}));
  double total = total_bits(bits, w);
  if (total <= target) return bits;
  MINIDL_CHECK(target >= floor_total, "actnn::greedy_bits: budget ", target, " is below 1 bit per element (",
               floor_total, ")");
  if (std::all_of(w.begin(), w.end(), [](int64_t v) { return v == 1; })) {
    // Unit weights (the per-sample allocation, once per saved tensor): the heap below makes exactly the
    // K = ceil(total - target) removals whose (key, index) pairs are the K largest of all candidates, since an
    // item's keys do not increase from one removal to its next (|1/(2^b-1)^2 - 1/(2^(b-1)-1)^2| grows as b falls,
    // and the float rounding is monotone), and equal pairs belong to the same item. A selection finds them in
    // linear time instead of K heap operations.
    std::vector<std::pair<float, size_t>> removals;
    for (size_t i = 0; i < bits.size(); ++i)
      for (int b = bits[i]; b > 1; --b) removals.emplace_back(removal_key(C[i], b, 1), i);
    const auto k = static_cast<size_t>(std::ceil(total - target));
    std::nth_element(removals.begin(), removals.begin() + static_cast<std::ptrdiff_t>(k - 1), removals.end(),
                     std::greater<>());
    for (size_t r = 0; r < k; ++r) bits[removals[r].second] -= 1;
    return bits;
  }
  // std::priority_queue on (key, index): the largest key first, and among equal keys the larger index, which is
  // the reference's tie rule.
  std::priority_queue<std::pair<float, size_t>> heap;
  for (size_t i = 0; i < bits.size(); ++i)
    if (bits[i] > 1) heap.emplace(removal_key(C[i], bits[i], w[i]), i);
  while (total > target) {
    const size_t i = heap.top().second;  // not empty: target >= floor_total while total > target
    heap.pop();
    bits[i] -= 1;
    total -= static_cast<double>(w[i]);
    if (bits[i] > 1) heap.emplace(removal_key(C[i], bits[i], w[i]), i);
  }
  return bits;
}

std::vector<int> greedy_bits(std::vector<int> bits, const std::vector<float>& C, double target) {
  return greedy_bits(std::move(bits), C, std::vector<int64_t>(C.size(), 1), target);
}

std::vector<int> allocate_bits(std::vector<int> bits, const std::vector<float>& C, const std::vector<int64_t>& w,
                               double target) {
  const bool all_zero = std::all_of(C.begin(), C.end(), [](float c) { return c == 0.0f; });
  if (!all_zero || total_bits(bits, w) <= target) return greedy_bits(std::move(bits), C, w, target);
  check_inputs("actnn::allocate_bits", bits, C, w);
  const double weight = static_cast<double>(std::accumulate(w.begin(), w.end(), int64_t{0}));
  MINIDL_CHECK(target >= weight, "actnn::allocate_bits: budget ", target, " is below 1 bit per element (", weight, ")");
  // Uniform: floor(T / sum w) everywhere (never above the start), then one more bit from the lowest index up
  // while it fits.
  const int uniform = static_cast<int>(std::floor(target / weight));
  for (int& b : bits) b = std::min(b, uniform);
  double total = total_bits(bits, w);
  for (size_t i = 0; i < bits.size(); ++i) {
    if (bits[i] == uniform && total + static_cast<double>(w[i]) <= target) {
      bits[i] += 1;
      total += static_cast<double>(w[i]);
    }
  }
  return bits;
}

double predicted_variance(const std::vector<int>& bits, const std::vector<float>& C) {
  MINIDL_CHECK(bits.size() == C.size(), "actnn::predicted_variance: ", bits.size(), " bits and ", C.size(),
               " sensitivities");
  double v = 0;
  for (size_t i = 0; i < bits.size(); ++i) {
    const double levels = std::ldexp(1.0, bits[i]) - 1;
    v += C[i] / (levels * levels);
  }
  return v;
}

std::vector<int> per_sample_bits(const std::vector<float>& C, double layer_bits, int ibits) {
  MINIDL_CHECK(!C.empty(), "actnn::per_sample_bits: no samples");
  MINIDL_CHECK(layer_bits >= 1 && ibits >= 1, "actnn::per_sample_bits: layer bits ", layer_bits, " and ibits ", ibits,
               " must be >= 1");
  const auto n = static_cast<int64_t>(C.size());
  const double target = std::floor(layer_bits * static_cast<double>(n));
  return allocate_bits(std::vector<int>(C.size(), ibits), C, std::vector<int64_t>(C.size(), 1), target);
}

PerLayerBits allocate_per_layer(const std::vector<LayerSensitivity>& layers, double group_bits, int ibits) {
  MINIDL_CHECK(!layers.empty(), "actnn::allocate_per_layer: no layers");
  const size_t L = layers.size(), N = layers[0].C.size();
  for (size_t l = 0; l < L; ++l) {
    MINIDL_CHECK(layers[l].dim > 0, "actnn::allocate_per_layer: layer ", l, " has ", layers[l].dim,
                 " elements per sample");
    MINIDL_CHECK(!layers[l].C.empty(), "actnn::allocate_per_layer: layer ", l, " has no sensitivities yet");
  }
  PerLayerBits out;
  double weight = 0;
  for (const auto& l : layers) weight += static_cast<double>(l.dim);
  if (static_cast<double>(ibits) == group_bits) {
    // One greedy over layers, start 8 (the reference's constant), integer bits that also become the new ibits.
    std::vector<float> C(L);
    std::vector<int64_t> w(L);
    for (size_t l = 0; l < L; ++l) {
      double sum = 0;
      for (float c : layers[l].C) sum += c;
      C[l] = static_cast<float>(sum);
      w[l] = layers[l].dim;
    }
    const std::vector<int> b = allocate_bits(std::vector<int>(L, 8), C, w, weight * group_bits);
    out.initial_bits = b;
    out.bits.assign(b.begin(), b.end());
    return out;
  }
  // One greedy over every (layer, sample) pair; a layer's budget is the mean of its samples' bits.
  std::vector<float> C;
  std::vector<int64_t> w;
  C.reserve(L * N);
  w.reserve(L * N);
  for (size_t l = 0; l < L; ++l) {
    MINIDL_CHECK(layers[l].C.size() == N, "actnn::allocate_per_layer: layer ", l, " has ", layers[l].C.size(),
                 " samples, layer 0 has ", N);
    C.insert(C.end(), layers[l].C.begin(), layers[l].C.end());
    w.insert(w.end(), N, layers[l].dim);
  }
  const std::vector<int> b =
      allocate_bits(std::vector<int>(L * N, ibits), C, w, weight * static_cast<double>(N) * group_bits);
  out.initial_bits.assign(L, ibits);
  for (size_t l = 0; l < L; ++l) {
    double sum = 0;
    for (size_t n = 0; n < N; ++n) sum += b[l * N + n];
    out.bits.push_back(sum / static_cast<double>(N));
  }
  return out;
}

}  // namespace minidl::quant::actnn
