// Elementwise ops against hand-computed values: broadcasting forward and its summed-back gradients, scalar
// operators, the subgradient choices (relu/abs at 0, clamp at the bounds, max ties), and the error messages
// for shapes that cannot broadcast and for dtype mismatches.
#include "test_ops_util.h"

using namespace minidl;
using namespace minidl::test;

TEST_CASE("broadcast_shapes follows NumPy rules and names the op on failure") {
  CHECK(broadcast_shapes({2, 3}, {3}, "add") == Shape{2, 3});
  CHECK(broadcast_shapes({4, 1, 3}, {2, 1}, "mul") == Shape{4, 2, 3});
  CHECK(broadcast_shapes({}, {2, 2}, "sub") == Shape{2, 2});
  CHECK(broadcast_shapes({1}, {0}, "add") == Shape{0});
  CHECK_THROWS_WITH_AS(broadcast_shapes({2, 3}, {4}, "add"), "add: shapes [2, 3] and [4] cannot be broadcast", Error);
}

TEST_CASE("broadcasting add/mul: values and gradients summed back to each input's shape") {
  RefScope ref;
  Tensor a = leaf({1, 2, 3, 4, 5, 6}, {2, 3});  // [[1,2,3],[4,5,6]]
  Tensor b = leaf({10, 20, 30}, {3});
  Tensor c = leaf({2, 3}, {2, 1});

  Tensor s = a + b;
  CHECK(s.sizes() == Shape{2, 3});
  check_close(s, {11, 22, 33, 14, 25, 36});

  Tensor m = a * c;  // rows scaled by 2 and 3
  check_close(m, {2, 4, 6, 12, 15, 18});

  // y = sum((a + b) * c): dy/da = c broadcast, dy/db = sum over rows of c = 5, dy/dc = row sums of (a + b).
  ((a + b) * c).sum().backward();
  check_close(a.grad(), {2, 2, 2, 3, 3, 3});
  check_close(b.grad(), {5, 5, 5});
  check_close(c.grad(), {66, 75});
  CHECK(b.grad().sizes() == Shape{3});
  CHECK(c.grad().sizes() == Shape{2, 1});
}

TEST_CASE("broadcasting sub/div with a 0-dim operand and a leading new dim") {
  RefScope ref;
  Tensor a = leaf({2, 4, 8, 16}, {2, 1, 2});
  Tensor d = leaf({2});          // 0-dim
  Tensor e = leaf({1, 2}, {2});  // broadcast to the last dim
  Tensor q = a / d - e;
  CHECK(q.sizes() == Shape{2, 1, 2});
  check_close(q, {0, 0, 3, 6});
  q.sum().backward();
  check_close(a.grad(), {0.5, 0.5, 0.5, 0.5});
  check_close(d.grad(), {-(2.0 + 4 + 8 + 16) / 4.0});  // -sum(a)/d^2
  check_close(e.grad(), {-2, -2});
}

TEST_CASE("sum_to reverses broadcasting") {
  RefScope ref;
  Tensor g = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, f64());
  check_close(sum_to(g, {3}), {5, 7, 9});
  check_close(sum_to(g, {2, 1}), {6, 15});
  check_close(sum_to(g, {1, 1}), {21});
  CHECK(sum_to(g, {2, 3}).is_same(g));
}

TEST_CASE("scalar operators on either side") {
  RefScope ref;
  Tensor x = leaf({1, 2, 4});
  check_close(x + 1.0, {2, 3, 5});
  check_close(1.0 + x, {2, 3, 5});
  check_close(x - 1.0, {0, 1, 3});
  check_close(1.0 - x, {0, -1, -3});
  check_close(x * 3.0, {3, 6, 12});
  check_close(3.0 * x, {3, 6, 12});
  check_close(x / 4.0, {0.25, 0.5, 1.0});
  check_close(4.0 / x, {4, 2, 1});
  check_close(-x, {-1, -2, -4});
  (4.0 / x).sum().backward();  // -4/x^2
  check_close(x.grad(), {-4, -1, -0.25});
}

TEST_CASE("subgradients: relu and abs at 0 give 0, clamp passes at its bounds, max splits ties") {
  RefScope ref;
  Tensor x = leaf({-1, 0, 2});
  relu(x).sum().backward();
  check_close(x.grad(), {0, 0, 1});

  Tensor y = leaf({-3, 0, 5});
  abs(y).sum().backward();
  check_close(y.grad(), {-1, 0, 1});

  Tensor z = leaf({-2, -1, 0, 1, 2});
  Tensor c = clamp(z, -1, 1);
  check_close(c, {-1, -1, 0, 1, 1});
  c.sum().backward();
  check_close(z.grad(), {0, 1, 1, 1, 0});

  Tensor m = leaf({1, 3, 3, 2, 5, 5, 5, 0}, {2, 4});
  Tensor mx = max(m, {1});
  check_close(mx, {3, 5});
  mx.sum().backward();
  check_close(m.grad(), {0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0});
}

TEST_CASE("unary values against the closed forms") {
  RefScope ref;
  Tensor x = leaf({0.5, 1.0, 2.0});
  check_close(exp(x), {std::exp(0.5), std::exp(1.0), std::exp(2.0)});
  check_close(log(x), {std::log(0.5), 0.0, std::log(2.0)});
  check_close(sqrt(x), {std::sqrt(0.5), 1.0, std::sqrt(2.0)});
  check_close(pow(x, 3.0), {0.125, 1.0, 8.0});
  check_close(sigmoid(x), {1 / (1 + std::exp(-0.5)), 1 / (1 + std::exp(-1.0)), 1 / (1 + std::exp(-2.0))});
  check_close(tanh(x), {std::tanh(0.5), std::tanh(1.0), std::tanh(2.0)});
  Tensor e = leaf({2, 3});
  check_close(pow(x.narrow(0, 1, 2), e), {1.0, 8.0});
  // d tanh = 1 - tanh^2; d sigmoid = s (1 - s)
  tanh(x).sum().backward();
  check_close(x.grad(),
              {1 - std::pow(std::tanh(0.5), 2), 1 - std::pow(std::tanh(1.0), 2), 1 - std::pow(std::tanh(2.0), 2)});
}

TEST_CASE("elementwise errors name the op and both shapes, or the dtypes") {
  RefScope ref;
  Tensor a = zeros({2, 3}, f64()), b = zeros({4}, f64());
  CHECK_THROWS_WITH_AS(add(a, b), "add: shapes [2, 3] and [4] cannot be broadcast", Error);
  CHECK_THROWS_WITH_AS(a - b, "sub: shapes [2, 3] and [4] cannot be broadcast", Error);
  CHECK_THROWS_WITH_AS(a * b, "mul: shapes [2, 3] and [4] cannot be broadcast", Error);
  CHECK_THROWS_WITH_AS(a / b, "div: shapes [2, 3] and [4] cannot be broadcast", Error);
  Tensor f = zeros({2, 3});  // float32
  CHECK_THROWS_WITH_AS(add(a, f), doctest::Contains("add: dtype mismatch between float64 [2, 3] and float32 [2, 3]"),
                       Error);
  Tensor i = zeros({2, 3}, TensorOptions().dtype(DType::i64));
  CHECK_THROWS_WITH_AS(exp(i), doctest::Contains("exp: expected a floating tensor"), Error);
  CHECK_THROWS_WITH_AS(clamp(a, 1.0, 0.0), doctest::Contains("clamp: lower bound"), Error);
}

TEST_CASE("ops record only when an input requires grad and grad mode is on") {
  RefScope ref;
  Tensor x = leaf({1, 2});
  Tensor c = tensor({3, 4}, {}, f64());
  CHECK_FALSE((c * c).requires_grad());
  CHECK((x * c).requires_grad());
  CHECK((x * c).grad_fn()->name() == "mul");
  NoGradGuard g;
  CHECK_FALSE((x * c).requires_grad());
}
