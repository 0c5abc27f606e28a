// The cuda-host backend (the CUDA kernels' bodies run on the CPU): registered in every build, truthful
// supports(), clear errors with the ref backend's wording. Its values against ref are the conformance suite's
// "cuda-host vs ref" rows (tests/conformance), which run in every CI run.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
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

TEST_CASE("cuda-host: the ActNN codec and mask primitives reject bad input with ref's checks, naming the backend") {
  Backend& b = backend_by_name("cuda-host");
  Tensor x = zeros({2, 40});
  ActnnCodec c;
  c.n = 2;
  c.f = 40;
  c.group = 16;
  c.bits = {2, 0};  // a width of 0 is not a codec width (spec/quant.md 2.3: b_n in 1..8)
  Tensor codes = empty({24}, TensorOptions().dtype(DType::u8)), meta = empty({24}, TensorOptions().dtype(DType::u8));
  CHECK_THROWS_WITH_AS(b.actnn_quantize(codes, meta, x, c), "cuda-host actnn_quantize: bit width 0 is not in 1..8",
                       Error);
  c.bits = {2, 4};  // 48 * (2 + 4) / 8 = 36 code bytes, 2 * 3 groups * 4 = 24 metadata bytes
  CHECK_THROWS_WITH_AS(b.actnn_quantize(codes, meta, x, c),
                       "cuda-host actnn_quantize: codes must be a contiguous u8 tensor of 36 bytes, got uint8 [24]",
                       Error);
  codes = empty({36}, TensorOptions().dtype(DType::u8));
  b.actnn_quantize(codes, meta, x, c);  // now well-formed
  c.group = 12;
  CHECK_THROWS_WITH_AS(b.actnn_quantize(codes, meta, x, c),
                       "cuda-host actnn_quantize: group size 12 must be a positive multiple of 8", Error);
  c.group = 16;
  Tensor xt = zeros({40, 2}).transpose(0, 1);  // samples are not outermost in memory
  CHECK_THROWS_WITH_AS(b.actnn_quantize(codes, meta, xt, c), doctest::Contains("must be contiguous or channels-last"),
                       Error);
  Tensor xi = zeros({2, 40}, TensorOptions().dtype(DType::i32));
  CHECK_THROWS_WITH_AS(b.actnn_quantize(codes, meta, xi, c), doctest::Contains("dtype int32 is not supported"), Error);
  Tensor out = empty({4, 20});
  CHECK_THROWS_WITH_AS(b.actnn_dequantize(out, codes, meta, c),
                       "cuda-host actnn_dequantize: tensor [4, 20] is not 2 samples of 40 elements", Error);
  Tensor bits = empty({5}, TensorOptions().dtype(DType::u8));
  CHECK_THROWS_WITH_AS(b.pack_mask_bits(bits, x),
                       "cuda-host pack_mask_bits: bits must be a contiguous u8 tensor of 10 bytes, got uint8 [5]",
                       Error);
  CHECK_THROWS_WITH_AS(b.unpack_mask_bits(xt, empty({10}, TensorOptions().dtype(DType::u8))),
                       doctest::Contains("cuda-host unpack_mask_bits: out"), Error);
}

TEST_CASE("cuda-host: ActNN codes round-trip through ref both ways (the layout is the shared one)") {
  // cuda-host's codes decode with ref's dequantize and ref's codes with cuda-host's, per-sample widths included
  Backend& b = backend_by_name("cuda-host");
  Backend& r = backend_by_name("ref");
  std::vector<float> v(3 * 70);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37f * static_cast<float>(i)) * 2.0f;
  Tensor x = from_vector(v, {3, 70});
  ActnnCodec c;
  c.n = 3;
  c.f = 70;
  c.group = 32;
  c.key = 99;
  c.bits = {8, 3, 1};
  Tensor codes = empty({c.code_bytes()}, TensorOptions().dtype(DType::u8));
  Tensor meta = empty({c.meta_bytes()}, TensorOptions().dtype(DType::u8));
  b.actnn_quantize(codes, meta, x, c);
  Tensor via_ref = empty({3, 70}), via_host = empty({3, 70});
  r.actnn_dequantize(via_ref, codes, meta, c);
  b.actnn_dequantize(via_host, codes, meta, c);
  CHECK(via_ref.to_vector<float>() == via_host.to_vector<float>());
  // 8 bits keep sample 0 within one step of its group's range / 255
  const std::vector<float> d = via_host.to_vector<float>();
  float worst = 0;
  for (size_t i = 0; i < 70; ++i) worst = std::max(worst, std::abs(d[i] - v[i]));
  CHECK(worst <= 4.0f / 255.0f * 1.01f);
}
