// The channels-last batch norm's AVX-512 and AVX2 kernels (backends/cpu/cpu_batchnorm_kernels.h) against the
// portable loops they replace, bit for bit: forward training (plain, + ReLU, + residual + ReLU) and every backward,
// at the avx512 and avx2 caps against the baseline cap (which runs the portable loops). Shapes cover channel counts
// that are not a multiple of 16 or 8 (the scalar tails), row counts beyond one 256-row block and NaN /
// negative-zero inputs to the ReLU. Named "cpu ISA: " so scripts/isa-matrix runs it on every leg; each level is
// skipped on hosts without it.
#ifdef MINIDL_WITH_ONEDNN

#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/cpu_isa.h"
#include "tensor/generator.h"
#include "tensor/tensor.h"
#include "test_scopes.h"
#include "test_skip.h"

using namespace minidl;
using cpu::CpuIsa;
using minidl::test::BackendScope;
using minidl::test::CapGuard;

namespace {

Tensor nhwc(const Tensor& src) {
  Tensor t = empty(src.sizes(), TensorOptions{}, MemoryFormat::ChannelsLast);
  t.copy_(src);
  return t;
}

Tensor nhwc_like(const Shape& s) { return empty(s, TensorOptions{}, MemoryFormat::ChannelsLast); }

struct Inputs {
  Tensor x, res, gy, w, b;
};

// Every output of the fused and plain batch-norm primitives for one input set, in a fixed order.
std::vector<Tensor> run_all(const Inputs& in) {
  Backend& be = backend_for(in.x);
  const Shape s = in.x.sizes();
  const int64_t C = s[1];
  const double eps = 1e-5;
  std::vector<Tensor> out;
  auto stats = [&] { return std::vector<Tensor>{empty({C}), empty({C})}; };
  {  // plain forward + backward (gx and parameter gradients)
    Tensor y = nhwc_like(s);
    auto st = stats();
    OpStatePtr state;
    be.batch_norm_forward_training(y, st[0], st[1], in.x, in.w, in.b, eps, state);
    Tensor gx = nhwc_like(s), gw = empty({C}), gb = empty({C});
    be.batch_norm_backward(gx, gw, gb, in.gy, in.x, st[0], st[1], in.w, eps, state);
    out.insert(out.end(), {y, st[0], st[1], gx, gw, gb});
  }
  {  // + ReLU
    Tensor y = nhwc_like(s);
    auto st = stats();
    OpStatePtr state;
    be.batch_norm_relu_forward_training(y, st[0], st[1], in.x, in.w, in.b, eps, state);
    Tensor gx = nhwc_like(s), gw = empty({C}), gb = empty({C});
    be.batch_norm_relu_backward(gx, gw, gb, in.gy, y, in.x, st[0], st[1], in.w, eps, state);
    out.insert(out.end(), {y, st[0], st[1], gx, gw, gb});
    // the same backward with the mask recomputed from x (the forward left its coefficients in state)
    Tensor gx2 = nhwc_like(s), gw2 = empty({C}), gb2 = empty({C});
    CHECK(be.batch_norm_relu_backward_from_input(gx2, gw2, gb2, in.gy, in.x, st[0], st[1], in.w, eps, state));
    out.insert(out.end(), {gx2, gw2, gb2});
  }
  {  // + residual + ReLU: every output, then the residual's gradient alone
    Tensor y = nhwc_like(s);
    auto st = stats();
    OpStatePtr state;
    be.batch_norm_add_relu_forward_training(y, st[0], st[1], in.x, in.res, in.w, in.b, eps, state);
    Tensor gx = nhwc_like(s), gr = nhwc_like(s), gw = empty({C}), gb = empty({C});
    be.batch_norm_add_relu_backward(gx, gr, gw, gb, in.gy, y, in.x, st[0], st[1], in.w, eps, state);
    Tensor none, gr_only = nhwc_like(s);
    be.batch_norm_add_relu_backward(none, gr_only, none, none, in.gy, y, in.x, st[0], st[1], in.w, eps, state);
    out.insert(out.end(), {y, st[0], st[1], gx, gr, gw, gb, gr_only});
  }
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.dtype() == cb.dtype() && ca.numel() == cb.numel() &&
         std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

// 16 APoT-like levels in [0, 1] (a 4-bit activation quantizer's set) for the batch norm + quantizer tests.
Tensor apot_like_levels() {
  const std::vector<float> lv{0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 44, 48};
  Tensor levels = empty({16});
  for (int i = 0; i < 16; ++i) levels.data<float>()[i] = lv[static_cast<size_t>(i)] / 48.0f;
  return levels;
}

// Several 256-row blocks and a partial one, one partial block, two whole blocks, and C = 24 (not a multiple of 16).
std::vector<Shape> bn_quant_shapes() { return {{4, 16, 20, 20}, {3, 32, 9, 7}, {2, 64, 16, 16}, {2, 24, 8, 8}}; }

// Every output of run_all at the `fast` cap against the baseline cap (the portable loops), bit for bit.
void check_level_against_portable(CpuIsa fast_level) {
  BackendScope backend("cpu");
  CapGuard guard;
  cpu::set_cpu_isa_cap(std::nullopt);
  if (cpu::host_isa() < fast_level)
    MINIDL_SKIP("no " << cpu::isa_name(fast_level) << " on this host (level " << cpu::isa_name(cpu::host_isa()) << ")");
  if (cpu::active_isa() < fast_level)
    MINIDL_SKIP("MINIDL_CPU_ISA caps minidl's kernels at " << cpu::isa_name(cpu::active_isa()));
  manual_seed(7);
  const std::vector<Shape> shapes = {{2, 16, 9, 7}, {3, 24, 5, 5}, {2, 40, 13, 12}, {4, 3, 4, 4}, {8, 64, 8, 8}};
  for (const Shape& s : shapes) {
    INFO("shape " << s[0] << "x" << s[1] << "x" << s[2] << "x" << s[3]);
    Inputs in{nhwc(randn(s)), nhwc(randn(s)), nhwc(randn(s)), randn({s[1]}), randn({s[1]})};
    // ReLU edge values: exact zeros, negative zeros and a NaN in the pre-activation's path
    float* x = in.x.data<float>();
    x[0] = std::numeric_limits<float>::quiet_NaN();
    x[1] = -0.0f;
    in.res.data<float>()[2] = 0.0f;
    cpu::set_cpu_isa_cap(fast_level);
    const auto fast = run_all(in);
    cpu::set_cpu_isa_cap(CpuIsa::Baseline);
    const auto portable = run_all(in);
    REQUIRE(fast.size() == portable.size());
    for (size_t i = 0; i < fast.size(); ++i) {
      INFO("output " << i);
      CHECK(same_bits(fast[i], portable[i]));
    }
  }
}

}  // namespace

TEST_CASE("cpu ISA: AVX-512 batch norm kernels give the portable loops' bits") {
  check_level_against_portable(CpuIsa::Avx512);
}

TEST_CASE("cpu ISA: AVX2 batch norm kernels give the portable loops' bits") {
  check_level_against_portable(CpuIsa::Avx2);
}

TEST_CASE("cpu ISA: batch norm + ReLU backward with the mask from x equals the one from y, bit for bit, every level") {
  BackendScope backend("cpu");
  CapGuard guard;
  manual_seed(11);
  std::vector<CpuIsa> levels{CpuIsa::Baseline};
  for (CpuIsa l : {CpuIsa::Avx2, CpuIsa::Avx512})
    if (cpu::host_isa() >= l) levels.push_back(l);
  // C = 24 and 40: the AVX-512 kernels' scalar tails; several 256-row blocks
  for (const Shape& s : std::vector<Shape>{{2, 16, 9, 7}, {3, 24, 5, 5}, {2, 40, 13, 12}, {4, 64, 8, 8}}) {
    INFO("shape " << s[0] << "x" << s[1] << "x" << s[2] << "x" << s[3]);
    const int64_t C = s[1];
    Tensor x = nhwc(randn(s)), gy = nhwc(randn(s)), w = randn({C}), b = randn({C});
    // channel 1: gamma 0 and beta 0, so the pre-activation is exactly +-0 everywhere (mask false); channel 2: a NaN
    w.data<float>()[1] = 0.0f;
    b.data<float>()[1] = 0.0f;
    x.data<float>()[2] = std::numeric_limits<float>::quiet_NaN();
    x.data<float>()[C] = -0.0f;
    for (CpuIsa level : levels) {
      INFO("level " << cpu::isa_name(level));
      cpu::set_cpu_isa_cap(level);
      Backend& be = backend_for(x);
      Tensor y = nhwc_like(s), mean = empty({C}), invstd = empty({C});
      OpStatePtr state;
      be.batch_norm_relu_forward_training(y, mean, invstd, x, w, b, 1e-5, state);
      Tensor gx = nhwc_like(s), gw = empty({C}), gb = empty({C});
      be.batch_norm_relu_backward(gx, gw, gb, gy, y, x, mean, invstd, w, 1e-5, state);
      Tensor gx2 = nhwc_like(s), gw2 = empty({C}), gb2 = empty({C});
      REQUIRE(be.batch_norm_relu_backward_from_input(gx2, gw2, gb2, gy, x, mean, invstd, w, 1e-5, state));
      CHECK(same_bits(gx, gx2));
      CHECK(same_bits(gw, gw2));
      CHECK(same_bits(gb, gb2));
      // gx may be gy itself (the op hands a gradient it owns alone): the same bits again
      Tensor g_own = nhwc(gy), gw3 = empty({C}), gb3 = empty({C});
      REQUIRE(be.batch_norm_relu_backward_from_input(g_own, gw3, gb3, g_own, x, mean, invstd, w, 1e-5, state));
      CHECK(same_bits(gx, g_own));
    }
    // refused without the forward's state, or for another input shape: the caller falls back to y
    Backend& be = backend_for(x);
    OpStatePtr none;
    Tensor gx = nhwc_like(s), gw = empty({C}), gb = empty({C}), mean = zeros({C}), invstd = ones({C});
    CHECK_FALSE(be.batch_norm_relu_backward_from_input(gx, gw, gb, gy, x, mean, invstd, w, 1e-5, none));
  }
}

TEST_CASE("cpu ISA: batch norm backward writes gx over gy with the same bits (both layouts, every level, ref)") {
  // The batch norm op hands a host backward the incoming gradient as gx when it owns it alone: every backward
  // must take its sums before writing gx and read each gy element before writing that element.
  CapGuard guard;
  manual_seed(11);
  const double eps = 1e-5;
  for (const Shape& s : std::vector<Shape>{{2, 16, 9, 7}, {3, 24, 5, 5}, {2, 40, 13, 12}}) {
    const int64_t C = s[1];
    for (bool cl : {true, false}) {
      auto fmt = [&](const Tensor& t) { return cl ? nhwc(t) : t.contiguous(); };
      auto like = [&] { return cl ? nhwc_like(s) : empty(s); };
      const Tensor x = fmt(randn(s)), res = fmt(randn(s)), gy = fmt(randn(s)), w = randn({C}), b = randn({C});
      for (const char* name : {"cpu", "ref"}) {
        for (auto cap : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512}) {
          if (cap > cpu::host_isa() || (std::string(name) == "ref" && cap != CpuIsa::Baseline)) continue;
          INFO(name << ", " << (cl ? "channels-last" : "contiguous") << ", level " << cpu::isa_name(cap) << ", shape "
                    << s[0] << "x" << s[1] << "x" << s[2] << "x" << s[3]);
          cpu::set_cpu_isa_cap(cap);
          Backend& be = backend_by_name(name);
          for (int tail = 0; tail < 3; ++tail) {  // plain, + ReLU, + residual + ReLU
            Tensor y = like(), mean = empty({C}), invstd = empty({C});
            OpStatePtr state;
            if (tail == 0) be.batch_norm_forward_training(y, mean, invstd, x, w, b, eps, state);
            if (tail == 1) be.batch_norm_relu_forward_training(y, mean, invstd, x, w, b, eps, state);
            if (tail == 2) be.batch_norm_add_relu_forward_training(y, mean, invstd, x, res, w, b, eps, state);
            auto run = [&](Tensor& gx, const Tensor& g, Tensor& gr, Tensor& gw, Tensor& gb) {
              if (tail == 0) be.batch_norm_backward(gx, gw, gb, g, x, mean, invstd, w, eps, state);
              if (tail == 1) be.batch_norm_relu_backward(gx, gw, gb, g, y, x, mean, invstd, w, eps, state);
              if (tail == 2) be.batch_norm_add_relu_backward(gx, gr, gw, gb, g, y, x, mean, invstd, w, eps, state);
            };
            Tensor gx = like(), gr = tail == 2 ? like() : Tensor(), gw = empty({C}), gb = empty({C});
            run(gx, gy, gr, gw, gb);
            Tensor over = cl ? nhwc(gy) : gy.clone(), gr2 = tail == 2 ? like() : Tensor(), gw2 = empty({C}),
                   gb2 = empty({C});
            run(over, over, gr2, gw2, gb2);
            INFO("tail " << tail);
            CHECK(same_bits(over, gx));
            CHECK(same_bits(gw2, gw));
            CHECK(same_bits(gb2, gb));
            if (tail == 2) CHECK(same_bits(gr2, gr));
          }
        }
      }
    }
  }
}

TEST_CASE("cpu ISA: batch norm + ReLU + quantizer in one op equals its primitives bit for bit at every level") {
  // The fused forward (batch_norm_relu_quantize_forward_training) runs where it can (channels-last float32, C a
  // multiple of 16; a levels / grid quantizer needs the avx2 or avx512 cap, PACT runs at every cap) and keeps no y;
  // elsewhere it declines (false). Its q, codes and statistics must be the bits of batch_norm_relu_forward_training +
  // quantize_clip_forward_coded (pact_forward_coded). The backward, given y (the path after a declined forward: on the
  // cpu the quantizer runs block by block inside the batch norm's reduction pass where the operands allow) or
  // recomputing y from x (after the fused forward), must give the two backward primitives' gx, gweight, gbias and
  // galpha, also with gx over g. Cases: a NaN gradient element (galpha NaN in both), a NaN input (no code for it: codes
  // come back undefined), a negative zero input.
  CapGuard guard;
  manual_seed(13);
  const double eps = 1e-5, scale = 0.25, nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor levels = apot_like_levels(), none;
  for (const Shape& s : bn_quant_shapes()) {
    for (bool cl : {true, false}) {
      const int64_t C = s[1];
      auto fmt = [&](const Tensor& t) { return cl ? nhwc(t) : t.contiguous(); };
      auto like = [&] { return cl ? nhwc_like(s) : empty(s); };
      auto codes_like = [&] {
        return empty(s, TensorOptions{}.dtype(DType::u8), cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
      };
      const Tensor w = randn({C}), b = randn({C}), alpha = full({}, 0.8);
      for (int nan_case = 0; nan_case < 3; ++nan_case) {
        Tensor x = fmt(randn(s)), g = fmt(randn(s));
        x.data<float>()[3] = -0.0f;
        if (nan_case == 1) g.data<float>()[5] = static_cast<float>(nan);
        if (nan_case == 2) x.data<float>()[7] = static_cast<float>(nan);
        for (auto cap : {CpuIsa::Baseline, CpuIsa::Avx2, CpuIsa::Avx512}) {
          if (cap > cpu::host_isa()) continue;
          cpu::set_cpu_isa_cap(cap);
          Backend& be = backend_by_name("cpu");
          for (int kind = 0; kind < 3; ++kind) {  // levels, the uniform grid, PACT (4 bits)
            ActQuantizer quantizer;
            quantizer.alpha = alpha;
            if (kind == 0) quantizer.levels = levels;
            if (kind == 1) quantizer.steps = 15.0;
            if (kind == 2) quantizer.pact_k = 15.0;
            const ActQuantizer& Q = quantizer;
            INFO((cl ? "channels-last" : "contiguous") << ", level " << cpu::isa_name(cap) << ", shape " << s[0] << "x"
                                                       << s[1] << "x" << s[2] << "x" << s[3] << ", "
                                                       << (kind == 0   ? "levels"
                                                           : kind == 1 ? "grid"
                                                                       : "PACT")
                                                       << ", NaN case " << nan_case);
            // the primitives
            OpStatePtr state;
            Tensor y = like(), mean2 = empty({C}), invstd2 = empty({C}), q2 = like(), codes2 = codes_like();
            be.batch_norm_relu_forward_training(y, mean2, invstd2, x, w, b, eps, state);
            const bool coded2 =
                Q.is_pact() ? be.pact_forward_coded(q2, codes2, y, alpha, Q.pact_k)
                            : be.quantize_clip_forward_coded(q2, codes2, y, alpha, Q.levels, Q.steps, Q.lo, Q.hi);
            Tensor gq = like(), ga2 = empty({}), gx2 = like(), gw2 = empty({C}), gb2 = empty({C});
            if (Q.is_pact())
              be.pact_backward_from_input(gq, ga2, g, y, alpha, Q.pact_k, scale);
            else
              be.quantize_clip_backward_from_input(gq, ga2, g, y, alpha, Q.levels, Q.steps, Q.lo, Q.hi, scale);
            be.batch_norm_relu_backward(gx2, gw2, gb2, gq, y, x, mean2, invstd2, w, eps, state);
            // without the forward's codes, and (where it wrote them) with them in place of the level search
            const auto check_backward = [&](const Tensor& saved_y, const Tensor& mean, const Tensor& invstd,
                                            const Tensor& ya, const Tensor& yb) {
              for (const Tensor& codes : {none, coded2 ? codes2 : none}) {
                INFO((codes.defined() ? "with the forward's codes" : "without codes"));
                Tensor gx1 = like(), gw1 = empty({C}), gb1 = empty({C}), ga1 = empty({});
                be.batch_norm_relu_quantize_backward(gx1, gw1, gb1, ga1, g, saved_y, x, mean, invstd, w, eps, Q, scale,
                                                     ya, yb, codes, state);
                CHECK(same_bits(gx1, gx2));
                CHECK(same_bits(gw1, gw2));
                CHECK(same_bits(gb1, gb2));
                CHECK(same_bits(ga1, ga2));
                Tensor over = cl ? nhwc(g) : g.clone(), gw3 = empty({C}), gb3 = empty({C}), ga3 = empty({});
                be.batch_norm_relu_quantize_backward(over, gw3, gb3, ga3, over, saved_y, x, mean, invstd, w, eps, Q,
                                                     scale, ya, yb, codes, state);
                CHECK(same_bits(over, gx2));
                CHECK(same_bits(ga3, ga2));
              }
            };
            check_backward(y, mean2, invstd2, none, none);
            // the one-pass forward, then the backward from x
            Tensor q1 = like(), codes1 = codes_like(), mean1 = empty({C}), invstd1 = empty({C}), ya = empty({C}),
                   yb = empty({C});
            const bool fused = be.batch_norm_relu_quantize_forward_training(q1, codes1, mean1, invstd1, ya, yb, x, w, b,
                                                                            eps, Q, state);
            CHECK(fused == (cl && C % 16 == 0 && (Q.is_pact() || cap >= CpuIsa::Avx2)));
            if (!fused) {
              // nothing to recompute y from: a clear error, not a crash
              Tensor gx1 = like(), gw1 = empty({C}), gb1 = empty({C}), ga1 = empty({});
              CHECK_THROWS_AS(be.batch_norm_relu_quantize_backward(gx1, gw1, gb1, ga1, g, none, x, mean2, invstd2, w,
                                                                   eps, Q, scale, ya, yb, none, state),
                              Error);
              continue;
            }
            CHECK(same_bits(q1, q2));
            CHECK(same_bits(mean1, mean2));
            CHECK(same_bits(invstd1, invstd2));
            CHECK(codes1.defined() == coded2);
            if (coded2) CHECK(same_bits(codes1, codes2));
            check_backward(none, mean1, invstd1, ya, yb);
          }
        }
      }
    }
  }
}

#endif  // MINIDL_WITH_ONEDNN
