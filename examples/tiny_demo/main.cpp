// tiny_demo: trains a two-layer MLP on a synthetic two-class problem (points inside vs outside a circle) with the
// tape autograd and plain SGD, and prints the loss falling. A smoke test of tensor + autograd + backend.
#include <cstdio>

#include <minidl.h>

using namespace minidl;

int main() {
  try {
    manual_seed(0);
    const int64_t n = 512, hidden = 32;
    // Inputs uniform in [-1, 1]^2; label 1 inside the circle of radius 0.7.
    Tensor x = uniform({n, 2}, -1.0, 1.0);
    std::vector<int64_t> labels(n);
    const auto xv = x.to_vector<float>();
    for (int64_t i = 0; i < n; ++i) labels[i] = xv[2 * i] * xv[2 * i] + xv[2 * i + 1] * xv[2 * i + 1] < 0.49f;
    Tensor y = from_vector(labels, {n}, TensorOptions().dtype(DType::i64));

    Tensor w1 = (randn({hidden, 2}) * 0.7).detach().set_requires_grad();
    Tensor b1 = zeros({hidden}, TensorOptions().requires_grad());
    Tensor w2 = (randn({2, hidden}) * 0.2).detach().set_requires_grad();
    Tensor b2 = zeros({2}, TensorOptions().requires_grad());
    std::vector<Tensor> params{w1, b1, w2, b2};

    std::printf("tiny_demo: 2-layer MLP, %lld points, backend %s\n", static_cast<long long>(n),
                cpu_backend_name().c_str());
    for (int step = 0; step <= 300; ++step) {
      Tensor logits = linear(relu(linear(x, w1, b1)), w2, b2);
      Tensor loss = cross_entropy(logits, y);
      for (auto& p : params) p.set_grad({});
      loss.backward();
      {
        NoGradGuard no_grad;
        for (auto& p : params) p.add_(p.grad(), -0.5);
      }
      if (step % 50 == 0) {
        const auto lv = logits.to_vector<float>();
        int correct = 0;
        for (int64_t i = 0; i < n; ++i) correct += (lv[2 * i + 1] > lv[2 * i]) == (labels[i] == 1);
        std::printf("step %3d  loss %.4f  accuracy %.1f%%\n", step, loss.item<float>(), 100.0 * correct / n);
      }
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "tiny_demo: %s\n", e.what());
    return 1;
  }
}
