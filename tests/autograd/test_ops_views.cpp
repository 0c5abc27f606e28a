// View ops: they share storage (a write through a view is seen by the base), have the expected geometry and
// values, and map gradients back (zeros outside a slice, inverse permutation, sums for expand). Also matmul
// shapes and errors, cat values, and reshape's copy fallback.
#include "test_ops_util.h"

using namespace minidl;
using namespace minidl::test;

namespace {
Tensor arange_f64(int64_t n, const Shape& s) { return arange(0.0, static_cast<double>(n), 1.0, f64()).view(s); }
}  // namespace

TEST_CASE("views share storage with their base") {
  RefScope ref;
  Tensor a = arange_f64(12, {3, 4});
  Tensor v = a.view({2, 6});
  Tensor t = a.t();
  Tensor s = a.slice(1, 1, 4, 2);  // columns 1 and 3
  Tensor e = a.select(0, 0).unsqueeze(0).expand({2, 4});
  CHECK(v.storage() == a.storage());
  CHECK(t.storage() == a.storage());
  CHECK(s.storage() == a.storage());
  CHECK(e.storage() == a.storage());
  CHECK(s.sizes() == Shape{3, 2});
  check_close(s, {1, 3, 5, 7, 9, 11});
  check_close(t, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK_FALSE(t.is_contiguous());
  CHECK(e.strides()[0] == 0);
  // A write through a view shows in the base and bumps the shared version counter.
  const uint64_t v0 = a.version();
  s.fill_(-1.0);
  CHECK(a.version() > v0);
  check_close(a, {0, -1, 2, -1, 4, -1, 6, -1, 8, -1, 10, -1});
  check_close(e, {0, -1, 2, -1, 0, -1, 2, -1});
}

TEST_CASE("view refuses a non-viewable layout, reshape copies then") {
  RefScope ref;
  Tensor a = arange_f64(6, {2, 3});
  Tensor t = a.t();
  CHECK_THROWS_WITH_AS(t.view({6}), doctest::Contains("view: cannot view [3, 2]"), Error);
  Tensor r = t.reshape({6});
  CHECK(r.storage() != a.storage());
  check_close(r, {0, 3, 1, 4, 2, 5});
  // A viewable reshape does not copy: [2, 3] -> [3, 2] of a contiguous tensor, and a split of a transposed dim.
  CHECK(a.reshape({3, 2}).storage() == a.storage());
  Tensor b = arange_f64(24, {2, 3, 4}).permute({1, 0, 2});  // [3, 2, 4] with strides [4, 12, 1]
  Tensor bv = b.view({3, 2, 2, 2});                         // splitting the last dim needs no copy
  CHECK(bv.storage() == b.storage());
  CHECK(bv.strides() == Shape{4, 12, 2, 1});
  CHECK_THROWS_AS(b.view({3, 8}), Error);  // merging dims 1 and 2 would
  check_close(b.reshape({3, 8}).select(0, 1), {4, 5, 6, 7, 16, 17, 18, 19});
  CHECK_THROWS_WITH_AS(a.view({4, -1}), doctest::Contains("view: shape [4, -1] is invalid for input [2, 3]"), Error);
  CHECK_THROWS_WITH_AS(a.view({-1, -1}), doctest::Contains("only one dimension can be -1"), Error);
}

TEST_CASE("squeeze, unsqueeze, flatten and narrow geometry") {
  RefScope ref;
  Tensor a = arange_f64(6, {2, 1, 3});
  CHECK(a.squeeze(1).sizes() == Shape{2, 3});
  CHECK(a.squeeze(0).sizes() == Shape{2, 1, 3});  // not size 1: unchanged, as in PyTorch
  CHECK(a.unsqueeze(0).sizes() == Shape{1, 2, 1, 3});
  CHECK(a.unsqueeze(-1).sizes() == Shape{2, 1, 3, 1});
  CHECK(a.flatten().sizes() == Shape{6});
  CHECK(a.flatten(1).sizes() == Shape{2, 3});
  CHECK(a.flatten(0, 1).sizes() == Shape{2, 3});
  check_close(a.narrow(2, 1, 2), {1, 2, 4, 5});
  check_close(a.slice(2, -2, 100), {1, 2, 4, 5});
  CHECK(a.slice(0, 1, 1).numel() == 0);
  CHECK_THROWS_WITH_AS(a.narrow(2, 2, 2), doctest::Contains("narrow: start 2 and length 2 are out of range"), Error);
  CHECK_THROWS_WITH_AS(a.select(0, 2), doctest::Contains("select: index 2 is out of range"), Error);
  CHECK_THROWS_WITH_AS(a.expand({3, 2, 3}), doctest::Contains("expand: cannot expand [2, 1, 3] to [3, 2, 3]"), Error);
  CHECK_THROWS_WITH_AS(a.permute({0, 0, 1}), doctest::Contains("permute: dimension 0 repeated"), Error);
}

TEST_CASE("view gradients: slice/select scatter into zeros, permute inverts, expand sums") {
  RefScope ref;
  Tensor x = leaf({0, 1, 2, 3, 4, 5, 6, 7}, {2, 4});
  (x.slice(1, 1, 4, 2) * 10.0).sum().backward();
  check_close(x.grad(), {0, 10, 0, 10, 0, 10, 0, 10});

  Tensor y = leaf({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor w = tensor({1, 2, 3, 4, 5, 6}, {3, 2}, f64());
  (y.permute({1, 0}) * w).sum().backward();  // y.T * w -> dy = w.T
  check_close(y.grad(), {1, 3, 5, 2, 4, 6});

  Tensor z = leaf({1, 2}, {2, 1});
  z.expand({3, 2, 4}).sum().backward();
  check_close(z.grad(), {12, 12});

  Tensor u = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  (u.select(1, 2) * tensor({7, 8}, {}, f64())).sum().backward();
  check_close(u.grad(), {0, 0, 7, 0, 0, 8});
}

TEST_CASE("slice bounds as Python's: negative ones count from the end, out-of-range ones are clamped") {
  RefScope ref;
  Tensor a = arange_f64(6, {6});
  check_close(a.slice(0, -4, -1), {2, 3, 4});     // a[-4:-1]
  check_close(a.slice(0, 1, 100, 2), {1, 3, 5});  // a[1:100:2]
  check_close(a.slice(0, -100, 2), {0, 1});       // a[-100:2]
  CHECK(a.slice(0, 4, 2).numel() == 0);           // a[4:2]
  check_close(a.slice(0, -3, 6, 2), {3, 5});      // a[-3:6:2]
}

TEST_CASE("view dims and sizes PyTorch refuses are refused: a 0-dim tensor's dims, a negative expanded size") {
  RefScope ref;
  Tensor s = scalar_tensor(2.0, f64());
  // a 0-dim tensor has dims 0 and -1 only
  CHECK(s.flatten(0, -1).sizes() == Shape{1});
  CHECK(s.transpose(0, -1).dim() == 0);
  CHECK(s.squeeze(-1).dim() == 0);
  CHECK_THROWS_WITH_AS(s.flatten(-2, 0), doctest::Contains("flatten"), Error);
  CHECK_THROWS_WITH_AS(s.flatten(0, 3), doctest::Contains("flatten"), Error);
  CHECK_THROWS_WITH_AS(s.transpose(-1, -2), doctest::Contains("transpose"), Error);
  CHECK_THROWS_WITH_AS(s.squeeze(1), doctest::Contains("squeeze"), Error);
  // a size-1 dim expands to any size >= 0; -1 keeps it; another negative size is an error (it made a tensor of
  // size -9)
  Tensor a = arange_f64(2, {2, 1});
  CHECK(a.expand({2, -1}).sizes() == Shape{2, 1});
  CHECK(a.expand({2, 0}).numel() == 0);
  CHECK_THROWS_WITH_AS(a.expand({2, -9}), doctest::Contains("expand: size -9"), Error);
  CHECK_THROWS_WITH_AS(a.expand({3, 2, -1, -9}), doctest::Contains("expand"), Error);
}

TEST_CASE("matmul values and shape errors") {
  RefScope ref;
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, f64());
  Tensor b = tensor({1, 0, 0, 1, 1, 1}, {3, 2}, f64());
  check_close(matmul(a, b), {4, 5, 10, 11});
  Tensor a3 = cat({a.unsqueeze(0), (a * 2.0).unsqueeze(0)}, 0);  // [2, 2, 3]
  check_close(matmul(a3, b), {4, 5, 10, 11, 8, 10, 20, 22});
  CHECK(matmul(a3, b).sizes() == Shape{2, 2, 2});
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3}, f64()), zeros({4, 5}, f64())),
                       "matmul: shapes [2, 3] and [4, 5] are incompatible (3 != 4)", Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 2, 3}, f64()), zeros({3, 3, 1}, f64())),
                       doctest::Contains("matmul: shapes [2, 2, 3] and [3, 3, 1] have different batch sizes"), Error);
  CHECK_THROWS_WITH_AS(matmul(zeros({2, 3}, f64()), zeros({3, 2})), doctest::Contains("matmul: dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(linear(zeros({2, 3}, f64()), zeros({4, 5}, f64())),
                       doctest::Contains("linear: input [2, 3] has 3 features but weight [4, 5] expects 5"), Error);
}

TEST_CASE("linear = x @ w^T + b by hand") {
  RefScope ref;
  Tensor x = leaf({1, 2, 3, 4}, {2, 2});
  Tensor w = leaf({1, 0, 1, 1, 2, -1}, {3, 2});
  Tensor b = leaf({0.5, -0.5, 1});
  Tensor y = linear(x, w, b);
  check_close(y, {1.5, 2.5, 1, 3.5, 6.5, 3});
  y.sum().backward();
  check_close(x.grad(), {4, 0, 4, 0});        // column sums of w
  check_close(w.grad(), {4, 6, 4, 6, 4, 6});  // column sums of x per output
  check_close(b.grad(), {2, 2, 2});
}

TEST_CASE("cat values, gradients and errors") {
  RefScope ref;
  Tensor a = leaf({1, 2, 3, 4}, {2, 2});
  Tensor b = leaf({5, 6}, {2, 1});
  Tensor c = cat({a, b}, 1);
  CHECK(c.sizes() == Shape{2, 3});
  check_close(c, {1, 2, 5, 3, 4, 6});
  (c * tensor({1, 2, 3, 4, 5, 6}, {2, 3}, f64())).sum().backward();
  check_close(a.grad(), {1, 2, 4, 5});
  check_close(b.grad(), {3, 6});
  CHECK_THROWS_WITH_AS(cat({a, b}, 0), doctest::Contains("cat: tensor 1 of shape [2, 1] does not match"), Error);
  CHECK_THROWS_WITH_AS(cat({}, 0), doctest::Contains("cat: expected a non-empty list"), Error);
}
