// Ref fill / copy / unary / binary against hand-computed values: casts across all five dtypes, copies from
// permuted and broadcast views, strided outputs, broadcasting binaries, comparisons and gradient helpers.
#include <cmath>
#include <limits>

#include "ref_test_util.h"

using namespace reftest;
using minidl::BinaryOp;
using minidl::UnaryOp;

TEST_CASE("ref is registered and answers supports() truthfully") {
  minidl::Backend& b = ref();
  CHECK(b.name() == "ref");
  for (DType d : {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8}) {
    CHECK(b.supports(minidl::OpKind::Fill, d));
    CHECK(b.supports(minidl::OpKind::Copy, d));
    const bool fl = d == DType::f32 || d == DType::f64;
    CHECK(b.supports(minidl::OpKind::Conv2d, d) == fl);
    CHECK(b.supports(minidl::OpKind::Binary, d) == fl);
    CHECK(b.supports(minidl::OpKind::NllLoss, d) == fl);
    CHECK(b.supports(minidl::OpKind::Quantize, d) == fl);
  }
}

TEST_CASE("ref fill writes every dtype, and a strided output only at its own elements") {
  for (DType d : {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8}) {
    Tensor t = minidl::empty({2, 3}, TensorOptions().dtype(d));
    ref().fill(t, 7.0);
    check_close(t, std::vector<double>(6, 7.0), 0);
  }
  // a column of a (3, 4) f64 tensor: stride 4
  Tensor base = make(std::vector<double>(12, 0.0), {3, 4});
  Tensor col = base.as_strided({3}, {4}, 1);
  ref().fill(col, -2.5);
  check_close(base, {0, -2.5, 0, 0, 0, -2.5, 0, 0, 0, -2.5, 0, 0}, 0);
}

TEST_CASE("ref copy casts between all five dtypes") {
  // f64 -> each: floating to integer truncates toward zero; a negative value wraps into u8 through int64
  Tensor src = make({1.7, -2.2, 3.0, 255.9}, {4});
  Tensor i32 = minidl::empty({4}, TensorOptions().dtype(DType::i32));
  Tensor i64 = minidl::empty({4}, TensorOptions().dtype(DType::i64));
  Tensor u8 = minidl::empty({4}, TensorOptions().dtype(DType::u8));
  Tensor f32 = minidl::empty({4}, TensorOptions().dtype(DType::f32));
  ref().copy(i32, src);
  ref().copy(i64, src);
  ref().copy(u8, src);
  ref().copy(f32, src);
  check_close(i32, {1, -2, 3, 255}, 0);
  check_close(i64, {1, -2, 3, 255}, 0);
  check_close(u8, {1, 254, 3, 255}, 0);  // -2 -> 254
  check_close(f32, {static_cast<double>(1.7f), static_cast<double>(-2.2f), 3, static_cast<double>(255.9f)}, 0);
  // integers -> floating and across integer widths
  Tensor back = minidl::empty({4}, TensorOptions().dtype(DType::f64));
  ref().copy(back, u8);
  check_close(back, {1, 254, 3, 255}, 0);
  Tensor from_i64 = minidl::from_vector(std::vector<int64_t>{-1, 300, 5}, {3}, TensorOptions().dtype(DType::i64));
  Tensor to_u8 = minidl::empty({3}, TensorOptions().dtype(DType::u8));
  ref().copy(to_u8, from_i64);
  check_close(to_u8, {255, 44, 5}, 0);  // modulo 256
  Tensor to_f32 = minidl::empty({3}, TensorOptions().dtype(DType::f32));
  ref().copy(to_f32, from_i64);
  check_close(to_f32, {-1, 300, 5}, 0);
}

TEST_CASE("ref copy from a permuted view and from a broadcast view") {
  // a (2, 3, 4) tensor holding 0..23, permuted to (4, 2, 3): out[i][j][k] = a[j][k][i] = 12j + 4k + i
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[static_cast<size_t>(i)] = i;
  Tensor a = make(v, {2, 3, 4});
  Tensor p = a.as_strided({4, 2, 3}, {1, 12, 4}, 0);
  Tensor o = out({4, 2, 3}, DType::f32);
  ref().copy(o, p);
  std::vector<double> want;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) want.push_back(12 * j + 4 * k + i);
  check_close(o, want, 0);
  // a row broadcast down 3 rows (stride 0) with an offset into the storage
  Tensor row = a.as_strided({3, 2}, {0, 1}, 5);
  Tensor o2 = out({3, 2});
  ref().copy(o2, row);
  check_close(o2, {5, 6, 5, 6, 5, 6}, 0);
  // a 0-dim copy
  Tensor s = a.as_strided({}, {}, 23);
  Tensor o3 = out({});
  ref().copy(o3, s);
  check_close(o3, {23}, 0);
  CHECK_THROWS_AS(ref().copy(o2, a), minidl::Error);  // shape mismatch
}

TEST_CASE("ref unary ops by hand") {
  const std::vector<double> x = {-2.0, -0.5, 0.0, 0.5, 2.5};
  Tensor in = make(x, {5});
  auto run = [&](UnaryOp op, minidl::UnaryParams p = {}) {
    Tensor o = out({5});
    ref().unary(op, o, in, p);
    return vals(o);
  };
  auto map = [&](auto f) {
    std::vector<double> r;
    for (double v : x) r.push_back(f(v));
    return r;
  };
  check_close(run(UnaryOp::Neg), {2, 0.5, 0, -0.5, -2.5});
  check_close(run(UnaryOp::Exp), map([](double v) { return std::exp(v); }));
  check_close(run(UnaryOp::Abs), {2, 0.5, 0, 0.5, 2.5});
  check_close(run(UnaryOp::Sign), {-1, -1, 0, 1, 1});
  check_close(run(UnaryOp::Relu), {0, 0, 0, 0.5, 2.5});
  check_close(run(UnaryOp::Sigmoid), map([](double v) { return std::exp(v) / (1 + std::exp(v)); }));
  check_close(run(UnaryOp::Tanh), map([](double v) { return (std::exp(2 * v) - 1) / (std::exp(2 * v) + 1); }));
  check_close(run(UnaryOp::Square), {4, 0.25, 0, 0.25, 6.25});
  check_close(run(UnaryOp::Clamp, {-1.0, 1.0}), {-1, -0.5, 0, 0.5, 1});
  check_close(run(UnaryOp::AddScalar, {1.5, 0}), {-0.5, 1, 1.5, 2, 4});
  check_close(run(UnaryOp::MulScalar, {-2, 0}), {4, 1, 0, -1, -5});
  check_close(run(UnaryOp::Affine, {2, 1}), {-3, 0, 1, 2, 6});
  check_close(run(UnaryOp::Round), {-2, -0.0, 0, 0, 2});  // half to even: -0.5 -> -0, 0.5 -> 0, 2.5 -> 2
  check_close(run(UnaryOp::Floor), {-2, -1, 0, 0, 2});

  Tensor pos = make({0.25, 1.0, 4.0}, {3});
  auto runp = [&](UnaryOp op, minidl::UnaryParams p = {}) {
    Tensor o = out({3});
    ref().unary(op, o, pos, p);
    return vals(o);
  };
  check_close(runp(UnaryOp::Log), {-2 * std::log(2.0), 0, 2 * std::log(2.0)});
  check_close(runp(UnaryOp::Sqrt), {0.5, 1, 2});
  check_close(runp(UnaryOp::Rsqrt), {2, 1, 0.5});
  check_close(runp(UnaryOp::Reciprocal), {4, 1, 0.25});
  check_close(runp(UnaryOp::PowScalar, {1.5, 0}), {0.125, 1, 8});

  // float32 in and out, from a stride-2 view
  Tensor f = make({1, 100, 2, 100, 3, 100}, {6}, DType::f32);
  Tensor every_other = f.as_strided({3}, {2}, 0);
  Tensor o = out({3}, DType::f32);
  ref().unary(UnaryOp::Square, o, every_other, {});
  check_close(o, {1, 4, 9}, 0);
}

TEST_CASE("ref unary and binary refuse integer dtypes, naming the op and ref") {
  Tensor i = minidl::zeros({3}, TensorOptions().dtype(DType::i32));
  Tensor o = minidl::zeros({3}, TensorOptions().dtype(DType::i32));
  CHECK_THROWS_WITH_AS(ref().unary(UnaryOp::Exp, o, i, {}), doctest::Contains("ref exp"), minidl::Error);
  CHECK_THROWS_WITH_AS(ref().binary(BinaryOp::Add, o, i, i), doctest::Contains("ref add"), minidl::Error);
  Tensor a = make({1, 2, 3}, {3});
  Tensor b32 = make({1, 2, 3}, {3}, DType::f32);
  Tensor o64 = out({3});
  CHECK_THROWS_AS(ref().binary(BinaryOp::Add, o64, a, b32), minidl::Error);  // mixed dtypes
}

TEST_CASE("ref binary ops by hand, broadcasting from expanded views") {
  // a (2, 3) = [[1, 2, 3], [4, 5, 6]];  b is a row [2, -1, 0.5] expanded to (2, 3) with stride 0
  Tensor a = make({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor brow = make({2, -1, 0.5}, {3});
  Tensor b = brow.as_strided({2, 3}, {0, 1}, 0);
  auto run = [&](BinaryOp op) {
    Tensor o = out({2, 3});
    ref().binary(op, o, a, b);
    return vals(o);
  };
  check_close(run(BinaryOp::Add), {3, 1, 3.5, 6, 4, 6.5});
  check_close(run(BinaryOp::Sub), {-1, 3, 2.5, 2, 6, 5.5});
  check_close(run(BinaryOp::Mul), {2, -2, 1.5, 8, -5, 3});
  check_close(run(BinaryOp::Div), {0.5, -2, 6, 2, -5, 12});
  check_close(run(BinaryOp::Pow), {1, 0.5, std::sqrt(3.0), 16, 0.2, std::sqrt(6.0)});
  check_close(run(BinaryOp::Maximum), {2, 2, 3, 4, 5, 6});
  check_close(run(BinaryOp::Minimum), {1, -1, 0.5, 2, -1, 0.5});

  // a column [10, 20] expanded along dim 1 against a transposed view of a (3, 2) tensor
  Tensor col = make({10, 20}, {2}).as_strided({2, 3}, {1, 0}, 0);
  Tensor m = make({1, 4, 2, 5, 3, 6}, {3, 2}).as_strided({2, 3}, {1, 2}, 0);  // = a
  Tensor o = out({2, 3});
  ref().binary(BinaryOp::Sub, o, col, m);
  check_close(o, {9, 8, 7, 16, 15, 14});

  // maximum propagates NaN
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor n1 = make({nan, 1}, {2});
  Tensor n2 = make({0, nan}, {2});
  Tensor on = out({2});
  ref().binary(BinaryOp::Maximum, on, n1, n2);
  check_close(on, {nan, nan});
}

TEST_CASE("ref comparisons give 1 or 0, also into a uint8 output") {
  Tensor a = make({1, 2, 3}, {3});
  Tensor b = make({2, 2, 2}, {3});
  auto run = [&](BinaryOp op, DType od) {
    Tensor o = minidl::empty({3}, TensorOptions().dtype(od));
    ref().binary(op, o, a, b);
    return vals(o);
  };
  check_close(run(BinaryOp::Eq, DType::f64), {0, 1, 0}, 0);
  check_close(run(BinaryOp::Gt, DType::f64), {0, 0, 1}, 0);
  check_close(run(BinaryOp::Ge, DType::u8), {0, 1, 1}, 0);
  check_close(run(BinaryOp::Lt, DType::f64), {1, 0, 0}, 0);
  check_close(run(BinaryOp::Le, DType::u8), {1, 1, 0}, 0);
}

TEST_CASE("ref gradient helpers") {
  Tensor g = make({2, 3, -4}, {3});
  Tensor v = make({-1, 0, 0.5}, {3});
  Tensor o = out({3});
  ref().binary(BinaryOp::ReluBackward, o, g, v);
  check_close(o, {0, 0, -4});  // b > 0 only; b == 0 passes nothing
  ref().binary(BinaryOp::SigmoidBackward, o, g, v);
  check_close(o, {2 * -1 * 2, 0, -4 * 0.5 * 0.5});
  ref().binary(BinaryOp::TanhBackward, o, g, v);
  check_close(o, {0, 3, -4 * 0.75});
}

TEST_CASE("ref elementwise in place: out aliases an input") {
  Tensor a = make({1, 2, 3}, {3});
  Tensor b = make({10, 20, 30}, {3});
  ref().binary(BinaryOp::Add, a, a, b);
  check_close(a, {11, 22, 33});
  ref().unary(UnaryOp::MulScalar, a, a, {0.5, 0});
  check_close(a, {5.5, 11, 16.5});
}
