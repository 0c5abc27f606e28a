// conv2d: hand-computed outputs for stride/padding/groups, a gradcheck sweep over combinations of stride,
// padding, dilation, groups and bias, and the shape errors (channel mismatch naming both shapes and groups).
#include "test_ops_util.h"
#include "test_skip.h"

using namespace minidl;
using namespace minidl::test;

namespace {
Conv2dParams params(int64_t stride, int64_t pad, int64_t dilation, int64_t groups) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.dilation_h = p.dilation_w = dilation;
  p.groups = groups;
  return p;
}
}  // namespace

TEST_CASE("conv2d forward by hand: plain, stride+padding, groups, bias") {
  RefScope ref;
  Tensor x = arange(0.0, 9.0, 1.0, f64()).view({1, 1, 3, 3});  // [[0,1,2],[3,4,5],[6,7,8]]
  Tensor w = ones({1, 1, 2, 2}, f64());
  check_close(conv2d(x, w), {8, 12, 20, 24});
  // Padding 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1).
  check_close(conv2d(x, w, {}, params(2, 1, 1, 1)), {0, 3, 9, 24});
  // Dilation 2 with a 2x2 kernel touches the four corners.
  check_close(conv2d(x, w, {}, params(1, 0, 2, 1)), {0 + 2 + 6 + 8});
  // Groups 2: each output channel sees only its own input channel; bias added per channel.
  Tensor x2 = tensor({1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2}, f64());
  Tensor w2 = tensor({2, 3}, {2, 1, 1, 1}, f64());
  Tensor b2 = tensor({0.5, -1}, {2}, f64());
  check_close(conv2d(x2, w2, b2, params(1, 0, 1, 2)), {2.5, 4.5, 6.5, 8.5, 29, 59, 89, 119});
}

TEST_CASE("conv2d gradients by hand: 1x1 kernel") {
  RefScope ref;
  Tensor x = leaf({1, 2, 3, 4}, {1, 1, 2, 2});
  Tensor w = leaf({3}, {1, 1, 1, 1});
  Tensor b = leaf({1}, {1});
  conv2d(x, w, b).sum().backward();
  check_close(x.grad(), {3, 3, 3, 3});
  check_close(w.grad(), {10});
  check_close(b.grad(), {4});
}

TEST_CASE("conv2d gradcheck over stride, padding, dilation, groups and bias") {
  struct Case {
    int64_t stride, pad, dilation, groups;
    bool bias;
  };
  const Case cases[] = {
      {1, 0, 1, 1, true}, {2, 1, 1, 1, false}, {1, 2, 2, 1, true},
      {2, 1, 1, 2, true}, {1, 1, 2, 2, false}, {1, 0, 1, 4, true},  // depthwise
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    CAPTURE(c.stride);
    CAPTURE(c.pad);
    CAPTURE(c.dilation);
    CAPTURE(c.groups);
    CAPTURE(c.bias);
    const Conv2dParams p = params(c.stride, c.pad, c.dilation, c.groups);
    Tensor x = rand_leaf({2, 4, 5, 5}, seed++);
    Tensor w = rand_leaf({4, 4 / c.groups, 3, 3}, seed++);
    Tensor b = c.bias ? rand_leaf({4}, seed++) : Tensor();
    check_grad([p](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], p); }, {x, w, b});
  }
  // Rectangular kernel with unequal strides and paddings.
  Conv2dParams p;
  p.stride_h = 1;
  p.stride_w = 2;
  p.pad_h = 0;
  p.pad_w = 1;
  check_grad([p](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], p); },
             {rand_leaf({1, 2, 4, 5}, 120), rand_leaf({3, 2, 2, 3}, 121), rand_leaf({3}, 122)});
  // Gradient w.r.t. the bias alone (weight frozen).
  Tensor wf = rand_leaf({3, 2, 3, 3}, 123).detach();
  check_grad([wf](const std::vector<Tensor>& in) { return conv2d(in[0], wf, in[1]); },
             {rand_leaf({1, 2, 4, 4}, 124).detach(), rand_leaf({3}, 125)});
}

TEST_CASE("conv2d errors name both shapes") {
  RefScope ref;
  Tensor x = zeros({1, 3, 8, 8}, f64());
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({16, 4, 3, 3}, f64())),
                       "conv2d: input [1, 3, 8, 8] has 3 channels but weight [16, 4, 3, 3] expects 4 (groups 1)",
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({16, 2, 3, 3}, f64()), {}, params(1, 0, 1, 2)),
                       "conv2d: input [1, 3, 8, 8] has 3 channels but weight [16, 2, 3, 3] expects 4 (groups 2)",
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(zeros({3, 8, 8}, f64()), zeros({16, 3, 3, 3}, f64())),
                       doctest::Contains("conv2d: input [3, 8, 8] must be 4-D"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({16, 3, 9, 9}, f64())),
                       doctest::Contains("conv2d: input [1, 3, 8, 8] with padding 0x0 is too small for weight "
                                         "[16, 3, 9, 9]"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({16, 3, 3, 3}, f64()), zeros({8}, f64())),
                       doctest::Contains("conv2d: bias [8] does not match weight [16, 3, 3, 3]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, zeros({16, 3, 3, 3})), doctest::Contains("conv2d: dtype mismatch"), Error);
}

TEST_CASE("on a backend that prefers channels-last, activations and their gradients stay channels-last") {
  using namespace minidl;
  const auto names = available_backends();
  if (std::find(names.begin(), names.end(), "cpu") == names.end()) {
    MINIDL_SKIP("the cpu backend is not built");
  }
  const std::string prev = cpu_backend_name();
  set_cpu_backend("cpu");
  manual_seed(11);
  Tensor x = randn({2, 3, 6, 6}).set_requires_grad();  // the network input: plain NCHW
  Tensor w1 = randn({4, 3, 3, 3}).set_requires_grad(), w2 = randn({4, 4, 3, 3}).set_requires_grad();
  Tensor bw = ones({4}).set_requires_grad(), bb = zeros({4}).set_requires_grad();
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  Tensor y = conv2d(x, w1, {}, p);
  Tensor z = relu(batch_norm(y, {}, {}, bw, bb, true));
  Tensor out = z + conv2d(z, w2, {}, p);
  CHECK(y.is_channels_last());
  CHECK_FALSE(y.is_contiguous());
  CHECK(z.is_channels_last());
  CHECK(out.is_channels_last());
  // gradients flow back through the channels-last graph to the NCHW input and the plain weights
  sum(out * out).backward();
  CHECK(x.grad().sizes() == x.sizes());
  CHECK(w1.grad().is_contiguous());
  // and equal the reference backend's (plain NCHW everywhere)
  const Tensor gx = x.grad().contiguous(), gw = w1.grad().contiguous();
  set_cpu_backend("ref");
  Tensor x2 = x.detach().contiguous().set_requires_grad(), w1b = w1.detach().contiguous().set_requires_grad();
  Tensor y2 = conv2d(x2, w1b, {}, p);
  CHECK(y2.is_contiguous());
  Tensor z2 = relu(batch_norm(y2, {}, {}, bw, bb, true));
  sum((z2 + conv2d(z2, w2, {}, p)) * (z2 + conv2d(z2, w2, {}, p))).backward();
  set_cpu_backend(prev);
  const auto a = gx.to_vector<float>(), b = x2.grad().to_vector<float>();
  const auto c = gw.to_vector<float>(), d = w1b.grad().to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-3).scale(1.0));
  for (size_t i = 0; i < c.size(); ++i) CHECK(c[i] == doctest::Approx(d[i]).epsilon(1e-3).scale(1.0));
}
