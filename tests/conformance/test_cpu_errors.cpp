// Bad input to the cpu backend is a minidl::Error naming the primitive and the backend (never a crash, an
// abort or a silent wrong answer). Skipped when this minidl was built without the cpu backend.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>

#include "backends/backend.h"
#include "tensor/tensor.h"
#include "test_skip.h"

namespace {

using namespace minidl;

bool has_cpu() {
  const auto names = available_backends();
  return std::find(names.begin(), names.end(), "cpu") != names.end();
}

// Runs f; checks it throws minidl::Error whose message names `op` and "cpu".
void expect_error(const std::string& op, const std::function<void()>& f) {
  std::string msg;
  try {
    f();
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO("message: " << msg);
  CHECK_MESSAGE(!msg.empty(), op, ": expected a minidl::Error");
  CHECK_MESSAGE(msg.find(op) != std::string::npos, op, ": the message should name the op");
  CHECK_MESSAGE(msg.find("cpu") != std::string::npos, op, ": the message should name the backend");
}

}  // namespace

TEST_CASE("cpu backend: bad input is a clear error") {
  if (!has_cpu()) {
    MINIDL_SKIP("cpu backend not built");
  }
  Backend& be = backend_by_name("cpu");
  OpStatePtr st;
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  expect_error("conv2d_forward", [&] {
    Tensor y = empty({2, 4, 5, 5});  // should be (2, 4, 6, 6)
    be.conv2d_forward(y, zeros({2, 3, 6, 6}), zeros({4, 3, 3, 3}), Tensor(), p, st);
  });
  expect_error("conv2d_forward", [&] {
    Tensor y = empty({2, 4, 6, 6});
    Conv2dParams g = p;
    g.groups = 2;  // 3 input channels do not split into 2 groups
    be.conv2d_forward(y, zeros({2, 3, 6, 6}), zeros({4, 3, 3, 3}), Tensor(), g, st);
  });
  expect_error("conv2d_forward", [&] {  // f64 is not a oneDNN type here: refused, not silently done elsewhere
    Tensor y = empty({1, 1, 3, 3}, TensorOptions{}.dtype(DType::f64));
    be.conv2d_forward(y, zeros({1, 1, 3, 3}, TensorOptions{}.dtype(DType::f64)),
                      zeros({1, 1, 3, 3}, TensorOptions{}.dtype(DType::f64)), Tensor(), p, st);
  });
  expect_error("matmul", [&] {
    Tensor o = empty({3, 4});
    be.matmul(o, zeros({3, 5}), zeros({6, 4}), false, false);
  });
  expect_error("sum", [&] {
    Tensor o = empty({1, 3});
    const int64_t dims[] = {2};
    be.reduce(ReduceOp::Sum, o, zeros({2, 3}), dims);
  });
  expect_error("add", [&] {
    Tensor o = empty({2, 3});
    be.binary(BinaryOp::Add, o, zeros({2, 3}), zeros({3, 2}));
  });
  expect_error("nll_loss_forward", [&] {
    Tensor loss = empty({});
    be.nll_loss_forward(loss, zeros({2, 3}),
                        from_vector(std::vector<int64_t>{0, 3}, {2}, TensorOptions{}.dtype(DType::i64)), 0.0);
  });
  expect_error("max_pool2d_backward", [&] {
    Pool2dParams pp;
    pp.kernel_h = pp.kernel_w = pp.stride_h = pp.stride_w = 2;
    Tensor gx = empty({1, 1, 4, 4});
    Tensor idx = from_vector(std::vector<int64_t>{0, 1, 2, 99}, {1, 1, 2, 2}, TensorOptions{}.dtype(DType::i64));
    be.max_pool2d_backward(gx, zeros({1, 1, 2, 2}), idx, pp);
  });
  expect_error("batch_norm_forward_training", [&] {
    Tensor y = empty({2, 3}), m = empty({3}), s = empty({3});
    be.batch_norm_forward_training(y, m, s, zeros({2, 3}), zeros({4}), Tensor(), 1e-5, st);
  });
  expect_error("batch_norm_add_relu_forward_training", [&] {  // the residual must have x's shape
    Tensor y = empty({2, 3, 4, 4}), m = empty({3}), s = empty({3});
    be.batch_norm_add_relu_forward_training(y, m, s, zeros({2, 3, 4, 4}), zeros({2, 3, 4, 5}), Tensor(), Tensor(), 1e-5,
                                            st);
  });
  expect_error("batch_norm_add_relu_backward", [&] {
    Tensor gx = empty({2, 3, 4, 4}), gr = empty({2, 3, 4}), none;
    be.batch_norm_add_relu_backward(gx, gr, none, none, zeros({2, 3, 4, 4}), zeros({2, 3, 4, 4}), zeros({2, 3, 4, 4}),
                                    zeros({3}), ones({3}), Tensor(), 1e-5, st);
  });
  expect_error("avg_pool2d_forward", [&] {
    Pool2dParams pp;
    pp.kernel_h = pp.kernel_w = 2;
    pp.pad_h = 2;  // more than half the kernel
    Tensor y = empty({1, 1, 6, 3});
    be.avg_pool2d_forward(y, zeros({1, 1, 4, 4}), pp);
  });
  expect_error("avg_pool2d_forward", [&] {  // window taller than the (unpadded) input: PyTorch rejects it too
    Pool2dParams pp;
    pp.kernel_h = pp.kernel_w = pp.stride_h = pp.stride_w = 2;
    Tensor y = empty({1, 1, 1, 2});
    be.avg_pool2d_forward(y, zeros({1, 1, 1, 4}), pp);
  });
}
