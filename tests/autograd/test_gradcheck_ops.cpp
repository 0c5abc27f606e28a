// Finite-difference gradient checks (float64, ref backend) for every differentiable op in autograd/ops.h, the
// Tensor operators and every view. Inputs are seeded random values kept away from kinks (relu, abs, clamp, max)
// so the central difference is valid; conv2d, batch_norm and pooling have their own option sweeps elsewhere.
#include "test_ops_util.h"

using namespace minidl;
using namespace minidl::test;

TEST_CASE("gradcheck: broadcasting add, sub, mul, div") {
  Tensor a = rand_leaf({2, 3, 4}, 1);
  Tensor b = rand_leaf({3, 1}, 2);
  Tensor pos = rand_leaf({4}, 3, 0.5, 2.0);  // divisor away from 0
  check_grad([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b});
  check_grad([](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }, {a, b});
  check_grad([](const std::vector<Tensor>& in) { return mul(in[0], in[1]); }, {a, b});
  check_grad([](const std::vector<Tensor>& in) { return div(in[0], in[1]); }, {a, pos});
  // A tensor multiplied by itself: both inputs of one node are the same leaf.
  check_grad([](const std::vector<Tensor>& in) { return in[0] * in[0]; }, {b});
}

TEST_CASE("gradcheck: operators with scalars on either side") {
  Tensor a = rand_leaf({3, 2}, 4, 0.5, 2.0);
  check_grad([](const std::vector<Tensor>& in) { return in[0] + 2.5; }, {a});
  check_grad([](const std::vector<Tensor>& in) { return in[0] - 2.5; }, {a});
  check_grad([](const std::vector<Tensor>& in) { return in[0] * -1.5; }, {a});
  check_grad([](const std::vector<Tensor>& in) { return in[0] / 3.0; }, {a});
  check_grad([](const std::vector<Tensor>& in) { return 2.5 + in[0]; }, {a});
  check_grad([](const std::vector<Tensor>& in) { return 2.5 - in[0]; }, {a});
  check_grad([](const std::vector<Tensor>& in) { return -1.5 * in[0]; }, {a});
  check_grad([](const std::vector<Tensor>& in) { return 3.0 / in[0]; }, {a});
  check_grad([](const std::vector<Tensor>& in) { return -in[0]; }, {a});
}

TEST_CASE("gradcheck: unary math") {
  Tensor x = rand_leaf({2, 5}, 5);
  Tensor pos = rand_leaf({2, 5}, 6, 0.2, 3.0);
  check_grad([](const std::vector<Tensor>& in) { return neg(in[0]); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return exp(in[0]); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return log(in[0]); }, {pos});
  check_grad([](const std::vector<Tensor>& in) { return sqrt(in[0]); }, {pos});
  check_grad([](const std::vector<Tensor>& in) { return abs(in[0]); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return sigmoid(in[0]); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return tanh(in[0]); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return clamp(in[0], -0.4, 0.3); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return pow(in[0], 3.0); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return pow(in[0], -1.5); }, {pos});
  check_grad([](const std::vector<Tensor>& in) { return pow(in[0], 0.0); }, {x});
  // Member forms go through the same Functions.
  check_grad([](const std::vector<Tensor>& in) { return in[0].exp().tanh().sigmoid(); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].log().sqrt().pow(2.0); },
             {rand_leaf({2, 5}, 60, 1.2, 3.0)});  // log > 0 so that sqrt is defined
  check_grad([](const std::vector<Tensor>& in) { return in[0].abs().relu().clamp(0.1, 0.5); }, {x});
}

TEST_CASE("gradcheck: pow with a tensor exponent, broadcast") {
  Tensor base = rand_leaf({2, 3}, 7, 0.5, 2.0);
  Tensor e = rand_leaf({3}, 8, -1.0, 2.0);
  check_grad([](const std::vector<Tensor>& in) { return pow(in[0], in[1]); }, {base, e});
}

TEST_CASE("gradcheck: sum, mean, max over dims with and without keepdim") {
  Tensor x = rand_leaf({2, 3, 4}, 9);
  for (bool keep : {false, true}) {
    CAPTURE(keep);
    check_grad([keep](const std::vector<Tensor>& in) { return sum(in[0], {1}, keep); }, {x});
    check_grad([keep](const std::vector<Tensor>& in) { return sum(in[0], {0, 2}, keep); }, {x});
    check_grad([keep](const std::vector<Tensor>& in) { return mean(in[0], {-1}, keep); }, {x});
    check_grad([keep](const std::vector<Tensor>& in) { return mean(in[0], {2, 0}, keep); }, {x});
    check_grad([keep](const std::vector<Tensor>& in) { return max(in[0], {1}, keep); }, {x});
    check_grad([keep](const std::vector<Tensor>& in) { return max(in[0], {0, 2}, keep); }, {x});
  }
  check_grad([](const std::vector<Tensor>& in) { return in[0].sum(); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].mean(); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].max(); }, {x});
  // A 0-dim input reduces over nothing.
  Tensor s = scalar_tensor(0.7, f64().requires_grad());
  check_grad([](const std::vector<Tensor>& in) { return in[0].sum() * in[0].mean({0}, true) + in[0].max(); }, {s});
}

TEST_CASE("gradcheck: matmul 2-D, batched, and batched @ 2-D, linear with and without bias") {
  check_grad([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
             {rand_leaf({3, 4}, 10), rand_leaf({4, 2}, 11)});
  check_grad([](const std::vector<Tensor>& in) { return in[0].matmul(in[1]); },
             {rand_leaf({2, 3, 4}, 12), rand_leaf({2, 4, 5}, 13)});
  check_grad([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
             {rand_leaf({2, 3, 4}, 14), rand_leaf({4, 2}, 15)});
  // Transposed (non-contiguous) operands.
  check_grad([](const std::vector<Tensor>& in) { return matmul(in[0].t(), in[1].t()); },
             {rand_leaf({4, 3}, 16), rand_leaf({2, 4}, 17)});
  Tensor x = rand_leaf({5, 3}, 18), w = rand_leaf({4, 3}, 19), b = rand_leaf({4}, 20);
  check_grad([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b});
  check_grad([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {x, w});
  check_grad([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
             {rand_leaf({2, 2, 3}, 21), w, b});
  check_grad([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {rand_leaf({3}, 22), w, b});
}

TEST_CASE("gradcheck: view, reshape, flatten, squeeze, unsqueeze") {
  Tensor x = rand_leaf({2, 3, 4}, 22);
  check_grad([](const std::vector<Tensor>& in) { return in[0].view({6, 4}); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].view({-1}); }, {x});
  // reshape of a non-contiguous tensor copies (through contiguous()).
  check_grad([](const std::vector<Tensor>& in) { return in[0].transpose(0, 2).reshape({4, 6}); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].flatten(1); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].unsqueeze(1).squeeze(1).unsqueeze(-1); }, {x});
}

TEST_CASE("gradcheck: permute, transpose, narrow, slice with step, select, expand") {
  Tensor x = rand_leaf({3, 4, 5}, 23);
  check_grad([](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].transpose(0, 1); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].narrow(2, 1, 3); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].slice(1, 0, 4, 2); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].slice(2, -4, 5, 3); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].select(0, -1); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return in[0].select(1, 2).select(1, 0); }, {x});
  Tensor y = rand_leaf({3, 1}, 24);
  check_grad([](const std::vector<Tensor>& in) { return in[0].expand({2, 3, 4}); }, {y});
  check_grad([](const std::vector<Tensor>& in) { return in[0].expand({-1, 5}); }, {y});
}

TEST_CASE("gradcheck: cat along a middle dim and along dim 0") {
  Tensor a = rand_leaf({2, 3, 2}, 25), b = rand_leaf({2, 1, 2}, 26), c = rand_leaf({2, 2, 2}, 27);
  check_grad([](const std::vector<Tensor>& in) { return cat(in, 1); }, {a, b, c});
  check_grad(
      [](const std::vector<Tensor>& in) {
        return cat({in[0], in[0].transpose(1, 2)}, 0);
      },
      {rand_leaf({2, 2, 2}, 28)});
}

TEST_CASE("gradcheck: log_softmax over the last dim and over dim 0") {
  Tensor x = rand_leaf({3, 5}, 29, -2.0, 2.0);
  check_grad([](const std::vector<Tensor>& in) { return log_softmax(in[0]); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return log_softmax(in[0], 0); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); }, {rand_leaf({2, 2, 3}, 30)});
}

TEST_CASE("gradcheck: nll_loss, cross_entropy with and without label smoothing, mse_loss") {
  Tensor logits = rand_leaf({4, 3}, 31, -2.0, 2.0);
  Tensor target = from_vector(std::vector<int64_t>{2, 0, 1, 2}, {4}, TensorOptions().dtype(DType::i64));
  for (double s : {0.0, 0.2}) {
    CAPTURE(s);
    check_grad([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], target, s); }, {logits});
    check_grad([&](const std::vector<Tensor>& in) { return nll_loss(log_softmax(in[0]), target, s); }, {logits});
    check_grad([&](const std::vector<Tensor>& in) { return nll_loss(in[0], target, s); }, {logits});
  }
  check_grad([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); },
             {rand_leaf({2, 3}, 32), rand_leaf({2, 3}, 33)});
}

TEST_CASE("gradcheck: dropout with a fixed mask (same seed for every evaluation)") {
  Tensor x = rand_leaf({4, 5}, 34);
  check_grad(
      [](const std::vector<Tensor>& in) {
        manual_seed(99);  // every evaluation draws the same mask
        return dropout(in[0], 0.4, true);
      },
      {x});
}

TEST_CASE("gradcheck: pooling") {
  Tensor x = rand_leaf({2, 2, 5, 5}, 35);
  Pool2dParams p;
  p.kernel_h = p.kernel_w = 3;
  p.stride_h = p.stride_w = 2;
  p.pad_h = p.pad_w = 1;
  check_grad([p](const std::vector<Tensor>& in) { return max_pool2d(in[0], p); }, {x});
  check_grad([p](const std::vector<Tensor>& in) { return avg_pool2d(in[0], p); }, {x});
  Pool2dParams q = p;
  q.count_include_pad = false;
  check_grad([q](const std::vector<Tensor>& in) { return avg_pool2d(in[0], q); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], 3, 2); }, {x});
  check_grad([](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], 1, 1); }, {x});
}

TEST_CASE("gradcheck: conv2d and batch_norm (basic, sweeps in test_ops_conv / test_ops_batch_norm)") {
  Tensor x = rand_leaf({2, 3, 5, 5}, 36), w = rand_leaf({4, 3, 3, 3}, 37), b = rand_leaf({4}, 38);
  check_grad([](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2]); }, {x, w, b});
  Tensor bx = rand_leaf({3, 2, 2, 2}, 39), gamma = rand_leaf({2}, 40, 0.5, 1.5), beta = rand_leaf({2}, 41);
  Tensor rm = zeros({2}, f64()), rv = ones({2}, f64());
  check_grad([&](const std::vector<Tensor>& in) { return batch_norm(in[0], rm, rv, in[1], in[2], true); },
             {bx, gamma, beta});
  check_grad([&](const std::vector<Tensor>& in) { return batch_norm(in[0], rm, rv, in[1], in[2], false); },
             {bx, gamma, beta});
}

TEST_CASE("gradcheck: batch_norm_relu (fused) in training and eval") {
  // beta shifted so some outputs sit well below zero (the ReLU kink away from every sample point)
  Tensor bx = rand_leaf({3, 2, 3, 2}, 42), gamma = rand_leaf({2}, 43, 0.5, 1.5), beta = rand_leaf({2}, 44, -0.3, 0.3);
  Tensor rm = zeros({2}, f64()), rv = ones({2}, f64());
  check_grad([&](const std::vector<Tensor>& in) { return batch_norm_relu(in[0], rm, rv, in[1], in[2], true); },
             {bx, gamma, beta});
  check_grad([&](const std::vector<Tensor>& in) { return batch_norm_relu(in[0], rm, rv, in[1], in[2], false); },
             {bx, gamma, beta});
}

TEST_CASE("gradcheck: batch_norm_add_relu (fused) in training and eval") {
  // the residual spread over [-1, 1] puts a share of the sums below zero (the ReLU kink away from every sample)
  Tensor bx = rand_leaf({3, 2, 3, 2}, 45), res = rand_leaf({3, 2, 3, 2}, 46);
  Tensor gamma = rand_leaf({2}, 47, 0.5, 1.5), beta = rand_leaf({2}, 48, -0.3, 0.3);
  Tensor rm = zeros({2}, f64()), rv = ones({2}, f64());
  for (bool training : {true, false}) {
    INFO("training " << training);
    check_grad(
        [&](const std::vector<Tensor>& in) {
          return batch_norm_add_relu(in[0], in[1], rm, rv, in[2], in[3], training);
        },
        {bx, res, gamma, beta});
    // only the residual (or only x) needs a gradient: the others are left undefined
    const Tensor x_const = bx.detach(), res_const = res.detach();
    check_grad(
        [&](const std::vector<Tensor>& in) {
          return batch_norm_add_relu(x_const, in[0], rm, rv, gamma.detach(), beta.detach(), training);
        },
        {res});
    check_grad(
        [&](const std::vector<Tensor>& in) { return batch_norm_add_relu(in[0], res_const, rm, rv, {}, {}, training); },
        {bx});
    // (N, C) input, no affine parameters
    Tensor x2 = rand_leaf({5, 3}, 49), r2 = rand_leaf({5, 3}, 50);
    Tensor rm3 = zeros({3}, f64()), rv3 = ones({3}, f64());
    check_grad(
        [&](const std::vector<Tensor>& in) { return batch_norm_add_relu(in[0], in[1], rm3, rv3, {}, {}, training); },
        {x2, r2});
  }
}
