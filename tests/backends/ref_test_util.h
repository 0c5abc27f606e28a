// Helpers for the ref-backend kernel tests: the backend under test, tensors from plain vectors, reading a
// contiguous result back with plain pointer reads (not through any backend), and element-wise closeness checks.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "tensor/tensor.h"

namespace reftest {

using minidl::DType;
using minidl::Shape;
using minidl::Tensor;
using minidl::TensorOptions;

inline minidl::Backend& ref() { return minidl::backend_by_name("ref"); }

inline TensorOptions f64() { return TensorOptions().dtype(DType::f64); }
inline TensorOptions f32() { return TensorOptions().dtype(DType::f32); }

/// A contiguous tensor of the given dtype holding `v` (given as doubles); other dtypes are cast by ref's copy,
/// so the tests never depend on whichever backend is the CPU default.
inline Tensor make(const std::vector<double>& v, const Shape& shape, DType dt = DType::f64) {
  Tensor t = minidl::from_vector(v, shape, f64());
  if (dt == DType::f64) return t;
  Tensor o = minidl::empty(shape, TensorOptions().dtype(dt));
  ref().copy(o, t);
  return o;
}

/// A fresh uninitialised contiguous output, filled with a sentinel so a kernel that forgets a cell is caught.
inline Tensor out(const Shape& shape, DType dt = DType::f64) {
  Tensor t = minidl::empty(shape, TensorOptions().dtype(dt));
  if (dt == DType::f64) {
    double* p = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = 12345.0;
  } else if (dt == DType::f32) {
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = 12345.0f;
  }
  return t;
}

/// The elements of a contiguous host tensor of any dtype, as doubles, read straight from memory.
inline std::vector<double> vals(const Tensor& t) {
  REQUIRE(t.is_contiguous());
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (t.dtype()) {
      case DType::f32: v[i] = t.data<float>()[i]; break;
      case DType::f64: v[i] = t.data<double>()[i]; break;
      case DType::i32: v[i] = t.data<int32_t>()[i]; break;
      case DType::i64: v[i] = static_cast<double>(t.data<int64_t>()[i]); break;
      case DType::u8: v[i] = t.data<uint8_t>()[i]; break;
    }
  }
  return v;
}

/// Every element within tol (absolute + relative), with the index in the failure message.
inline void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol = 1e-12) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    if (std::isnan(want[i])) {
      CHECK(std::isnan(got[i]));
    } else {
      CHECK(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
    }
  }
}

inline void check_close(const Tensor& got, const std::vector<double>& want, double tol = 1e-12) {
  check_close(vals(got), want, tol);
}

/// Deterministic pseudo-random values in [-1, 1) (a tiny LCG, so tests need no generator).
inline std::vector<double> pseudo(size_t n, uint32_t seed) {
  std::vector<double> v(n);
  uint32_t s = seed * 2654435761u + 12345u;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<double>(s >> 8) / static_cast<double>(1u << 24) * 2.0 - 1.0;
  }
  return v;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace reftest
