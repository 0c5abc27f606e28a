// The ops on the default CPU backend (cpu/oneDNN when built, float32) against the ref oracle (float64) on a small
// conv net and an elementwise/reduction chain: forward values and every input gradient. This exercises what the
// backends receive from the ops in practice: broadcast (stride-0) gradients, transposed operands, saved OpState.
#include "test_ops_util.h"

using namespace minidl;
using namespace minidl::test;

namespace {

struct RunResult {
  std::vector<double> out;
  std::vector<std::vector<double>> grads;
};

/// Runs fn on float copies of `inputs` (f32 on the default backend, or f64 on ref) and returns output + grads.
RunResult run(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
              bool on_ref) {
  std::unique_ptr<RefScope> scope;
  if (on_ref) scope = std::make_unique<RefScope>();
  const DType dt = on_ref ? DType::f64 : DType::f32;
  std::vector<Tensor> in;
  for (const Tensor& t : inputs) {
    Tensor c = t.detach().to(dt).contiguous();
    if (c.is_same(t) || c.storage() == t.storage()) c = c.clone();
    in.push_back(t.requires_grad() ? c.detach().set_requires_grad(true) : c.detach());
  }
  Tensor y = fn(in);
  RunResult r;
  r.out = y.to_vector<double>();
  y.backward(ones(y.sizes(), TensorOptions().dtype(dt)));
  for (const Tensor& t : in) {
    if (t.requires_grad()) r.grads.push_back(t.grad().to_vector<double>());
  }
  return r;
}

void compare(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
             double tol) {
  RunResult want = run(fn, inputs, true);
  RunResult got = run(fn, inputs, false);
  INFO("CPU backend: " << cpu_backend_name());
  check_close(got.out, want.out, tol);
  REQUIRE(got.grads.size() == want.grads.size());
  for (size_t i = 0; i < got.grads.size(); ++i) {
    INFO("gradient of input " << i);
    check_close(got.grads[i], want.grads[i], tol);
  }
}

Conv2dParams conv_params(int64_t stride, int64_t pad, int64_t dilation, int64_t groups) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  p.dilation_h = p.dilation_w = dilation;
  p.groups = groups;
  return p;
}

}  // namespace

TEST_CASE("default CPU backend matches ref: conv + batch_norm + relu + pools + linear + cross_entropy") {
  const std::vector<Tensor> inputs = {
      rand_leaf({2, 3, 8, 8}, 300), rand_leaf({4, 3, 3, 3}, 301), rand_leaf({4}, 302),    rand_leaf({4}, 303, 0.5, 1.5),
      rand_leaf({4}, 304),          rand_leaf({6, 2, 3, 3}, 305), rand_leaf({5, 6}, 306), rand_leaf({5}, 307)};
  auto net = [](const std::vector<Tensor>& in) {
    const Tensor target = from_vector(std::vector<int64_t>{1, 4}, {2}, TensorOptions().dtype(DType::i64));
    Tensor rm = zeros({4}, TensorOptions().dtype(in[0].dtype())), rv = ones({4}, TensorOptions().dtype(in[0].dtype()));
    Tensor h = conv2d(in[0], in[1], in[2], conv_params(1, 1, 1, 1));
    h = batch_norm(h, rm, rv, in[3], in[4], true).relu();
    Pool2dParams mp;
    mp.kernel_h = mp.kernel_w = 2;
    mp.stride_h = mp.stride_w = 2;
    h = max_pool2d(h, mp);                              // [2, 4, 4, 4]
    h = conv2d(h, in[5], {}, conv_params(1, 2, 2, 2));  // grouped, dilated: [2, 6, 4, 4]
    Pool2dParams ap;
    ap.kernel_h = ap.kernel_w = 3;
    ap.pad_h = ap.pad_w = 1;
    h = avg_pool2d(h, ap);
    h = adaptive_avg_pool2d(h, 1, 1).flatten(1);  // [2, 6]
    h = linear(h, in[6], in[7]);
    return cross_entropy(h, target, 0.1).reshape({1});
  };
  compare(net, inputs, 1e-4);
}

TEST_CASE("default CPU backend matches ref: broadcasting, reductions, matmul, views, log_softmax") {
  const std::vector<Tensor> inputs = {rand_leaf({3, 4}, 310), rand_leaf({4}, 311, 0.5, 1.5), rand_leaf({2, 4, 5}, 312),
                                      rand_leaf({3, 1}, 313)};
  auto chain = [](const std::vector<Tensor>& in) {
    Tensor a = (in[0] * in[1] + in[3]).sigmoid();                // [3, 4]
    Tensor b = matmul(a.unsqueeze(0).expand({2, 3, 4}), in[2]);  // [2, 3, 5]
    Tensor c = log_softmax(b.reshape({6, 5}));
    Tensor d = c.max({1}, true) + c.mean({0}).sum() -
               (in[0] / in[1]).abs().sqrt().sum({1}, true).t().tanh();  // [6, 1] op [1, 3]
    return cat({d.view({-1}), b.slice(2, 0, 5, 2).flatten(), in[0].exp().clamp(0.5, 2.0).view({-1})}, 0);
  };
  compare(chain, inputs, 1e-4);
}

TEST_CASE("default CPU backend matches ref: batch_norm eval on (N,C,H,W) and (N,C)") {
  const std::vector<Tensor> inputs = {rand_leaf({2, 3, 4, 4}, 320), rand_leaf({3}, 321, 0.5, 1.5), rand_leaf({3}, 322),
                                      rand_leaf({5, 3}, 323)};
  auto fn = [](const std::vector<Tensor>& in) {
    const TensorOptions o = TensorOptions().dtype(in[0].dtype());
    Tensor rm = tensor({0.1, -0.2, 0.3}, {3}, o), rv = tensor({0.5, 1.5, 2.0}, {3}, o);
    Tensor y4 = batch_norm(in[0], rm, rv, in[1], in[2], false);
    Tensor y2 = batch_norm(in[3], rm, rv, in[1], in[2], false);
    return cat({y4.flatten(), y2.flatten()}, 0);
  };
  compare(fn, inputs, 1e-4);
}
