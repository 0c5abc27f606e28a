// Ref pooling by hand: max pool values and h*W+w indices (ties, padding, overlapping windows) and its scatter
// backward; average pool with and without count_include_pad and its backward; adaptive average pool with
// PyTorch's floor/ceil bins (overlapping for 5 -> 3) and its backward; backwards also by the adjoint identity.
#include "ref_test_util.h"

using namespace reftest;
using minidl::Pool2dParams;

namespace {

Pool2dParams pool(int64_t k, int64_t s, int64_t pad, bool include_pad = true) {
  Pool2dParams p;
  p.kernel_h = p.kernel_w = k;
  p.stride_h = p.stride_w = s;
  p.pad_h = p.pad_w = pad;
  p.count_include_pad = include_pad;
  return p;
}

const std::vector<double> kX4 = {1, 5, 2, 0,  //
                                 3, 4, 8, 8,  //
                                 0, 9, 1, 1,  //
                                 2, 2, 7, 6};

}  // namespace

TEST_CASE("ref max pool 2x2 stride 2: values and first-max indices") {
  Tensor x = make(kX4, {1, 1, 4, 4});
  Tensor y = out({1, 1, 2, 2});
  Tensor idx = minidl::empty({1, 1, 2, 2}, TensorOptions().dtype(DType::i64));
  ref().max_pool2d_forward(y, idx, x, pool(2, 2, 0));
  check_close(y, {5, 8, 9, 7});
  check_close(idx, {1, 6, 9, 14}, 0);  // the 8s tie at (1,2) and (1,3): the first wins
  Tensor gx = out({1, 1, 4, 4});
  ref().max_pool2d_backward(gx, make({1, 2, 3, 4}, {1, 1, 2, 2}), idx, pool(2, 2, 0));
  check_close(gx, {0, 1, 0, 0, 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 4, 0});
}

TEST_CASE("ref max pool 3x3 stride 2 pad 1: overlapping windows share a maximum") {
  // two channels: the second is the first negated, so its maxima move
  std::vector<double> xv = kX4;
  for (double v : kX4) xv.push_back(-v);
  Tensor x = make(xv, {1, 2, 4, 4}, DType::f32);
  Tensor y = out({1, 2, 2, 2}, DType::f32);
  Tensor idx = minidl::empty({1, 2, 2, 2}, TensorOptions().dtype(DType::i64));
  ref().max_pool2d_forward(y, idx, x, pool(3, 2, 1));
  // ch 0 windows: rows/cols {0,1}x{0,1}, {0,1}x{1,2,3}, {1,2,3}x{0,1}, {1,2,3}x{1,2,3}
  // ch 1 maxima of -x: the minima of x: 1 at (0,0); 0 at (0,3); 0 at (2,0); 1 at (2,2)
  check_close(y, {5, 8, 9, 9, -1, 0, 0, -1}, 0);
  check_close(idx, {1, 6, 9, 9, 0, 3, 8, 10}, 0);
  Tensor gx = out({1, 2, 4, 4}, DType::f32);
  ref().max_pool2d_backward(gx, make({1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 2, 2}, DType::f32), idx, pool(3, 2, 1));
  std::vector<double> want(32, 0.0);
  want[1] = 1;
  want[6] = 2;
  want[9] = 3 + 4;  // picked by two windows: accumulated
  want[16 + 0] = 5;
  want[16 + 3] = 6;
  want[16 + 8] = 7;
  want[16 + 10] = 8;
  check_close(gx, want, 0);
  Tensor too_much_pad = out({1, 2, 3, 3}, DType::f32);
  CHECK_THROWS_AS(ref().max_pool2d_forward(too_much_pad, idx, x, pool(2, 2, 2)), minidl::Error);
}

TEST_CASE("ref avg pool with and without count_include_pad, and its backward") {
  Tensor x = make({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor y = out({1, 1, 2, 2});
  ref().avg_pool2d_forward(y, x, pool(3, 2, 1, true));
  check_close(y, {12.0 / 9, 16.0 / 9, 24.0 / 9, 28.0 / 9});
  ref().avg_pool2d_forward(y, x, pool(3, 2, 1, false));
  check_close(y, {3, 4, 6, 7});
  // backward with gy = 1: each input gets (number of windows holding it) / divisor
  Tensor gx = out({1, 1, 3, 3});
  Tensor ones = make({1, 1, 1, 1}, {1, 1, 2, 2});
  ref().avg_pool2d_backward(gx, ones, pool(3, 2, 1, true));
  check_close(gx, {1.0 / 9, 2.0 / 9, 1.0 / 9, 2.0 / 9, 4.0 / 9, 2.0 / 9, 1.0 / 9, 2.0 / 9, 1.0 / 9});
  ref().avg_pool2d_backward(gx, ones, pool(3, 2, 1, false));
  check_close(gx, {0.25, 0.5, 0.25, 0.5, 1, 0.5, 0.25, 0.5, 0.25});
  // no padding, stride 1, 2 channels: adjoint identity <avg(x), gy> = <x, gx> on pseudo-random data
  const auto xv = pseudo(2 * 5 * 6, 5), gv = pseudo(2 * 4 * 5, 6);
  Tensor x2 = make(xv, {1, 2, 5, 6});
  Tensor y2 = out({1, 2, 4, 5});
  ref().avg_pool2d_forward(y2, x2, pool(2, 1, 0));
  Tensor gx2 = out({1, 2, 5, 6});
  ref().avg_pool2d_backward(gx2, make(gv, {1, 2, 4, 5}), pool(2, 1, 0));
  CHECK(dot(vals(y2), gv) == doctest::Approx(dot(xv, vals(gx2))).epsilon(1e-12));
  CHECK(vals(y2)[0] == doctest::Approx((xv[0] + xv[1] + xv[6] + xv[7]) / 4).epsilon(1e-12));
}

TEST_CASE("ref adaptive avg pool uses PyTorch's floor/ceil bins") {
  // x (1, 1, 5, 4) holds 4r + c. Rows 5 -> 3 bins: [0,2), [1,4), [3,5) (overlapping); cols 4 -> 2: [0,2), [2,4)
  std::vector<double> xv;
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 4; ++c) xv.push_back(4 * r + c);
  Tensor x = make(xv, {1, 1, 5, 4});
  Tensor y = out({1, 1, 3, 2});
  ref().adaptive_avg_pool2d_forward(y, x);
  // mean(4r + c) = 4 mean(r) + mean(c): row means 0.5, 2, 3.5; col means 0.5, 2.5
  check_close(y, {2.5, 4.5, 8.5, 10.5, 14.5, 16.5});
  Tensor gx = out({1, 1, 5, 4});
  ref().adaptive_avg_pool2d_backward(gx, make(std::vector<double>(6, 1.0), {1, 1, 3, 2}));
  const double a = 0.25, b = 1.0 / 6;  // 1 / (2x2 cell), 1 / (3x2 cell)
  const std::vector<double> row_w = {a, a + b, b, b + a, a};
  std::vector<double> want;
  for (double w : row_w)
    for (int c = 0; c < 4; ++c) want.push_back(w);
  check_close(gx, want);
  // global pooling (output 1x1) is the plane mean, per channel
  Tensor y1 = out({1, 1, 1, 1});
  ref().adaptive_avg_pool2d_forward(y1, x);
  check_close(y1, {9.5});
  // an upsampling adaptive pool (2 -> 3): bins [0,1), [0,2), [1,2)
  Tensor small = make({1, 3}, {1, 1, 1, 2});
  Tensor up = out({1, 1, 1, 3});
  ref().adaptive_avg_pool2d_forward(up, small);
  check_close(up, {1, 2, 3});
}
