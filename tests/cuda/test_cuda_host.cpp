// The cuda-host backend (the CUDA kernels' bodies run on the CPU): registered in every build, truthful
// supports(), clear errors with the ref backend's wording. Its values against ref are the conformance suite's
// "cuda-host vs ref" rows (tests/conformance), which run in every CI run.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "tensor/tensor.h"

using namespace minidl;

TEST_CASE("cuda-host: registered in every build, with or without nvcc") {
  const auto names = available_backends();
  REQUIRE(std::find(names.begin(), names.end(), "cuda-host") != names.end());
  Backend& b = backend_by_name("cuda-host");
  CHECK(b.name() == "cuda-host");
  for (int k = 0; k < static_cast<int>(OpKind::kCount); ++k) {
    const auto op = static_cast<OpKind>(k);
    CHECK_MESSAGE(b.supports(op, DType::f32), op_name(op));
    CHECK_MESSAGE(b.supports(op, DType::f64), op_name(op));
    const bool data_movement = op == OpKind::Fill || op == OpKind::Copy;
    CHECK_MESSAGE(b.supports(op, DType::i64) == data_movement, op_name(op));
  }
  // MINIDL_BACKEND / set_cpu_backend never pick it: it is a test vehicle for the device kernels
  CHECK_THROWS_AS(set_cpu_backend("cuda-host"), Error);
}

TEST_CASE("cuda-host: bad input is a clear one-line error naming the backend") {
  Backend& b = backend_by_name("cuda-host");
  Tensor logp = zeros({3, 4});
  Tensor loss = empty({});
  Tensor bad = from_vector(std::vector<int64_t>{1, 7, 2}, {3}, TensorOptions().dtype(DType::i64));
  CHECK_THROWS_WITH_AS(b.nll_loss_forward(loss, logp, bad, 0.0),
                       "cuda-host nll_loss_forward: target[1] = 7 is not a class index in [0, 4)", Error);
  Tensor g = empty({3, 4});
  CHECK_THROWS_WITH_AS(b.nll_loss_backward(g, ones({}), bad, 0.1),
                       "cuda-host nll_loss_backward: target[1] = 7 is not a class index in [0, 4)", Error);
  Tensor i = zeros({2, 2}, TensorOptions().dtype(DType::i32));
  Tensor io = empty({2, 2}, TensorOptions().dtype(DType::i32));
  CHECK_THROWS_WITH_AS(b.unary(UnaryOp::Exp, io, i, {}),
                       "cuda-host exp: dtype int32 is not supported by the cuda-host backend (expected float32 or "
                       "float64)",
                       Error);
  Tensor lv = from_vector(std::vector<float>{0.0f, 1.0f, 0.5f}, {3});
  Tensor x = zeros({4}), o = empty({4});
  CHECK_THROWS_WITH_AS(b.project_to_levels(o, x, lv, false),
                       "cuda-host project_to_levels: levels must be sorted ascending", Error);
}

TEST_CASE("cuda-host: a walk the kernels cannot index is an error, not a wrong answer") {
  // nine dims of size 2 stored in reverse order: no two neighbours merge, and the kernels index at most 8
  Shape sizes(9, 2), strides(9);
  for (size_t d = 0; d < 9; ++d) strides[d] = int64_t{1} << d;
  Tensor base = zeros({512});
  Tensor in = base.as_strided(sizes, strides, 0);
  Tensor out = empty(sizes);
  CHECK_THROWS_WITH_AS(backend_by_name("cuda-host").unary(UnaryOp::Neg, out, in, {}),
                       doctest::Contains("needs 9 dims after merging; the kernels take at most 8"), Error);
  // the same values in a mergeable layout run
  Tensor flat = zeros(sizes);
  backend_by_name("cuda-host").unary(UnaryOp::Neg, out, flat, {});
  CHECK(out.to_vector<float>() == std::vector<float>(512, -0.0f));
}
