// The smallest real application of the installed package: include the umbrella header, build a linear layer
// followed by relu and an MSE loss, run forward and backward, and check the gradients against the values
// worked out by hand below; then one SGD step and a quantizer level set (optim/ and quant/ through minidl.h). Prints OK
// and returns 0 on success; any mismatch returns 1 with a message.
#include <minidl.h>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

bool close(double a, double b) { return std::fabs(a - b) <= 1e-6 * (1.0 + std::fabs(b)); }

int fail(const char* what, double got, double want) {
  std::fprintf(stderr, "package test FAILED: %s = %.9g, expected %.9g\n", what, got, want);
  return 1;
}

}  // namespace

int main() {
  using namespace minidl;
  try {
    // x (2,3), w (2,3), b (2): pre = x @ w^T + b.
    Tensor x = tensor({1, 2, 3, -1, 0, 2}, {2, 3});
    Tensor w = tensor({0.5, -1, 0.25, 0.1, 0.2, -0.3}, {2, 3}).set_requires_grad(true);
    Tensor b = tensor({0.5, -0.2}, {2}).set_requires_grad(true);
    Tensor target = tensor({1, 0, 0, 1}, {2, 2});

    Tensor y = relu(linear(x, w, b));
    Tensor loss = mse_loss(y, target);
    loss.backward();

    // By hand: pre = [[0.5-2+0.75+0.5, 0.1+0.4-0.9-0.2], [-0.5+0+0.5+0.5, -0.1+0-0.6-0.2]]
    //              = [[-0.25, -0.6], [0.5, -0.9]]; y = [[0, 0], [0.5, 0]];
    // loss = mean((y - t)^2) = (1 + 0 + 0.25 + 1) / 4 = 0.5625.
    // dL/dy = (y - t) / 2 = [[-0.5, 0], [0.25, -0.5]]; through relu only (1,0) passes: g = 0.25 there.
    // dL/db = [0.25, 0]; dL/dw row 0 = 0.25 * x[1] = [-0.25, 0, 0.5], row 1 = 0.
    const double l = loss.item<double>();
    if (!close(l, 0.5625)) return fail("loss", l, 0.5625);
    if (!w.grad().defined() || !b.grad().defined()) {
      std::fprintf(stderr, "package test FAILED: backward left no gradient\n");
      return 1;
    }
    const std::vector<double> gw = w.grad().to_vector<double>();
    const std::vector<double> gb = b.grad().to_vector<double>();
    const double want_w[6] = {-0.25, 0, 0.5, 0, 0, 0};
    const double want_b[2] = {0.25, 0};
    double norm = 0;
    for (int i = 0; i < 6; ++i) {
      if (!close(gw[i], want_w[i])) return fail("dL/dw", gw[i], want_w[i]);
      norm += gw[i] * gw[i];
    }
    for (int i = 0; i < 2; ++i) {
      if (!close(gb[i], want_b[i])) return fail("dL/db", gb[i], want_b[i]);
    }
    if (norm == 0) return fail("|dL/dw|^2", norm, 0.3125);

    // The higher floors come through the umbrella header too: one SGD step (w -= lr * dL/dw) and a level set.
    optim::SGDOptions sgd;
    sgd.lr = 0.1;
    optim::SGD opt(std::vector<Tensor>{w, b}, sgd);
    opt.step();
    const double w02 = w.to_vector<double>()[2];
    if (!close(w02, 0.25 - 0.1 * 0.5)) return fail("w[0][2] after SGD", w02, 0.2);
    const auto apot4 = quant::levels(quant::Scheme::APoT, 4, false);
    if (apot4.size() != 16) return fail("APoT 4-bit level count", static_cast<double>(apot4.size()), 16);

    std::string backends;
    for (const auto& n : available_backends()) backends += (backends.empty() ? "" : ",") + n;
    std::printf("minidl package test: cpu backend %s (built: %s), loss %.4f, |dL/dw|^2 %.4f\nOK\n",
                cpu_backend_name().c_str(), backends.c_str(), l, norm);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "package test FAILED with minidl::Error: %s\n", e.what());
    return 1;
  }
}
