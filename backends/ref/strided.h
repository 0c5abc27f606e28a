// Strided access for the ref backend: an N-d walk over several same-shaped operands (each with its own strides,
// stride 0 for broadcast) and fixed-rank element accessors. Every ref kernel reads and writes through these, so
// no kernel ever assumes a contiguous layout and no input needs copying first.
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "tensor/tensor.h"

namespace minidl::ref {

/// Calls f(offsets) for every index of `sizes` in row-major order; offsets[k] is the element offset of that
/// index in operand k (sum of index * strides[k]). A 0-dim shape visits once; an empty shape never.
template <size_t N, typename F>
void for_each_offset(const Shape& sizes, const std::array<const Shape*, N>& strides, F&& f) {
  const size_t rank = sizes.size();
  for (size_t k = 0; k < N; ++k) {
    MINIDL_CHECK(strides[k]->size() == rank, "ref: strided walk: operand ", k, " has rank ", strides[k]->size(),
                 ", expected ", rank);
  }
  const int64_t numel = shape_numel(sizes);
  if (numel == 0) return;
  std::vector<int64_t> idx(rank, 0);
  std::array<int64_t, N> off{};
  for (int64_t i = 0; i < numel; ++i) {
    f(static_cast<const std::array<int64_t, N>&>(off));
    // Odometer increment: bump the last dim; on wrap, rewind it and carry into the previous one.
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < sizes[d]) {
        for (size_t k = 0; k < N; ++k) off[k] += (*strides[k])[d];
        break;
      }
      idx[d] = 0;
      for (size_t k = 0; k < N; ++k) off[k] -= (*strides[k])[d] * (sizes[d] - 1);
    }
  }
}

/// Element accessor of fixed rank R: a(i0, i1, ...) = p[sum i_d * st[d]]. T may be const for inputs.
template <typename T, size_t R>
struct Acc {
  T* p = nullptr;
  std::array<int64_t, R> st{};
  std::array<int64_t, R> sz{};

  template <typename... I>
  T& operator()(I... i) const {
    static_assert(sizeof...(I) == R, "Acc: wrong number of indices");
    const std::array<int64_t, R> ix{static_cast<int64_t>(i)...};
    int64_t o = 0;
    for (size_t d = 0; d < R; ++d) o += ix[d] * st[d];
    return p[o];
  }
};

/// Accessor over a tensor of exactly rank R and element type T (std::remove_const_t<T> must be its dtype).
template <typename T, size_t R>
Acc<T, R> acc(const Tensor& t, const char* op) {
  MINIDL_CHECK(t.dim() == static_cast<int64_t>(R), "ref ", op, ": expected a ", R, "-d tensor, got shape ",
               shape_str(t.sizes()));
  Acc<T, R> a;
  a.p = t.data<std::remove_const_t<T>>();
  for (size_t d = 0; d < R; ++d) {
    a.st[d] = t.strides()[d];
    a.sz[d] = t.sizes()[d];
  }
  return a;
}

enum class Pad { Front, Back };

/// Accessor of rank R over a tensor of lower rank, padded with size-1 dims of stride 0 at the front (a 2-D
/// matrix seen as a batch of one) or at the back (an (N, C) batch-norm input seen as (N, C, 1, 1)).
template <typename T, size_t R>
Acc<T, R> acc_padded(const Tensor& t, Pad where, const char* op) {
  const int64_t r = t.dim();
  MINIDL_CHECK(r <= static_cast<int64_t>(R), "ref ", op, ": expected at most ", R, " dims, got shape ",
               shape_str(t.sizes()));
  Acc<T, R> a;
  a.p = t.data<std::remove_const_t<T>>();
  a.st.fill(0);
  a.sz.fill(1);
  const size_t shift = where == Pad::Front ? R - static_cast<size_t>(r) : 0;
  for (size_t d = 0; d < static_cast<size_t>(r); ++d) {
    a.st[d + shift] = t.strides()[d];
    a.sz[d + shift] = t.sizes()[d];
  }
  return a;
}

}  // namespace minidl::ref
