// Loop machinery shared by the cpu backend's hand-written kernels: a size threshold for OpenMP, strided
// iteration over K operands (dims coalesced so contiguous operands become one long inner run the compiler can
// vectorise), checks, and a helper that makes an input contiguous without touching autograd.
#pragma once

#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "tensor/tensor.h"

namespace minidl::cpu {

/// Below this many elements an elementwise loop runs on one thread: a parallel region costs a few microseconds.
inline constexpr int64_t kParallelGrain = 32768;

inline int threads_for(int64_t work) {
  if (work < kParallelGrain) return 1;
  const int64_t by_size = work / (kParallelGrain / 2);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(omp_get_max_threads(), by_size)));
}

/// Sizes and per-operand element strides with size-1 dims dropped and mergeable neighbours merged.
template <size_t K>
struct StridedPlan {
  std::vector<int64_t> sizes;
  std::array<std::vector<int64_t>, K> strides;
  int64_t numel = 1;
};

/// Dims are visited in operand 0's memory order (its strides, descending; operand 0 is the output), so a
/// channels-last output with channels-last inputs coalesces into one contiguous run like a contiguous one.
template <size_t K>
StridedPlan<K> make_plan(const Shape& sizes, const std::array<const Shape*, K>& strides) {
  StridedPlan<K> plan;
  for (int64_t s : sizes) plan.numel *= s;
  std::vector<size_t> order;  // size-1 dims dropped: their strides say nothing about memory order
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] != 1) order.push_back(d);
  }
  const Shape& s0 = *strides[0];
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s0[a] > s0[b]; });
  for (size_t d : order) {
    if (!plan.sizes.empty()) {
      bool merge = true;
      for (size_t k = 0; k < K; ++k) {
        if (plan.strides[k].back() != (*strides[k])[d] * sizes[d]) merge = false;
      }
      if (merge) {
        plan.sizes.back() *= sizes[d];
        for (size_t k = 0; k < K; ++k) plan.strides[k].back() = (*strides[k])[d];
        continue;
      }
    }
    plan.sizes.push_back(sizes[d]);
    for (size_t k = 0; k < K; ++k) plan.strides[k].push_back((*strides[k])[d]);
  }
  if (plan.sizes.empty()) {
    plan.sizes.push_back(1);
    for (size_t k = 0; k < K; ++k) plan.strides[k].push_back(0);
  }
  return plan;
}

/// Calls body(offsets, n, inner_strides) for runs along the innermost coalesced dim, splitting the flat
/// element range among OpenMP threads when large. Offsets are in elements, relative to each operand's start.
template <size_t K, typename Body>
void run_plan(const StridedPlan<K>& plan, Body&& body) {
  const int64_t total = plan.numel;
  if (total == 0) return;
  const int nd = static_cast<int>(plan.sizes.size());
  const int64_t inner = plan.sizes[nd - 1];
  std::array<int64_t, K> inner_st;
  for (size_t k = 0; k < K; ++k) inner_st[k] = plan.strides[k][nd - 1];
  const int nt = threads_for(total);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int tid = omp_get_thread_num();
    const int nthr = omp_get_num_threads();
    const int64_t chunk = (total + nthr - 1) / nthr;
    const int64_t begin = std::min<int64_t>(total, chunk * tid);
    const int64_t end = std::min<int64_t>(total, begin + chunk);
    if (begin < end) {
      std::vector<int64_t> idx(nd);
      std::array<int64_t, K> off{};
      int64_t rem = begin;
      for (int d = nd - 1; d >= 0; --d) {
        idx[d] = rem % plan.sizes[d];
        rem /= plan.sizes[d];
        for (size_t k = 0; k < K; ++k) off[k] += idx[d] * plan.strides[k][d];
      }
      int64_t pos = begin;
      while (pos < end) {
        const int64_t n = std::min(inner - idx[nd - 1], end - pos);
        body(off, n, inner_st);
        pos += n;
        idx[nd - 1] += n;
        for (size_t k = 0; k < K; ++k) off[k] += n * inner_st[k];
        for (int d = nd - 1; d > 0 && idx[d] == plan.sizes[d]; --d) {
          for (size_t k = 0; k < K; ++k) off[k] += plan.strides[k][d - 1] - idx[d] * plan.strides[k][d];
          idx[d] = 0;
          ++idx[d - 1];
        }
      }
    }
  }
}

/// Parallel for over [0, n) in contiguous chunks, one per thread, when n * work_per_index (elements) is large.
template <typename F>
void parallel_for(int64_t n, int64_t work_per_index, F&& f) {
  const int nt = n > 1 ? std::min<int>(threads_for(n * work_per_index), static_cast<int>(n)) : 1;
  if (nt <= 1) {
    f(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num();
    const int nthr = omp_get_num_threads();
    const int64_t chunk = (n + nthr - 1) / nthr;
    const int64_t b = std::min<int64_t>(n, chunk * tid);
    const int64_t e = std::min<int64_t>(n, b + chunk);
    if (b < e) f(b, e);
  }
}

/// Value conversion for fill / copy, identical to the ref backend's: floating -> integer truncates toward zero
/// through int64 (so a negative value wraps into u8 instead of being undefined behaviour); NaN becomes 0.
template <typename To, typename From>
inline To cast_value(From v) {
  if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    if (v != v) return To{0};
    const long double lv = static_cast<long double>(v);
    constexpr long double lim = 9.2233720368547758e18L;  // 2^63
    const int64_t i = lv >= lim ? INT64_MAX : lv <= -lim ? INT64_MIN : static_cast<int64_t>(lv);
    return static_cast<To>(i);
  } else {
    return static_cast<To>(v);
  }
}

/// `t` itself when contiguous, else a contiguous copy made by the cpu backend (no autograd involved).
Tensor contiguous_input(const Tensor& t);
/// `t` itself when contiguous or channels-last (both dense layouts oneDNN reads directly), else a contiguous
/// copy.
Tensor dense_input(const Tensor& t);
/// True for a tensor laid out channels-last (nhwc) and not also plain contiguous: the kernels' nhwc paths.
inline bool is_nhwc(const Tensor& t) { return t.memory_format() == MemoryFormat::ChannelsLast; }
/// t in channels-last layout (itself when it already is; else a copy): for kernels that walk nhwc memory.
Tensor channels_last_input(const Tensor& t);

/// Throws unless t is defined, on the CPU, of dtype `dt` and of shape `shape`.
void check_tensor(const char* op, const char* what, const Tensor& t, DType dt, const Shape& shape);
/// Throws unless t is defined and on the CPU.
void check_cpu(const char* op, const char* what, const Tensor& t);
/// Throws the "cpu backend does not support <op> for <dtype>" error.
[[noreturn]] void unsupported(const char* op, DType dt);

}  // namespace minidl::cpu
