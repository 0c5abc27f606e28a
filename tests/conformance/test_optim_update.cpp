// Conformance of the optimizer-update primitives (sgd_update, adam_update, hysteresis_update) on every non-ref
// backend against ref: SGD plain / momentum with dampening / Nesterov / decoupled decay, first and later steps;
// Adam, AdamW and amsgrad at steps 1 and 7; hysteresis classical and one-step with momentum, Nesterov and decay,
// V and thresholds spread so that signs hold, flip and cross. Sizes include one that takes the parallel path
// and one that spans several GPU blocks. Every row checks the parameter and every state tensor; the hysteresis
// rows also the flip count. The rows join test_conformance.cpp's table (optim_update_rows()).
#include <doctest/doctest.h>

#include <cmath>

#include "harness.h"

namespace conf {
namespace {

// ref and the CPU backends run the same host loops (bit-identical); a GPU may contract a * b + c into an FMA.
constexpr Tol kUpd32{1e-6, 1e-5}, kUpd64{1e-14, 1e-13};

const std::vector<Shape> kShapes = {{7}, {33, 5}, {70000}};

// A fresh contiguous copy of `src` on the backend's device (rows update in place; their inputs stay intact).
Tensor fresh(Ctx& c, const Tensor& src) {
  Tensor t = c.out(src.sizes(), src.dtype());
  c.be.copy(t, src);
  return t;
}

Tensor count_tensor(int64_t n) { return scalar_tensor(static_cast<double>(n), TensorOptions{}.dtype(DType::f64)); }

void add_sgd(std::vector<Row>& rows) {
  struct Case {
    const char* name;
    SgdUpdateParams p;
  };
  std::vector<Case> cases;
  {
    SgdUpdateParams p;
    p.lr = 0.1;
    cases.push_back({"plain", p});
    p.momentum = 0.9;
    p.dampening = 0.25;
    p.weight_decay = 1e-2;
    cases.push_back({"momentum+dampening+L2", p});
    p.first_step = true;
    cases.push_back({"momentum first step", p});
    p.first_step = false;
    p.dampening = 0;
    p.nesterov = true;
    cases.push_back({"nesterov+L2", p});
    p.nesterov = false;
    p.decoupled_weight_decay = true;
    p.weight_decay = 0.05;
    cases.push_back({"decoupled decay", p});
  }
  for (const Case& cs : cases) {
    for (const Shape& s : kShapes) {
      Row r{"sgd_update",
            std::string(cs.name) + " " + shape_str(s),
            OpKind::OptimUpdate,
            kUpd32,
            kUpd64,
            [s](DType dt, Rng& rng) {
              return Inputs{uni(s, dt, rng), uni(s, dt, rng), uni(s, dt, rng)};
            },
            [p = cs.p](Ctx& c, const Inputs& in) {
              Tensor w = fresh(c, in[0]);
              Tensor b = p.momentum != 0.0 ? fresh(c, in[1]) : Tensor();
              c.be.sgd_update(w, b, in[2], p);
              return b.defined() ? std::vector<Tensor>{w, b} : std::vector<Tensor>{w};
            }};
      r.ask_supports = false;  // the Backend base class has the reference: every backend runs it
      rows.push_back(std::move(r));
    }
  }
}

void add_adam(std::vector<Row>& rows) {
  struct Case {
    const char* name;
    bool decoupled, amsgrad;
    double wd, t;
  };
  const Case cases[] = {{"adam", false, false, 0.0, 1},
                        {"adam+L2 step 7", false, false, 1e-2, 7},
                        {"adamw step 7", true, false, 1e-2, 7},
                        {"amsgrad step 7", false, true, 0.0, 7},
                        {"adamw+amsgrad", true, true, 0.1, 3}};
  for (const Case& cs : cases) {
    for (const Shape& s : kShapes) {
      AdamUpdateParams p;
      p.lr = 1e-2;
      p.weight_decay = cs.wd;
      p.decoupled_weight_decay = cs.decoupled;
      p.amsgrad = cs.amsgrad;
      p.step_size = p.lr / (1.0 - std::pow(p.beta1, cs.t));
      p.inv_sqrt_bc2 = 1.0 / std::sqrt(1.0 - std::pow(p.beta2, cs.t));
      Row r{"adam_update",
            std::string(cs.name) + " " + shape_str(s),
            OpKind::OptimUpdate,
            kUpd32,
            kUpd64,
            [s](DType dt, Rng& rng) {
              // moments as after some steps: m ~ g, v ~ g^2 (non-negative), vmax >= v for half the elements
              return Inputs{uni(s, dt, rng), uni(s, dt, rng, -0.1, 0.1), uni(s, dt, rng, 0.0, 0.01),
                            uni(s, dt, rng, 0.0, 0.02), uni(s, dt, rng)};
            },
            [p](Ctx& c, const Inputs& in) {
              Tensor w = fresh(c, in[0]), m = fresh(c, in[1]), v = fresh(c, in[2]);
              Tensor vm = p.amsgrad ? fresh(c, in[3]) : Tensor();
              c.be.adam_update(w, m, v, vm, in[4], p);
              return vm.defined() ? std::vector<Tensor>{w, m, v, vm} : std::vector<Tensor>{w, m, v};
            }};
      r.ask_supports = false;
      rows.push_back(std::move(r));
    }
  }
}

void add_hysteresis(std::vector<Row>& rows) {
  for (bool one_step : {false, true}) {
    for (bool momentum : {false, true}) {
      for (const Shape& s : kShapes) {
        HysteresisUpdateParams p;
        p.lr = 0.5;
        p.threshold = 0.05;
        p.weight_decay = 1e-3;
        p.one_step = one_step;
        if (momentum) {
          p.momentum = 0.9;
          p.nesterov = true;
        }
        const std::string name = std::string(one_step ? "one-step" : "classical") + (momentum ? " nesterov " : " ");
        Row r{"hysteresis_update",
              name + shape_str(s),
              OpKind::OptimUpdate,
              kUpd32,
              kUpd64,
              [s](DType dt, Rng& rng) {
                // P = +-0.3 (binary), V around the thresholds, sign = +-1, a small gradient
                Tensor w = away_from_zero(s, dt, rng, 0.3, 0.3), sign = away_from_zero(s, dt, rng, 1.0, 1.0);
                return Inputs{w, uni(s, dt, rng, -0.2, 0.2), sign, uni(s, dt, rng, -0.1, 0.1),
                              uni(s, dt, rng, -0.1, 0.1)};
              },
              [p](Ctx& c, const Inputs& in) {
                Tensor w = fresh(c, in[0]), v = fresh(c, in[1]), sg = fresh(c, in[2]);
                Tensor b = p.momentum != 0.0 ? fresh(c, in[3]) : Tensor();
                const int64_t flips = c.be.hysteresis_update(w, v, sg, b, in[4], p);
                std::vector<Tensor> out{w, v, sg, count_tensor(flips)};
                if (b.defined()) out.push_back(b);
                return out;
              }};
        r.ask_supports = false;
        rows.push_back(std::move(r));
      }
    }
  }
}

}  // namespace

std::vector<Row> optim_update_rows() {
  std::vector<Row> rows;
  add_sgd(rows);
  add_adam(rows);
  add_hysteresis(rows);
  return rows;
}

}  // namespace conf
