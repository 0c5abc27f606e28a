// Host-side helpers that turn Tensors into the kernels' argument pieces (kernels/launch.h): element pointers,
// strided walks with mergeable dims merged, (N, C, H, W) strides. No CUDA header: the cuda-host backend, built
// everywhere, uses them too.
#pragma once

#include <array>
#include <vector>

#include "backends/cuda/kernels/launch.h"
#include "tensor/tensor.h"

namespace minidl::cuda {

/// The address of a tensor's first element on its own memory (host or device); nullptr when undefined.
inline void* elem_ptr(const Tensor& t) {
  if (!t.defined() || !t.storage() || t.storage()->data() == nullptr) return nullptr;
  return static_cast<char*>(t.storage()->data()) + t.offset() * static_cast<int64_t>(t.element_size());
}

/// A walk over `sizes` with operand k strided by *strides[k]. Size-1 dims are dropped and neighbours merged
/// where every operand is linear across them, so contiguous operands become one dense dim (no index division
/// in the kernel). `who` names the backend and op in the error for a walk of more than kern::kMaxDims dims.
template <int N>
kern::Walk<N> make_walk(const Shape& sizes, const std::array<const Shape*, N>& strides, const std::string& who) {
  std::vector<int64_t> sz;
  std::vector<std::array<int64_t, N>> st;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    std::array<int64_t, N> s{};
    for (int k = 0; k < N; ++k) s[static_cast<size_t>(k)] = (*strides[static_cast<size_t>(k)])[d];
    if (!sz.empty()) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k) {
        const auto kk = static_cast<size_t>(k);
        mergeable = mergeable && st.back()[kk] == s[kk] * sizes[d];
      }
      if (mergeable) {  // the previous dim is this one continued: fold them into one dim
        sz.back() *= sizes[d];
        st.back() = s;
        continue;
      }
    }
    sz.push_back(sizes[d]);
    st.push_back(s);
  }
  MINIDL_CHECK(sz.size() <= static_cast<size_t>(kern::kMaxDims), who, ": a strided walk over shape ", shape_str(sizes),
               " needs ", sz.size(), " dims after merging; the kernels take at most ", kern::kMaxDims);
  kern::Walk<N> w;
  w.rank = static_cast<int>(sz.size());
  bool dense = true;
  for (size_t d = 0; d < sz.size(); ++d) {
    w.sizes[d] = sz[d];
    for (int k = 0; k < N; ++k) w.strides[k][d] = st[d][static_cast<size_t>(k)];
  }
  for (int k = 0; k < N; ++k) dense = dense && (w.rank == 0 || (w.rank == 1 && w.strides[k][0] == 1));
  w.dense = dense;
  return w;
}

/// Strides of a 4-D (N, C, H, W) or 2-D (N, C) tensor as (N, C, H, W); undefined gives zeros.
inline kern::Nchw nchw_strides(const Tensor& t) {
  kern::Nchw s;
  if (!t.defined()) return s;
  s.n = t.stride(0);
  s.c = t.stride(1);
  if (t.dim() == 4) {
    s.h = t.stride(2);
    s.w = t.stride(3);
  }
  return s;
}

inline kern::Dims4 nchw_dims(const Tensor& t) {
  return kern::Dims4{t.size(0), t.size(1), t.dim() == 4 ? t.size(2) : 1, t.dim() == 4 ? t.size(3) : 1};
}

}  // namespace minidl::cuda
