// dropout: mask statistics (drop rate, kept values scaled by 1/(1-p)), determinism for a seed on both CPU
// backends and both float dtypes, the gradient equal to the mask, identity in eval, and the saved mask's kind.
#include <cmath>

#include "autograd/saved_tensor.h"
#include "test_ops_util.h"
#include "test_scopes.h"

using namespace minidl;
using namespace minidl::test;

TEST_CASE("dropout drops about p of the elements and scales the rest by 1/(1-p)") {
  const int64_t n = 200000;
  Tensor x = ones({n});
  for (double p : {0.1, 0.5, 0.8}) {
    CAPTURE(p);
    manual_seed(7);
    const std::vector<float> y = dropout(x, p, true).to_vector<float>();
    int64_t zeros_seen = 0;
    bool values_ok = true;
    const float kept = static_cast<float>(1.0 / (1.0 - p));
    for (float v : y) {
      if (v == 0.0f) {
        ++zeros_seen;
      } else if (std::abs(v - kept) > 1e-6f * kept) {
        values_ok = false;
      }
    }
    CHECK(values_ok);
    // Binomial(n, p): 5 standard deviations is at most 0.0056 here.
    const double rate = static_cast<double>(zeros_seen) / static_cast<double>(n);
    CHECK(std::abs(rate - p) < 5.0 * std::sqrt(p * (1 - p) / static_cast<double>(n)));
  }
}

TEST_CASE("dropout is deterministic for a seed, across backends and dtypes, successive calls differ") {
  Tensor x = ones({1000});
  manual_seed(11);
  const std::vector<float> a = dropout(x, 0.5, true).to_vector<float>();
  const std::vector<float> b = dropout(x, 0.5, true).to_vector<float>();
  CHECK(a != b);  // the generator advanced
  std::vector<double> c64;
  {
    RefScope ref;
    manual_seed(11);
    c64 = dropout(ones({1000}, f64()), 0.5, true).to_vector<double>();
  }
  REQUIRE(c64.size() == a.size());
  bool same = true;
  for (size_t i = 0; i < a.size(); ++i) same = same && (a[i] == 0.0f) == (c64[i] == 0.0);
  CHECK(same);
  manual_seed(12);
  CHECK(dropout(x, 0.5, true).to_vector<float>() != a);
}

TEST_CASE("dropout gradient is the scaled mask, eval and p = 0 are the identity") {
  RefScope ref;
  manual_seed(3);
  Tensor x = rand_leaf({64}, 3, 1.0, 2.0);  // no zeros, so y / x recovers the scaled mask
  Tensor y = dropout(x, 0.25, true);
  y.sum().backward();
  const std::vector<double> yv = values(y), xv = values(x), gv = values(x.grad());
  for (size_t i = 0; i < yv.size(); ++i) {
    INFO("element " << i);
    CHECK(gv[i] == doctest::Approx(yv[i] / xv[i]));
    CHECK((gv[i] == 0.0 || gv[i] == doctest::Approx(1.0 / 0.75)));
  }
  CHECK(dropout(x, 0.5, false).is_same(x));
  CHECK(dropout(x, 0.0, true).is_same(x));
  CHECK(values(dropout(x, 1.0, true)) == std::vector<double>(64, 0.0));
  CHECK_THROWS_WITH_AS(dropout(x, 1.5, true), doctest::Contains("dropout: probability must be in [0, 1]"), Error);
}

TEST_CASE("dropout of a 0-dim tensor is 0-dim, as in PyTorch") {
  for (const char* be : {"ref", "cpu"}) {
    CAPTURE(be);
    test::BackendScope scope(be);
    manual_seed(5);
    Tensor x = scalar_tensor(2.0, TensorOptions().requires_grad());
    Tensor y = dropout(x, 0.5, true);
    CHECK(y.dim() == 0);  // was [1]: the mask was built 1-D
    y.backward();
    CHECK(x.grad().dim() == 0);
    CHECK((y.item<double>() == 0.0 || y.item<double>() == 4.0));
    CHECK(x.grad().item<double>() == y.item<double>() / 2.0);
  }
}

TEST_CASE("dropout saves its mask as SaveKind::Mask") {
  RefScope ref;
  std::vector<autograd::SaveKind> kinds;
  autograd::SavedTensorHooks hooks{[&](const Tensor& t, const autograd::SaveInfo& info) -> std::any {
                                     if (info.op == "dropout") kinds.push_back(info.kind);
                                     return t;
                                   },
                                   [](const std::any& a) { return std::any_cast<Tensor>(a); }};
  autograd::SavedTensorHooksGuard guard(hooks);
  Tensor x = rand_leaf({8}, 4);
  dropout(x, 0.5, true).sum().backward();
  REQUIRE(kinds.size() == 1);
  CHECK(kinds[0] == autograd::SaveKind::Mask);
}
