// Pooling against hand-computed values: max pool with padding and its gradient routed to the argmax, average
// pool with and without counting the padding, adaptive average pooling with uneven cells; plus argument errors.
#include "test_ops_util.h"

using namespace minidl;
using namespace minidl::test;

namespace {
Pool2dParams pool(int64_t k, int64_t s, int64_t pad, bool count_pad = true) {
  Pool2dParams p;
  p.kernel_h = p.kernel_w = k;
  p.stride_h = p.stride_w = s;
  p.pad_h = p.pad_w = pad;
  p.count_include_pad = count_pad;
  return p;
}
}  // namespace

TEST_CASE("max_pool2d values and gradient to the argmax") {
  RefScope ref;
  // [[1, 5, 2, 0], [3, 4, 8, 6], [7, 0, 1, 2], [9, 3, 4, 5]]
  Tensor x = leaf({1, 5, 2, 0, 3, 4, 8, 6, 7, 0, 1, 2, 9, 3, 4, 5}, {1, 1, 4, 4});
  Tensor y = max_pool2d(x, pool(2, 2, 0));
  check_close(y, {5, 8, 9, 5});
  (y * tensor({1, 2, 3, 4}, {1, 1, 2, 2}, f64())).sum().backward();
  check_close(x.grad(), {0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0, 4});
  // Padding 1, kernel 3, stride 2: windows centred on (0,0), (0,2), (2,0), (2,2).
  check_close(max_pool2d(x.detach(), pool(3, 2, 1)), {5, 8, 9, 8});
}

TEST_CASE("avg_pool2d with and without counting the padding") {
  RefScope ref;
  Tensor x = leaf({1, 2, 3, 4}, {1, 1, 2, 2});
  check_close(avg_pool2d(x, pool(2, 1, 0)), {2.5});
  // Kernel 2, stride 2, padding 1 on a 2x2 input: each window holds one real element.
  check_close(avg_pool2d(x, pool(2, 2, 1, true)), {0.25, 0.5, 0.75, 1.0});
  check_close(avg_pool2d(x, pool(2, 2, 1, false)), {1, 2, 3, 4});
  avg_pool2d(x, pool(2, 1, 0)).sum().backward();
  check_close(x.grad(), {0.25, 0.25, 0.25, 0.25});
}

TEST_CASE("adaptive_avg_pool2d: PyTorch's uneven cells") {
  RefScope ref;
  // 1x5 rows pooled to 2 cells: [floor(0*5/2), ceil(1*5/2)) = [0, 3) and [2, 5).
  Tensor x = leaf({1, 2, 3, 4, 5}, {1, 1, 1, 5});
  Tensor y = adaptive_avg_pool2d(x, 1, 2);
  check_close(y, {2, 4});
  y.sum().backward();
  check_close(x.grad(), {1.0 / 3, 1.0 / 3, 2.0 / 3, 1.0 / 3, 1.0 / 3});
  // Global pooling is the mean over H and W.
  Tensor z = arange(0.0, 12.0, 1.0, f64()).view({1, 3, 2, 2});
  check_close(adaptive_avg_pool2d(z, 1, 1), {1.5, 5.5, 9.5});
}

TEST_CASE("pooling argument errors") {
  RefScope ref;
  Tensor x = zeros({1, 1, 4, 4}, f64());
  CHECK_THROWS_WITH_AS(max_pool2d(zeros({4, 4}, f64()), pool(2, 2, 0)),
                       doctest::Contains("max_pool2d: input [4, 4] must be 4-D"), Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(x, pool(2, 2, 2)), doctest::Contains("at most half the kernel"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(x, pool(5, 1, 0)), doctest::Contains("max_pool2d: input [1, 1, 4, 4] is too small"),
                       Error);
  CHECK_THROWS_WITH_AS(adaptive_avg_pool2d(x, 0, 1), doctest::Contains("output size 0x1 must be positive"), Error);
}
