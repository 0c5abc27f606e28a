// The cuda-host executor of the optimizer-update kernels (backends/cuda/host/optim_host.cpp, the bodies the GPU
// runs) against the ref backend's host reference: bit-identical for SGD, Adam and hysteresis variants, f32 and
// f64, including the flip count; and its argument errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "backends/backend.h"
#include "backends/cuda/host/optim_host.h"

using namespace minidl;

namespace {

Tensor random_tensor(const Shape& s, DType dt, std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  for (auto& x : v) x = d(rng);
  return from_vector(v, s, TensorOptions{}.dtype(DType::f64)).to(dt);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// n tensors of shape s with values in [lo, hi), two identical sets (one per side).
struct Twin {
  std::vector<Tensor> ref, host;
};
Twin twin(const Shape& s, DType dt, std::mt19937_64& rng, std::vector<std::pair<double, double>> ranges) {
  Twin t;
  for (auto [lo, hi] : ranges) {
    Tensor x = random_tensor(s, dt, rng, lo, hi);
    t.ref.push_back(x.clone());
    t.host.push_back(x.clone());
  }
  return t;
}

void check_all_same(const Twin& t) {
  for (size_t k = 0; k < t.ref.size(); ++k) CHECK_MESSAGE(same_bits(t.ref[k], t.host[k]), "operand ", k, " differs");
}

}  // namespace

TEST_CASE("cuda-host optimizer kernels match ref bit for bit") {
  Backend& ref = backend_by_name("ref");
  std::mt19937_64 rng(14);
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Shape& s : std::vector<Shape>{{1}, {5, 7}, {3000}}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(shape_str(s));
      for (int variant = 0; variant < 4; ++variant) {
        SgdUpdateParams p;
        p.lr = 0.05;
        p.momentum = variant ? 0.9 : 0.0;
        p.dampening = variant == 1 ? 0.1 : 0.0;
        p.nesterov = variant == 2;
        p.decoupled_weight_decay = variant == 3;
        p.weight_decay = variant ? 1e-2 : 0.0;
        p.first_step = variant == 1;
        Twin t = twin(s, dt, rng, {{-1, 1}, {-1, 1}, {-1, 1}});
        Tensor rb = p.momentum != 0 ? t.ref[1] : Tensor(), hb = p.momentum != 0 ? t.host[1] : Tensor();
        ref.sgd_update(t.ref[0], rb, t.ref[2], p);
        cuda::host::sgd_update("cuda-host backend: sgd_update", t.host[0], hb, t.host[2], p);
        CAPTURE(variant);
        check_all_same(t);
      }
      for (int variant = 0; variant < 3; ++variant) {
        AdamUpdateParams p;
        p.lr = 1e-2;
        p.weight_decay = 1e-2;
        p.decoupled_weight_decay = variant == 1;
        p.amsgrad = variant == 2;
        p.step_size = p.lr / (1 - std::pow(p.beta1, 4));
        p.inv_sqrt_bc2 = 1 / std::sqrt(1 - std::pow(p.beta2, 4));
        Twin t = twin(s, dt, rng, {{-1, 1}, {-0.1, 0.1}, {0, 0.01}, {0, 0.02}, {-1, 1}});
        Tensor rv = p.amsgrad ? t.ref[3] : Tensor(), hv = p.amsgrad ? t.host[3] : Tensor();
        ref.adam_update(t.ref[0], t.ref[1], t.ref[2], rv, t.ref[4], p);
        cuda::host::adam_update("cuda-host backend: adam_update", t.host[0], t.host[1], t.host[2], hv, t.host[4], p);
        CAPTURE(variant);
        check_all_same(t);
      }
      for (int variant = 0; variant < 4; ++variant) {
        HysteresisUpdateParams p;
        p.lr = 0.5;
        p.threshold = 0.05;
        p.weight_decay = 1e-3;
        p.one_step = variant % 2 == 1;
        p.momentum = variant >= 2 ? 0.9 : 0.0;
        p.nesterov = variant == 3;
        Twin t = twin(s, dt, rng, {{-0.3, 0.3}, {-0.2, 0.2}, {-1, 1}, {-0.1, 0.1}, {-0.1, 0.1}});
        Tensor signs = t.ref[2].to(DType::f64).contiguous().clone();  // signs exactly +-1
        for (int64_t i = 0; i < signs.numel(); ++i) signs.data<double>()[i] = signs.data<double>()[i] < 0 ? -1.0 : 1.0;
        t.ref[2].copy_(signs);
        t.host[2].copy_(signs);
        Tensor rb = p.momentum != 0 ? t.ref[3] : Tensor(), hb = p.momentum != 0 ? t.host[3] : Tensor();
        const int64_t rf = ref.hysteresis_update(t.ref[0], t.ref[1], t.ref[2], rb, t.ref[4], p);
        const int64_t hf = cuda::host::hysteresis_update("cuda-host backend: hysteresis_update", t.host[0], t.host[1],
                                                         t.host[2], hb, t.host[4], p);
        CAPTURE(variant);
        CHECK(rf == hf);
        if (s[0] == 3000) CHECK(rf > 0);  // the case really flips signs
        check_all_same(t);
      }
    }
  }
}

TEST_CASE("cuda-host optimizer kernels: clear errors for bad operands") {
  Tensor w = zeros({4}), g = zeros({5}), b;
  SgdUpdateParams p;
  p.lr = 0.1;
  CHECK_THROWS_WITH(cuda::host::sgd_update("cuda-host backend: sgd_update", w, b, g, p),
                    doctest::Contains("cuda-host backend: sgd_update: gradient shape [5] differs"));
  Tensor g4 = zeros({4});
  p.momentum = 0.9;
  CHECK_THROWS_WITH(cuda::host::sgd_update("cuda-host backend: sgd_update", w, b, g4, p),
                    doctest::Contains("momentum buffer must be given exactly when momentum is non-zero"));
  Tensor g64 = zeros({4}, TensorOptions{}.dtype(DType::f64));
  AdamUpdateParams a;
  Tensor m = zeros({4}), v = zeros({4}), vm;
  CHECK_THROWS_WITH(cuda::host::adam_update("cuda-host backend: adam_update", w, m, v, vm, g64, a),
                    doctest::Contains("gradient dtype float64 differs from parameter dtype float32"));
}
