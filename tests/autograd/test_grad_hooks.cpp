// Gradient-ready hooks and backward callbacks (autograd/grad_hooks.h): a hook runs once per pass, when the
// leaf's .grad is final (checked against the value after backward), also for a leaf reached by several edges
// and for one no gradient reaches; callbacks run after every hook.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "autograd/grad_hooks.h"
#include "autograd/ops.h"
#include "tensor/tensor.h"

using namespace minidl;

TEST_CASE("grad_hooks: each leaf's hook fires once, with its final gradient, before the queued callback") {
  Tensor a = randn({3}).set_requires_grad();
  Tensor b = randn({3}).set_requires_grad();
  Tensor unused = randn({3}).set_requires_grad();
  std::vector<std::string> events;
  std::vector<float> a_at_hook;
  const int64_t ha = autograd::add_grad_ready_hook(a, [&](const Tensor& leaf) {
    events.push_back("a");
    a_at_hook = leaf.grad().to_vector<float>();
    autograd::queue_backward_callback([&] { events.push_back("end"); });
  });
  const int64_t hb = autograd::add_grad_ready_hook(b, [&](const Tensor&) { events.push_back("b"); });
  const int64_t hu = autograd::add_grad_ready_hook(unused, [&](const Tensor&) { events.push_back("unused"); });
  // a reaches the loss along three edges (a*a twice, and a*b); b along one, early in backward order
  Tensor t = mul(a, a);
  Tensor loss = add(sum(mul(t, b)), sum(a));
  loss.backward();
  REQUIRE(events.size() == 3);
  CHECK(events.back() == "end");
  CHECK(std::count(events.begin(), events.end(), "a") == 1);
  CHECK(std::count(events.begin(), events.end(), "b") == 1);
  CHECK(a_at_hook == a.grad().to_vector<float>());  // final when the hook ran
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>(), g = a.grad().to_vector<float>();
  for (size_t i = 0; i < 3; ++i) CHECK(g[i] == doctest::Approx(2 * av[i] * bv[i] + 1).epsilon(1e-6));

  // a second pass fires again; removed hooks do not
  events.clear();
  autograd::remove_grad_ready_hook(hb);
  Tensor loss2 = sum(mul(a, b));
  loss2.backward();
  CHECK(events == std::vector<std::string>{"a", "end"});
  autograd::remove_grad_ready_hook(ha);
  autograd::remove_grad_ready_hook(hu);
}

TEST_CASE("grad_hooks: a leaf outside the differentiated graph is not fired") {
  Tensor w = randn({4}).set_requires_grad();
  Tensor v = randn({4}).set_requires_grad();
  int fired_w = 0, fired_v = 0;
  const int64_t hw = autograd::add_grad_ready_hook(w, [&](const Tensor&) { ++fired_w; });
  const int64_t hv = autograd::add_grad_ready_hook(v, [&](const Tensor&) { ++fired_v; });
  Tensor other = sum(mul(w, w));  // recorded, but not below the root
  Tensor loss = sum(mul(v, v));
  loss.backward();
  CHECK(fired_v == 1);
  CHECK(fired_w == 0);
  CHECK_FALSE(w.grad().defined());
  (void)other;
  autograd::remove_grad_ready_hook(hw);
  autograd::remove_grad_ready_hook(hv);
}

TEST_CASE("grad_hooks: errors") {
  Tensor x = randn({2});
  CHECK_THROWS_WITH_AS(autograd::add_grad_ready_hook(x, [](const Tensor&) {}),
                       doctest::Contains("leaf that requires grad"), Error);
  CHECK_THROWS_WITH_AS(autograd::queue_backward_callback([] {}), doctest::Contains("no backward pass"), Error);
}
