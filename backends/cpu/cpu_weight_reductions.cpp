// The weight quantizer's whole-tensor reductions as one backend call each (quant/op_weight_standardize.cpp,
// quant/op_weight_quant.cpp): weight standardisation forward and backward, and the quantizer's backward (its mask
// and alpha gradient). The ops' chains of primitives cost a float64 copy, whole-tensor reductions and up to five
// elementwise passes per conv and step, each with its allocation and parallel-region start: 2.5 ms of a ResNet-20
// QAT step on a Zen 4 host for 0.27 M weights. Here the same arithmetic runs in a few loops over a thread-local
// buffer, with the reductions through cpu::reduce_whole (reduce()'s own code, so the same sums and the same split
// across threads): the same bits as the chains (tests/quant/test_weight_reductions_fused.cpp). This file is built
// for the baseline ISA, as the elementwise primitives are, so no multiply-add is contracted.
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_loops.h"
#include "backends/cpu/cpu_reduce.h"

namespace minidl {

namespace {

// A dense host tensor of like's floating dtype and shape.
bool dense_like(const Tensor& t, const Tensor& like) {
  return t.defined() && is_floating(like.dtype()) && t.device().is_cpu() && t.dtype() == like.dtype() &&
         t.sizes() == like.sizes() && t.is_contiguous();
}

// Dense host tensors of one floating dtype and shape, at least 2 elements: what the standardisation calls take.
bool fits(const Tensor& out, const Tensor& a, const Tensor& b) {
  return dense_like(a, a) && dense_like(out, a) && dense_like(b, a) && a.numel() >= 2;
}

template <typename T>
std::vector<T>& scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf;
}

}  // namespace

bool CpuBackend::weight_standardize_forward(Tensor& z, double& mean, double& stdv, const Tensor& w) {
  if (!fits(z, w, w)) return false;
  const int64_t n = w.numel();
  dispatch_floating(w.dtype(), "weight_standardize_forward", [&](auto tag) {
    using T = decltype(tag);
    const T* wp = w.data<T>();
    T* zp = z.data<T>();
    double* d = scratch<double>(n).data();
    cpu::parallel_for(n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) d[i] = static_cast<double>(wp[i]);
    });
    const double m = cpu::reduce_whole<double>(ReduceOp::Mean, d, n);
    cpu::parallel_for(n, 2, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const double c = d[i] - m;
        d[i] = c * c;
      }
    });
    const double ss = cpu::reduce_whole<double>(ReduceOp::Sum, d, n);
    const double sd = std::sqrt(ss / static_cast<double>(n - 1));
    const T mt = static_cast<T>(m), st = static_cast<T>(sd);
    cpu::parallel_for(n, 2, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) zp[i] = (wp[i] - mt) / st;
    });
    mean = m;
    stdv = sd;
  });
  return true;
}

bool CpuBackend::weight_standardize_backward(Tensor& gw, const Tensor& gz, const Tensor& z, double stdv) {
  if (!fits(gw, gz, z)) return false;
  const int64_t n = gz.numel();
  dispatch_floating(gz.dtype(), "weight_standardize_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* gp = gz.data<T>();
    const T* zp = z.data<T>();
    T* out = gw.data<T>();
    T* prod = scratch<T>(n).data();
    const T gmean = cpu::reduce_whole<T>(ReduceOp::Mean, gp, n);
    cpu::parallel_for(n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) prod[i] = gp[i] * zp[i];
    });
    const T dot = cpu::reduce_whole<T>(ReduceOp::Sum, prod, n);
    const T s = static_cast<T>(static_cast<double>(dot) / static_cast<double>(n - 1));
    const T a = static_cast<T>(1.0 / stdv), c = static_cast<T>(-static_cast<double>(gmean) / stdv);
    cpu::parallel_for(n, 3, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const T t = gp[i] - zp[i] * s;
        out[i] = t * a + c;
      }
    });
  });
  return true;
}

bool CpuBackend::quantize_weight_backward(Tensor& gw, Tensor& galpha, const Tensor& g, const Tensor& coef,
                                          const Tensor& inside, double scale) {
  if (!dense_like(g, g) || (gw.defined() && (!dense_like(gw, g) || !dense_like(inside, g))) ||
      (galpha.defined() &&
       (!dense_like(coef, g) || galpha.numel() != 1 || galpha.dtype() != g.dtype() || !galpha.device().is_cpu())))
    return false;
  const int64_t n = g.numel();
  dispatch_floating(g.dtype(), "quantize_weight_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* gp = g.data<T>();
    if (gw.defined()) {
      const T* ip = inside.data<T>();
      T* out = gw.data<T>();
      cpu::parallel_for(n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[i] = gp[i] * ip[i];
      });
    }
    if (galpha.defined()) {
      const T* cp = coef.data<T>();
      T* prod = scratch<T>(n).data();
      cpu::parallel_for(n, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) prod[i] = gp[i] * cp[i];
      });
      T sum = cpu::reduce_whole<T>(ReduceOp::Sum, prod, n);
      if (scale != 1.0) sum = sum * static_cast<T>(scale);
      galpha.data<T>()[0] = sum;
    }
  });
  return true;
}

}  // namespace minidl
