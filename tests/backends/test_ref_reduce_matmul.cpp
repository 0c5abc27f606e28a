// Ref reductions (sum/mean/max/min over dim sets, from permuted views, NaN, float32 accumulation) and matmul
// (2-D, every trans flag combination, batched, stride-0 batch) against hand-computed values.
#include <cmath>
#include <limits>

#include "ref_test_util.h"

using namespace reftest;
using minidl::ReduceOp;

namespace {

Tensor reduce(ReduceOp op, const Tensor& in, const Shape& out_shape, std::vector<int64_t> dims) {
  Tensor o = out(out_shape, in.dtype());
  ref().reduce(op, o, in, dims);
  return o;
}

}  // namespace

TEST_CASE("ref reduce over each dim set of a (2, 3) tensor") {
  Tensor a = make({1, -2, 3, 4, 5, -6}, {2, 3});
  check_close(reduce(ReduceOp::Sum, a, {1, 3}, {0}), {5, 3, -3});
  check_close(reduce(ReduceOp::Sum, a, {2, 1}, {1}), {2, 3});
  check_close(reduce(ReduceOp::Sum, a, {1, 1}, {0, 1}), {5});
  check_close(reduce(ReduceOp::Mean, a, {2, 1}, {1}), {2.0 / 3, 1});
  check_close(reduce(ReduceOp::Mean, a, {1, 1}, {0, 1}), {5.0 / 6});
  check_close(reduce(ReduceOp::Max, a, {1, 3}, {0}), {4, 5, 3});
  check_close(reduce(ReduceOp::Max, a, {2, 1}, {1}), {3, 5});
  check_close(reduce(ReduceOp::Min, a, {1, 3}, {0}), {1, -2, -6});
  check_close(reduce(ReduceOp::Min, a, {1, 1}, {0, 1}), {-6});
  check_close(reduce(ReduceOp::Sum, a, {2, 3}, {}), {1, -2, 3, 4, 5, -6});  // no dims: a copy
}

TEST_CASE("ref reduce reads a permuted 3-d view and reduces its middle and outer dims") {
  // storage (2, 3, 4) holding 0..23; view p (4, 3, 2) with p[i][j][k] = 12k + 4j + i
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[static_cast<size_t>(i)] = i;
  Tensor p = make(v, {2, 3, 4}).as_strided({4, 3, 2}, {1, 4, 12}, 0);
  // sum over j: 12k*3 + 4*(0+1+2) + 3i = 36k + 12 + 3i, out (4, 1, 2)
  std::vector<double> want;
  for (int i = 0; i < 4; ++i)
    for (int k = 0; k < 2; ++k) want.push_back(36 * k + 12 + 3 * i);
  check_close(reduce(ReduceOp::Sum, p, {4, 1, 2}, {1}), want);
  // max over i and k: 12 + 4j + 3, out (1, 3, 1)
  check_close(reduce(ReduceOp::Max, p, {1, 3, 1}, {0, 2}), {15, 19, 23});
  // mean over i and k: (sum_i i)/4 + 12*(0+1)/2 + 4j = 1.5 + 6 + 4j
  check_close(reduce(ReduceOp::Mean, p, {1, 3, 1}, {0, 2}), {7.5, 11.5, 15.5});
}

TEST_CASE("ref reduce: NaN propagates through max, float32 sums accumulate in double, bad args throw") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a = make({1, nan, 3, 4}, {2, 2});
  check_close(reduce(ReduceOp::Max, a, {2, 1}, {1}), {nan, 4});
  check_close(reduce(ReduceOp::Min, a, {1, 2}, {0}), {1, nan});
  // 1 + 2^24 copies of 1 in float32: a float accumulator would stop at 2^24, double gets it exactly
  const int64_t n = (1 << 24) + 2;
  Tensor ones = minidl::ones({n}, f32());
  Tensor s = reduce(ReduceOp::Sum, ones, {1}, {0});
  CHECK(vals(s)[0] == static_cast<double>(static_cast<float>(n)));
  CHECK(vals(s)[0] > 16777216.0);
  Tensor o = out({2, 2});
  std::vector<int64_t> unsorted{1, 0};
  CHECK_THROWS_AS(ref().reduce(ReduceOp::Sum, o, a, unsorted), minidl::Error);
  std::vector<int64_t> d0{0};
  CHECK_THROWS_WITH_AS(ref().reduce(ReduceOp::Sum, o, a, d0), doctest::Contains("ref sum"), minidl::Error);
}

TEST_CASE("ref matmul 2-D with every transpose combination") {
  // A (2, 3) = [[1, 2, 3], [4, 5, 6]], B (3, 2) = [[7, 8], [9, 10], [11, 12]]
  // A @ B = [[58, 64], [139, 154]]
  const std::vector<double> want = {58, 64, 139, 154};
  Tensor A = make({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor At = make({1, 4, 2, 5, 3, 6}, {3, 2});  // A stored transposed
  Tensor B = make({7, 8, 9, 10, 11, 12}, {3, 2});
  Tensor Bt = make({7, 9, 11, 8, 10, 12}, {2, 3});  // B stored transposed
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      Tensor o = out({2, 2});
      ref().matmul(o, ta ? At : A, tb ? Bt : B, ta != 0, tb != 0);
      INFO("trans_a " << ta << " trans_b " << tb);
      check_close(o, want);
    }
  }
  // a transposed *view* (no copy) with trans_a gives the plain product back: op(A^T view) = A
  Tensor o = out({2, 2}, DType::f32);
  ref().matmul(o, make({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f32).as_strided({3, 2}, {1, 3}, 0),
               make({7, 8, 9, 10, 11, 12}, {3, 2}, DType::f32), true, false);
  check_close(o, want, 0);
  Tensor bad = out({2, 2});
  CHECK_THROWS_WITH_AS(ref().matmul(bad, A, A, false, false), doctest::Contains("inner dimensions"),
                       minidl::Error);
}

TEST_CASE("ref matmul batched (B, M, K) @ (B, K, N), also with a stride-0 batch") {
  // batch 0: [[1, 0], [0, 1]] @ X = X; batch 1: [[2, 0], [0, 3]] @ X scales rows
  Tensor a = make({1, 0, 0, 1, 2, 0, 0, 3}, {2, 2, 2});
  Tensor x = make({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor xb = x.as_strided({2, 2, 3}, {0, 3, 1}, 0);  // the same X for both batches
  Tensor o = out({2, 2, 3});
  ref().matmul(o, a, xb, false, false);
  check_close(o, {1, 2, 3, 4, 5, 6, 2, 4, 6, 12, 15, 18});
  // batched trans_b: (2, 2, 3) @ (2, 2, 3)^T -> (2, 2, 2): batch n = rows dot rows
  Tensor y = make({1, 2, 3, 4, 5, 6, 1, 0, 0, 0, 1, 0}, {2, 2, 3});
  Tensor o2 = out({2, 2, 2});
  ref().matmul(o2, y, y, false, true);
  check_close(o2, {14, 32, 32, 77, 1, 0, 0, 1});
  // batched trans_a: y^T y (3, 3) for batch 1 = diag(1, 1, 0)
  Tensor o3 = out({2, 3, 3});
  ref().matmul(o3, y, y, true, false);
  const auto v = vals(o3);
  check_close(std::vector<double>(v.begin() + 9, v.end()), {1, 0, 0, 0, 1, 0, 0, 0, 0});
  check_close(std::vector<double>(v.begin(), v.begin() + 3), {17, 22, 27});  // row 0 of [[1,4],[2,5],[3,6]] @ y0
}
