// The tape engine: accumulation, retain_graph, NoGradGuard, the errors for a second backward and for an in-place
// change of a saved tensor, retain_grad, and the Function API itself.
#include <doctest/doctest.h>

#include "autograd/function.h"
#include "autograd/grad_mode.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/ops.h"

using namespace minidl;

namespace {
Tensor leaf(std::initializer_list<double> v, Shape s = {}) {
  return tensor(v, s, TensorOptions().dtype(DType::f64).requires_grad());
}
std::vector<double> grad_of(const Tensor& t) { return t.grad().to_vector<double>(); }

// A user-defined op through the public Function API: y = x^3, dy/dx = 3x^2.
struct Cube : autograd::Function<Cube> {
  static constexpr const char* kName = "cube";
  static Tensor forward(autograd::Context& ctx, const Tensor& x) {
    ctx.save(x);
    return x * x * x;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    Tensor x = ctx.saved(0);
    return {g[0] * x * x * 3.0};
  }
};
// The same op with a wrong derivative (2x^2 instead of 3x^2): gradcheck must catch it.
struct WrongCube : autograd::Function<WrongCube> {
  static constexpr const char* kName = "wrong_cube";
  static Tensor forward(autograd::Context& ctx, const Tensor& x) {
    ctx.save(x);
    return x * x * x;
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    Tensor x = ctx.saved(0);
    return {g[0] * x * x * 2.0};
  }
};
}  // namespace

TEST_CASE("gradcheck accepts a scalar (0-dim) output and rejects a wrong backward") {
  CHECK(
      autograd::gradcheck([](const std::vector<Tensor>& in) { return Cube::apply(in[0]).sum(); }, {leaf({0.5, -1.5})}));
  CHECK_THROWS_WITH_AS(
      autograd::gradcheck([](const std::vector<Tensor>& in) { return WrongCube::apply(in[0]); }, {leaf({0.5, 2.0})}),
      doctest::Contains("gradcheck: mismatch for input 0"), Error);
}

TEST_CASE("a tensor used twice accumulates both gradients") {
  Tensor x = leaf({1.0, 2.0, 3.0});
  Tensor y = (x * x + x).sum();  // dy/dx = 2x + 1
  y.backward();
  CHECK(grad_of(x) == std::vector<double>{3.0, 5.0, 7.0});
  // A second graph adds into the existing .grad.
  (x * 2.0).sum().backward();
  CHECK(grad_of(x) == std::vector<double>{5.0, 7.0, 9.0});
}

TEST_CASE("retain_graph allows a second backward, without it the second backward is a clear error") {
  Tensor x = leaf({2.0});
  Tensor y = (x * x).sum();
  y.backward({}, /*retain_graph=*/true);
  y.backward();
  CHECK(grad_of(x) == std::vector<double>{8.0});

  Tensor z = (x * x).sum();
  z.backward();
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("backward through the graph a second time"), Error);
}

TEST_CASE("NoGradGuard stops recording") {
  Tensor x = leaf({1.0, 2.0});
  {
    NoGradGuard g;
    Tensor y = x * 3.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  Tensor y = x * 3.0;
  CHECK(y.requires_grad());
  CHECK(y.grad_fn() != nullptr);
}

TEST_CASE("backward refuses a saved tensor modified in place") {
  Tensor x = leaf({1.0, 2.0});
  Tensor h = x * 2.0;  // non-leaf, saved by the next mul
  Tensor y = (h * h).sum();
  {
    NoGradGuard g;
    h.add_(ones({2}, TensorOptions().dtype(DType::f64)));
  }
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("modified by an in-place operation"), Error);
}

TEST_CASE("an in-place write to a leaf that requires grad is refused while recording") {
  Tensor x = leaf({1.0});
  CHECK_THROWS_WITH_AS(x.fill_(2.0), doctest::Contains("in-place"), Error);
  NoGradGuard g;
  x.fill_(2.0);
  CHECK(x.item<double>() == 2.0);
}

TEST_CASE("an in-place write to a graph result or a view of a leaf is refused while recording (it is not recorded)") {
  // PyTorch records such writes (x.grad = [72, 144] below); minidl's autograd does not, so the write would leave
  // the gradient of the values before it (x.grad = [24, 48]): refused instead, with the op named
  Tensor x = leaf({1.0, 2.0});
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.mul_(3.0), doctest::Contains("modified in place"), Error);
  CHECK_THROWS_WITH_AS(y.add_(y), doctest::Contains("add_"), Error);
  CHECK_THROWS_WITH_AS(x.view({2}).fill_(0.0), doctest::Contains("an output of 'view'"), Error);
  CHECK_THROWS_WITH_AS(y.copy_(x.detach()), doctest::Contains("copy_"), Error);
  CHECK(x.to_vector<double>() == std::vector<double>{1.0, 2.0});
  // the out-of-place op gives PyTorch's gradient
  Tensor z = ((y * 3.0) * (y * 3.0)).sum();
  z.backward();
  CHECK(grad_of(x) == std::vector<double>{72.0, 144.0});
  // outside the graph the writes go through: under NoGradGuard, and on a detached copy
  {
    NoGradGuard g;
    Tensor v = x * 2.0;
    v.mul_(3.0);
    CHECK(v.to_vector<double>() == std::vector<double>{6.0, 12.0});
  }
  Tensor d = (x * 2.0).detach();
  d.mul_(3.0);
  CHECK(d.to_vector<double>() == std::vector<double>{6.0, 12.0});
}

TEST_CASE("custom Function: forward, saved tensors and backward") {
  Tensor x = leaf({1.0, -2.0});
  Tensor y = Cube::apply(x);
  CHECK(y.to_vector<double>() == std::vector<double>{1.0, -8.0});
  CHECK(y.grad_fn()->name() == "cube");
  y.sum().backward();
  CHECK(grad_of(x) == std::vector<double>{3.0, 12.0});
  CHECK(
      autograd::gradcheck([](const std::vector<Tensor>& in) { return Cube::apply(in[0]); }, {leaf({0.5, -1.5, 2.0})}));
}

TEST_CASE("nodes run in descending sequence order and a diamond graph sums its branches") {
  Tensor x = leaf({3.0});
  Tensor a = x * 2.0;
  Tensor b = a * a;  // 4x^2
  Tensor c = a + b;  // 2x + 4x^2
  CHECK(b.grad_fn()->seq() > a.grad_fn()->seq());
  c.sum().backward();
  CHECK(grad_of(x)[0] == doctest::Approx(2.0 + 8.0 * 3.0));
}

TEST_CASE("retain_grad keeps a non-leaf gradient") {
  Tensor x = leaf({1.0, 2.0});
  Tensor h = x * 3.0;
  h.retain_grad();
  (h * h).sum().backward();
  CHECK(h.grad().to_vector<double>() == std::vector<double>{6.0, 12.0});
  CHECK(grad_of(x) == std::vector<double>{18.0, 36.0});
}

TEST_CASE("a gradient tensor that reaches two places is never summed into in place where the other sees it") {
  SUBCASE("two leaves: each .grad is its own tensor") {
    // x + w hands the same incoming gradient (a contiguous one: the product's) to both inputs: accumulating a
    // second pass into x.grad, or scaling x.grad in place (clip_grad_norm_), must leave w.grad alone
    Tensor x = leaf({1.0, 2.0}), w = leaf({3.0, 4.0});
    Tensor z = ((x + w) * 2.0).sum();
    z.backward({}, true);
    x.grad().mul_(10.0);
    CHECK(grad_of(w) == std::vector<double>{2.0, 2.0});
    z.backward();
    CHECK(grad_of(x) == std::vector<double>{22.0, 22.0});
    CHECK(grad_of(w) == std::vector<double>{4.0, 4.0});
  }
  SUBCASE("two nodes: a shared pending gradient is copied before a sum") {
    // a + b gives a and b the same (contiguous) gradient tensor; each then gets its own second term
    Tensor x = leaf({1.0, 2.0});
    Tensor a = x * 2.0, b = x * 3.0;
    Tensor loss = ((a + b) * 2.0).sum() + (a * 5.0).sum() + (b * 7.0).sum();
    loss.backward();
    // dL/da = 2 + 5, dL/db = 2 + 7, dL/dx = 2 * 7 + 3 * 9
    CHECK(grad_of(x) == std::vector<double>{41.0, 41.0});
  }
}

TEST_CASE("a retained non-leaf gradient accumulates over backward passes, as a leaf's (PyTorch's semantics)") {
  // PyTorch 1.13: y = x * 2; y.retain_grad(); z = (y * 3).sum(); z.backward(retain_graph=True); z.backward()
  // gives y.grad = [6, 6] and x.grad = [12, 12]
  Tensor x = leaf({1.0, 1.0});
  Tensor y = x * 2.0;
  y.retain_grad();
  Tensor z = (y * 3.0).sum();
  z.backward({}, true);
  CHECK(y.grad().to_vector<double>() == std::vector<double>{3.0, 3.0});
  z.backward();
  CHECK(y.grad().to_vector<double>() == std::vector<double>{6.0, 6.0});
  CHECK(grad_of(x) == std::vector<double>{12.0, 12.0});
}

TEST_CASE("a graph dies with its tensors: the tape holds nodes weakly") {
  Tensor x = leaf({1.0});
  const size_t before = autograd::Tape::live_nodes().size();
  {
    Tensor y = x * 2.0 + 1.0;
    CHECK(autograd::Tape::live_nodes().size() >= before + 2);
  }
  CHECK(autograd::Tape::live_nodes().size() == before);
}

TEST_CASE("backward of a non-scalar needs an explicit gradient, one that needs no grad is an error") {
  Tensor x = leaf({1.0, 2.0});
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("non-scalar"), Error);
  y.backward(tensor({1.0, 10.0}, {}, TensorOptions().dtype(DType::f64)));
  CHECK(grad_of(x) == std::vector<double>{2.0, 20.0});
  Tensor c = tensor({1.0});
  CHECK_THROWS_AS(c.backward(), Error);
}
