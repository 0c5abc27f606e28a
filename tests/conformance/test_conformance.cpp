// Backend conformance: every Backend primitive, forward and backward, on every non-ref backend against the ref
// oracle, over odd sizes, batch 1, stride/padding/dilation/groups combinations, permuted / sliced / broadcast
// inputs and sizes big enough to take the parallel paths, plus randomised configurations drawn from a fixed
// seed (MINIDL_CONFORMANCE_SEED=<n> draws others; the case names print what was drawn). The table below is the
// whole suite: one add() per case; a new backend needs no edit (rows run on everything available_backends()
// lists).
#include <doctest/doctest.h>

#include <cstdlib>
#include <set>

#include "backends/cuda/cuda_device.h"
#include "harness.h"
#include "test_skip.h"

namespace conf {
namespace {

// Tolerances per op family (Tol: |got - want| <= atol * max(1, max|want|) + rtol * |want|):
//  exact  fill, copy/cast, comparisons, max/min reductions, max-pool values and indices, project_to_levels
//  elem   unary / binary math (a vectorised libm may differ from the scalar one by a few ulp)
//  sum    sum/mean reductions, avg / adaptive / max-pool backward, log_softmax, nll_loss (summation order)
//  gemm   matmul (K up to 257, blocked summation order)
//  conv   conv2d forward / backward-data / backward-weights (sums of up to ~4k products, jit summation order)
//  bn     batch norm (statistics over N*H*W, then normalised; gradients are differences of such sums)
constexpr Tol kExact32{0, 0}, kExact64{0, 0};
constexpr Tol kElem32{1e-7, 4e-6}, kElem64{1e-15, 1e-13};
constexpr Tol kSum32{2e-6, 1e-5}, kSum64{1e-13, 1e-12};
constexpr Tol kGemm32{2e-5, 1e-4}, kGemm64{1e-13, 1e-12};
constexpr Tol kConv32{5e-5, 1e-4}, kConv64{1e-13, 1e-12};
constexpr Tol kBn32{2e-5, 1e-4}, kBn64{1e-12, 1e-11};

OpStatePtr no_state() { return nullptr; }

struct Table {
  std::vector<Row> rows;
  Row& add(std::string op, std::string variant, OpKind kind, Tol t32, Tol t64, Gen gen, Run run,
           std::vector<DType> dtypes = {DType::f32, DType::f64}) {
    rows.push_back(
        Row{std::move(op), std::move(variant), kind, t32, t64, std::move(gen), std::move(run), std::move(dtypes)});
    return rows.back();
  }
};

// ---------------------------------------------------------------- data movement
void add_fill_copy(Table& t) {
  const std::vector<DType> all = {DType::f32, DType::f64, DType::i32, DType::i64, DType::u8};
  for (double v : {2.5, -1.75}) {
    for (Layout l : {Layout::Contig, Layout::Sliced}) {
      t.add(
          "fill", std::string(layout_name(l)) + " out (9,5,3) value " + std::to_string(v), OpKind::Fill, kExact32,
          kExact64, [](DType, Rng&) { return Inputs{}; },
          [v, l](Ctx& c, const Inputs&) {
            Tensor o = c.out({9, 5, 3});
            if (l == Layout::Sliced) {  // a strided output: every other element of a wider buffer
              Tensor base = c.out({9, 5, 7});
              o = base.as_strided({9, 5, 3}, {35, 7, 2}, 1);
            }
            c.be.fill(o, v);
            return std::vector<Tensor>{o};
          },
          all);
    }
  }
  t.add(
      "fill", "large (300,301) value 3", OpKind::Fill, kExact32, kExact64, [](DType, Rng&) { return Inputs{}; },
      [](Ctx& c, const Inputs&) {
        Tensor o = c.out({300, 301});
        c.be.fill(o, 3.0);
        return std::vector<Tensor>{o};
      },
      all);
  // copy with a cast: src dtype is the row dtype, dst dtype fixed per row
  for (DType dst : all) {
    for (Layout l : {Layout::Contig, Layout::Permuted, Layout::Sliced}) {
      t.add(
          "copy", std::string(layout_name(l)) + " src (7,6,5) to " + dtype_name(dst), OpKind::Copy, kExact32, kExact64,
          [l](DType dt, Rng& rng) {
            // values with fractions and negatives: exercises truncation and u8 wrap-around
            return Inputs{
                relayout(is_floating(dt) ? uni({7, 6, 5}, dt, rng, -300, 300) : grid({7, 6, 5}, dt, rng, 0, 120), l)};
          },
          [dst](Ctx& c, const Inputs& in) {
            Tensor o = c.out(in[0].sizes(), dst);
            c.be.copy(o, in[0]);
            return std::vector<Tensor>{o};
          },
          all);
    }
  }
  t.add(
      "copy", "broadcast src (5,1,7)->(5,6,7)", OpKind::Copy, kExact32, kExact64,
      [](DType dt, Rng& rng) {
        return Inputs{expanded({5, 6, 7}, {1}, dt, rng)};
      },
      [](Ctx& c, const Inputs& in) {
        Tensor o = c.out(in[0].sizes());
        c.be.copy(o, in[0]);
        return std::vector<Tensor>{o};
      });
  t.add(
      "copy", "large permuted (257,300)", OpKind::Copy, kExact32, kExact64,
      [](DType dt, Rng& rng) {
        return Inputs{relayout(uni({257, 300}, dt, rng), Layout::Permuted)};
      },
      [](Ctx& c, const Inputs& in) {
        Tensor o = c.out(in[0].sizes());
        c.be.copy(o, in[0]);
        return std::vector<Tensor>{o};
      });
  t.add(
      "copy", "large contiguous (257,300) into sliced dst", OpKind::Copy, kExact32, kExact64,
      [](DType dt, Rng& rng) {
        return Inputs{uni({257, 300}, dt, rng)};
      },
      [](Ctx& c, const Inputs& in) {
        Tensor base = c.out({257, 601});
        Tensor o = base.as_strided({257, 300}, {601, 2}, 1);
        c.be.copy(o, in[0]);
        return std::vector<Tensor>{o};
      });
}

// ---------------------------------------------------------------- elementwise
struct UnaryCase {
  UnaryOp op;
  UnaryParams p;
  int domain;  // 0: [-2,2], 1: positive, 2: away from zero, 3: halves (round ties)
};

Tensor unary_input(int domain, const Shape& s, DType dt, Rng& rng) {
  switch (domain) {
    case 1: return uni(s, dt, rng, 0.05, 3.0);
    case 2: return away_from_zero(s, dt, rng);
    case 3: return grid(s, dt, rng, -9, 9, 0.5);
    default: return uni(s, dt, rng, -2.0, 2.0);
  }
}

void add_unary(Table& t) {
  const std::vector<UnaryCase> cases = {
      {UnaryOp::Neg, {}, 0},
      {UnaryOp::Exp, {}, 0},
      {UnaryOp::Log, {}, 1},
      {UnaryOp::Sqrt, {}, 1},
      {UnaryOp::Rsqrt, {}, 1},
      {UnaryOp::Abs, {}, 0},
      {UnaryOp::Sign, {}, 3},
      {UnaryOp::Relu, {}, 3},
      {UnaryOp::Sigmoid, {}, 0},
      {UnaryOp::Tanh, {}, 0},
      {UnaryOp::Square, {}, 0},
      {UnaryOp::Reciprocal, {}, 2},
      {UnaryOp::PowScalar, {2.5, 0}, 1},
      {UnaryOp::PowScalar, {2.0, 0}, 0},
      {UnaryOp::PowScalar, {-1.5, 0}, 1},
      {UnaryOp::Clamp, {-0.5, 0.7}, 0},
      {UnaryOp::AddScalar, {1.5, 0}, 0},
      {UnaryOp::MulScalar, {-2.0, 0}, 0},
      {UnaryOp::Affine, {0.5, -1.0}, 0},
      {UnaryOp::Round, {}, 3},
      {UnaryOp::Floor, {}, 0},
  };
  static_assert(static_cast<int>(UnaryOp::kCount) == 19, "a new UnaryOp needs a row here");
  for (const auto& uc : cases) {
    const std::string pname =
        std::string(op_name(uc.op)) + "(" + std::to_string(uc.p.a) + "," + std::to_string(uc.p.b) + ")";
    auto run = [uc](Ctx& c, const Inputs& in) {
      Tensor o = c.out_following(in[0]);
      c.be.unary(uc.op, o, in[0], uc.p);
      return std::vector<Tensor>{o};
    };
    struct Shp {
      Shape s;
      Layout l;
    };
    for (const auto& [s, l] :
         {Shp{{13, 7}, Layout::Contig}, Shp{{1, 33, 5}, Layout::Permuted}, Shp{{6, 11}, Layout::Sliced},
          Shp{{211, 163}, Layout::Contig}, Shp{{180, 190}, Layout::Permuted}, Shp{{3, 5, 4, 6}, Layout::ChannelsLast},
          Shp{{8, 16, 20, 20}, Layout::ChannelsLast}}) {
      const int dom = uc.domain;
      t.add(
          "unary", pname + " " + layout_name(l) + " " + shape_str(s), OpKind::Unary, kElem32, kElem64,
          [s, l, dom](DType dt, Rng& rng) { return Inputs{relayout(unary_input(dom, s, dt, rng), l)}; }, run);
    }
    const int dom = uc.domain;
    t.add(
        "unary", pname + " broadcast (4,1,9)->(4,5,9)", OpKind::Unary, kElem32, kElem64,
        [dom](DType dt, Rng& rng) {
          Tensor base = unary_input(dom, {4, 1, 9}, dt, rng);
          return Inputs{base.as_strided({4, 5, 9}, {9, 0, 1}, 0)};
        },
        run);
  }
}

void add_binary(Table& t) {
  static_assert(static_cast<int>(BinaryOp::kCount) == 15, "a new BinaryOp needs a row here");
  for (int i = 0; i < static_cast<int>(BinaryOp::kCount); ++i) {
    const auto op = static_cast<BinaryOp>(i);
    const bool cmp = op == BinaryOp::Eq || op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::Lt ||
                     op == BinaryOp::Le || op == BinaryOp::Maximum || op == BinaryOp::Minimum;
    // a: positive base for pow; grid values (ties) for comparisons; b: away from zero for div
    auto ga = [op, cmp](const Shape& s, DType dt, Rng& rng) {
      if (op == BinaryOp::Pow) return uni(s, dt, rng, 0.1, 2.0);
      if (cmp) return grid(s, dt, rng, -2, 2);
      if (op == BinaryOp::SigmoidBackward) return uni(s, dt, rng, -1, 1);
      return uni(s, dt, rng, -2, 2);
    };
    auto gb = [op, cmp](const Shape& s, DType dt, Rng& rng) {
      if (op == BinaryOp::Div) return away_from_zero(s, dt, rng);
      if (cmp) return grid(s, dt, rng, -2, 2);
      if (op == BinaryOp::SigmoidBackward) return uni(s, dt, rng, 0.01, 0.99);
      if (op == BinaryOp::ReluBackward) return grid(s, dt, rng, -3, 3, 0.5);
      return uni(s, dt, rng, -2, 2);
    };
    auto run = [op](Ctx& c, const Inputs& in) {
      Tensor o = c.out_following(in[0]);
      c.be.binary(op, o, in[0], in[1]);
      return std::vector<Tensor>{o};
    };
    const std::string n = op_name(op);
    // the layouts a channels-last network produces: both channels-last, or a contiguous gradient meeting a
    // channels-last activation (as after a pooling backward), and a per-channel broadcast
    t.add(
        "binary", n + " channels-last (3,6,5,4)", OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& rng) {
          return Inputs{relayout(ga({3, 6, 5, 4}, dt, rng), Layout::ChannelsLast),
                        relayout(gb({3, 6, 5, 4}, dt, rng), Layout::ChannelsLast)};
        },
        run);
    t.add(
        "binary", n + " a channels-last, b contiguous (2,9,7,3)", OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& rng) {
          return Inputs{relayout(ga({2, 9, 7, 3}, dt, rng), Layout::ChannelsLast), gb({2, 9, 7, 3}, dt, rng)};
        },
        run);
    t.add(
        "binary", n + " a channels-last, b per-channel (1,6,1,1)->(2,6,5,5)", OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& rng) {
          Tensor b = gb({1, 6, 1, 1}, dt, rng);
          return Inputs{relayout(ga({2, 6, 5, 5}, dt, rng), Layout::ChannelsLast),
                        b.as_strided({2, 6, 5, 5}, {0, 1, 0, 0}, 0)};
        },
        run);
    t.add(
        "binary", n + " contiguous (17,9)", OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& rng) {
          return Inputs{ga({17, 9}, dt, rng), gb({17, 9}, dt, rng)};
        },
        run);
    t.add(
        "binary", n + " a permuted, b sliced (3,7,5)", OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& rng) {
          return Inputs{relayout(ga({3, 7, 5}, dt, rng), Layout::Permuted),
                        relayout(gb({3, 7, 5}, dt, rng), Layout::Sliced)};
        },
        run);
    t.add(
        "binary", n + " b broadcast (6,1,5)->(6,4,5)", OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& rng) {
          Tensor b = gb({6, 1, 5}, dt, rng);
          return Inputs{ga({6, 4, 5}, dt, rng), b.as_strided({6, 4, 5}, {5, 0, 1}, 0)};
        },
        run);
    t.add(
        "binary", n + " a scalar-broadcast (1,1)->(8,13)", OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& rng) {
          Tensor a = ga({1, 1}, dt, rng);
          return Inputs{a.as_strided({8, 13}, {0, 0}, 0), gb({8, 13}, dt, rng)};
        },
        run);
    t.add(
        "binary", n + " both broadcast (1,7)x(9,1)->(9,7)", OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& rng) {
          Tensor a = ga({1, 7}, dt, rng), b = gb({9, 1}, dt, rng);
          return Inputs{a.as_strided({9, 7}, {0, 1}, 0), b.as_strided({9, 7}, {1, 0}, 0)};
        },
        run);
    t.add(
        "binary", n + " large (257,255), b row-broadcast", OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& rng) {
          Tensor b = gb({1, 255}, dt, rng);
          return Inputs{ga({257, 255}, dt, rng), b.as_strided({257, 255}, {0, 1}, 0)};
        },
        run);
    t.add(
        "binary", n + " large permuted (190,201)", OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& rng) {
          return Inputs{relayout(ga({190, 201}, dt, rng), Layout::Permuted), gb({190, 201}, dt, rng)};
        },
        run);
  }
  for (DType od : {DType::u8, DType::i64}) {
    for (BinaryOp op : {BinaryOp::Gt, BinaryOp::Eq}) {
      t.add(
          "binary", std::string(op_name(op)) + " into " + dtype_name(od) + " (11,6)", OpKind::Binary, kExact32,
          kExact64,
          [](DType dt, Rng& rng) {
            return Inputs{grid({11, 6}, dt, rng, -2, 2), grid({11, 6}, dt, rng, -2, 2)};
          },
          [op, od](Ctx& c, const Inputs& in) {
            Tensor o = c.out(in[0].sizes(), od);
            c.be.binary(op, o, in[0], in[1]);
            return std::vector<Tensor>{o};
          });
    }
  }
}

// ---------------------------------------------------------------- reductions
struct RC {
  Shape s;
  std::vector<int64_t> dims;
  Layout l;
};

std::vector<RC> fixed_reduce_cases() {
  return {
      {{5, 6, 7}, {}, Layout::Contig},
      {{5, 6, 7}, {0}, Layout::Contig},
      {{5, 6, 7}, {1}, Layout::Contig},
      {{5, 6, 7}, {2}, Layout::Contig},
      {{5, 6, 7}, {0, 1}, Layout::Contig},
      {{5, 6, 7}, {1, 2}, Layout::Contig},
      {{5, 6, 7}, {0, 2}, Layout::Contig},
      {{5, 6, 7}, {0, 1, 2}, Layout::Contig},
      {{5, 6, 7}, {1}, Layout::Permuted},
      {{5, 6, 7}, {0, 2}, Layout::Sliced},
      {{1, 9, 1}, {1}, Layout::Contig},
      {{3, 1, 4, 1}, {0, 3}, Layout::Contig},
      {{64, 1001}, {1}, Layout::Contig},
      {{1001, 64}, {0}, Layout::Contig},
      {{2, 70001}, {1}, Layout::Contig},
      {{3, 9001, 5}, {1}, Layout::Contig},
      {{120, 130}, {0}, Layout::Permuted},
      {{4, 2000, 3}, {0, 2}, Layout::Contig},
      {{8, 16, 32, 32}, {0, 2, 3}, Layout::Contig},
      {{2, 3, 4, 5}, {0, 2, 3}, Layout::Contig},
  };
}

// Random rank 1-4 shapes (extents 1-9) with a random subset of dims reduced, any layout.
std::vector<RC> random_reduce_cases(Rng& rng, int n) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<RC> v;
  for (int i = 0; i < n; ++i) {
    RC rc;
    const int rank = pick(1, 4);
    for (int d = 0; d < rank; ++d) {
      rc.s.push_back(pick(1, 9));
      if (pick(0, 1)) rc.dims.push_back(d);
    }
    rc.l = static_cast<Layout>(pick(0, 2));
    v.push_back(rc);
  }
  return v;
}

void add_reduce(Table& t, const std::vector<RC>& cases) {
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min}) {
    for (const auto& rc : cases) {
      std::string d = "dims {";
      for (int64_t x : rc.dims) d += std::to_string(x) + " ";
      d += "}";
      const bool acc = op == ReduceOp::Sum || op == ReduceOp::Mean;
      t.add(
          "reduce", std::string(op_name(op)) + " " + layout_name(rc.l) + " " + shape_str(rc.s) + " " + d,
          OpKind::Reduce, acc ? kSum32 : kExact32, acc ? kSum64 : kExact64,
          [rc](DType dt, Rng& rng) { return Inputs{relayout(uni(rc.s, dt, rng), rc.l)}; },
          [rc, op](Ctx& c, const Inputs& in) {
            Shape os = rc.s;
            for (int64_t x : rc.dims) os[static_cast<size_t>(x)] = 1;
            Tensor o = c.out(os);
            c.be.reduce(op, o, in[0], rc.dims);
            return std::vector<Tensor>{o};
          });
    }
  }
}

// ---------------------------------------------------------------- matmul
void add_matmul(Table& t, Rng& rng, int n_random) {
  struct MC {
    int64_t B, M, K, N;  // B = 0: 2-D
    bool ta, tb;
    Layout la, lb;
  };
  std::vector<MC> cases;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      cases.push_back({0, 7, 13, 5, ta, tb, Layout::Contig, Layout::Contig});
      cases.push_back({0, 1, 1, 1, ta, tb, Layout::Contig, Layout::Contig});
      cases.push_back({3, 5, 9, 4, ta, tb, Layout::Contig, Layout::Contig});
      cases.push_back({0, 11, 6, 8, ta, tb, Layout::Permuted, Layout::Sliced});
    }
  cases.push_back({0, 1, 37, 19, false, false, Layout::Contig, Layout::Contig});      // batch-1 row vector
  cases.push_back({0, 130, 257, 129, false, true, Layout::Contig, Layout::Contig});   // linear-layer shape
  cases.push_back({0, 128, 64, 10, false, false, Layout::Contig, Layout::Permuted});  // transposed view of b
  cases.push_back({2, 65, 33, 70, true, false, Layout::Permuted, Layout::Contig});    // batched, permuted a
  cases.push_back({16, 8, 8, 8, false, false, Layout::Sliced, Layout::Contig});       // many small products
  // random: batched or not, extents 1-40, either transpose, any layouts
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int i = 0; i < n_random; ++i) {
    cases.push_back({pick(0, 3), pick(1, 40), pick(1, 40), pick(1, 40), pick(0, 1) == 1, pick(0, 1) == 1,
                     static_cast<Layout>(pick(0, 2)), static_cast<Layout>(pick(0, 2))});
  }
  for (const auto& mc : cases) {
    const Shape sa =
        mc.B ? Shape{mc.B, mc.ta ? mc.K : mc.M, mc.ta ? mc.M : mc.K} : Shape{mc.ta ? mc.K : mc.M, mc.ta ? mc.M : mc.K};
    const Shape sb =
        mc.B ? Shape{mc.B, mc.tb ? mc.N : mc.K, mc.tb ? mc.K : mc.N} : Shape{mc.tb ? mc.N : mc.K, mc.tb ? mc.K : mc.N};
    const Shape so = mc.B ? Shape{mc.B, mc.M, mc.N} : Shape{mc.M, mc.N};
    const std::string v = "a " + shape_str(sa) + (mc.ta ? "^T " : " ") + layout_name(mc.la) + ", b " + shape_str(sb) +
                          (mc.tb ? "^T " : " ") + layout_name(mc.lb);
    t.add(
        "matmul", v, OpKind::Matmul, kGemm32, kGemm64,
        [=](DType dt, Rng& rng) {
          return Inputs{relayout(uni(sa, dt, rng), mc.la), relayout(uni(sb, dt, rng), mc.lb)};
        },
        [=](Ctx& c, const Inputs& in) {
          Tensor o = c.out(so);
          c.be.matmul(o, in[0], in[1], mc.ta, mc.tb);
          return std::vector<Tensor>{o};
        });
  }
}

// ---------------------------------------------------------------- convolution
struct ConvCase {
  Shape x;  // N,C,H,W
  int64_t K, R, S;
  Conv2dParams p;
  bool bias;
  Layout lx;
  std::string str() const {
    return "x " + shape_str(x) + " K" + std::to_string(K) + " " + std::to_string(R) + "x" + std::to_string(S) + " s" +
           std::to_string(p.stride_h) + "," + std::to_string(p.stride_w) + " p" + std::to_string(p.pad_h) + "," +
           std::to_string(p.pad_w) + " d" + std::to_string(p.dilation_h) + "," + std::to_string(p.dilation_w) + " g" +
           std::to_string(p.groups) + (bias ? " bias " : " ") + layout_name(lx);
  }
  Shape w() const { return {K, x[1] / p.groups, R, S}; }
  Shape y() const {
    return {x[0], K, conv_out_size(x[2], R, p.stride_h, p.pad_h, p.dilation_h),
            conv_out_size(x[3], S, p.stride_w, p.pad_w, p.dilation_w)};
  }
};

Conv2dParams cp(int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t g) {
  Conv2dParams p;
  p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw, p.dilation_h = dh, p.dilation_w = dw, p.groups = g;
  return p;
}

std::vector<ConvCase> fixed_conv_cases() {
  return {
      {{2, 3, 9, 11}, 4, 3, 3, cp(1, 1, 1, 1, 1, 1, 1), true, Layout::Contig},
      {{1, 4, 8, 8}, 6, 3, 3, cp(2, 2, 1, 1, 1, 1, 2), false, Layout::Contig},      // batch 1, stride 2, groups
      {{3, 6, 10, 9}, 6, 3, 3, cp(1, 1, 2, 2, 2, 2, 3), true, Layout::Permuted},    // dilation 2, groups 3
      {{2, 8, 7, 7}, 8, 3, 3, cp(1, 1, 1, 1, 1, 1, 8), false, Layout::Contig},      // depthwise
      {{1, 5, 13, 12}, 7, 1, 1, cp(2, 2, 0, 0, 1, 1, 1), true, Layout::Sliced},     // 1x1 stride 2, odd/even
      {{2, 3, 10, 10}, 5, 5, 3, cp(3, 2, 2, 1, 1, 1, 1), false, Layout::Contig},    // non-square everything
      {{1, 3, 7, 7}, 2, 7, 7, cp(1, 1, 3, 3, 1, 1, 1), true, Layout::Contig},       // kernel as large as input
      {{2, 4, 12, 11}, 4, 3, 2, cp(2, 1, 1, 0, 3, 2, 2), true, Layout::Contig},     // mixed dilation + groups
      {{4, 16, 32, 32}, 16, 3, 3, cp(1, 1, 1, 1, 1, 1, 1), false, Layout::Contig},  // ResNet-20 stage 1
      {{2, 16, 16, 16}, 32, 1, 1, cp(2, 2, 0, 0, 1, 1, 1), false, Layout::Contig},  // shortcut projection
      {{2, 32, 9, 9}, 64, 3, 3, cp(2, 2, 1, 1, 1, 1, 1), true, Layout::Contig},     // downsampling, odd input
      // channels-last activations in and out (how the cpu backend runs a network)
      {{4, 16, 32, 32}, 16, 3, 3, cp(1, 1, 1, 1, 1, 1, 1), false, Layout::ChannelsLast},
      {{2, 16, 16, 16}, 32, 1, 1, cp(2, 2, 0, 0, 1, 1, 1), false, Layout::ChannelsLast},
      {{2, 32, 9, 9}, 64, 3, 3, cp(2, 2, 1, 1, 1, 1, 1), true, Layout::ChannelsLast},
      {{3, 6, 10, 9}, 6, 3, 3, cp(1, 1, 2, 2, 2, 2, 3), true, Layout::ChannelsLast},
      {{2, 3, 9, 11}, 4, 3, 3, cp(1, 1, 1, 1, 1, 1, 1), true, Layout::ChannelsLast},
      // the cpu backend's Winograd F(4x4,3x3) path (3x3 stride 1, channels-last, channels % 8): partial tiles,
      // K % 16 == 8, no padding, padding 2 (backward-data runs it with padding 0)
      {{2, 16, 9, 11}, 24, 3, 3, cp(1, 1, 1, 1, 1, 1, 1), true, Layout::ChannelsLast},
      {{1, 8, 5, 7}, 8, 3, 3, cp(1, 1, 0, 0, 1, 1, 1), false, Layout::ChannelsLast},
      {{3, 32, 8, 8}, 16, 3, 3, cp(1, 1, 2, 2, 1, 1, 1), true, Layout::ChannelsLast},
      // output rows / columns made only of padding (backends/cpu/dnnl_workarounds.h): with a residual, oneDNN 2.6's
      // brgconv:avx512_core crashes on its sum post-op; the cpu backend composes conv + add + ReLU instead.
      // The reproducer's own shape (notes/onednn-avx512-sum-crash.cpp), then its variants that also crashed.
      {{1, 3, 10, 8}, 3, 1, 4, cp(1, 3, 1, 2, 1, 2, 1), true, Layout::ChannelsLast},
      {{1, 3, 10, 8}, 3, 1, 4, cp(1, 1, 1, 0, 1, 1, 1), true, Layout::ChannelsLast},    // no dilation, pw 0, sw 1
      {{2, 16, 6, 7}, 16, 1, 4, cp(1, 3, 1, 2, 1, 2, 1), false, Layout::ChannelsLast},  // C = K = 16
      {{2, 16, 5, 5}, 16, 1, 1, cp(1, 1, 1, 1, 1, 1, 1), true, Layout::ChannelsLast},   // 1x1 pad 1: both axes
      {{1, 8, 6, 5}, 8, 3, 1, cp(1, 1, 1, 3, 1, 1, 1), true, Layout::ChannelsLast},     // columns only
      {{2, 4, 7, 9}, 4, 1, 3, cp(2, 1, 1, 1, 1, 1, 1), true, Layout::Contig},           // plain NCHW, stride 2
  };
}

// Random configurations: batch 1-3, groups dividing both channel counts, odd and even extents, stride 1-3,
// padding 0-2, dilation 1-2, any layout. Drawn once from the suite's seed, printed in the case name.
std::vector<ConvCase> random_conv_cases(Rng& rng, int n) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<ConvCase> v;
  while (static_cast<int>(v.size()) < n) {
    const int64_t g = pick(1, 3), C = g * pick(1, 4), K = g * pick(1, 4), R = pick(1, 4), S = pick(1, 4);
    const Conv2dParams p = cp(pick(1, 3), pick(1, 3), pick(0, 2), pick(0, 2), pick(1, 2), pick(1, 2), g);
    const Shape x{pick(1, 3), C, pick(1, 13), pick(1, 13)};
    // the dilated kernel must fit the padded input (conv_out_size truncates, so test the extent itself)
    if (x[2] + 2 * p.pad_h < (R - 1) * p.dilation_h + 1 || x[3] + 2 * p.pad_w < (S - 1) * p.dilation_w + 1) continue;
    v.push_back({x, K, R, S, p, pick(0, 1) == 1, static_cast<Layout>(pick(0, 2))});
  }
  return v;
}

void add_conv(Table& t, const std::vector<ConvCase>& cases) {
  for (const auto& cc : cases) {
    // activation-shaped outputs: channels-last cases get them the way autograd allocates them on the backend
    const bool cl = cc.lx == Layout::ChannelsLast;
    auto act = [cl](Ctx& c, const Shape& s) { return cl ? c.act_out(s) : c.out(s); };
    t.add(
        "conv2d_forward", cc.str(), OpKind::Conv2d, kConv32, kConv64,
        [cc](DType dt, Rng& rng) {
          return Inputs{relayout(uni(cc.x, dt, rng), cc.lx), uni(cc.w(), dt, rng, -0.5, 0.5),
                        cc.bias ? uni({cc.K}, dt, rng) : Tensor()};
        },
        [cc, act](Ctx& c, const Inputs& in) {
          Tensor y = act(c, cc.y());
          OpStatePtr st = no_state();
          c.be.conv2d_forward(y, in[0], in[1], in[2], cc.p, st);
          return std::vector<Tensor>{y};
        });
    t.add(
        "conv2d_backward_data", cc.str(), OpKind::Conv2d, kConv32, kConv64,
        [cc](DType dt, Rng& rng) {
          return Inputs{relayout(uni(cc.y(), dt, rng), cc.lx), uni(cc.w(), dt, rng, -0.5, 0.5), uni(cc.x, dt, rng)};
        },
        [cc, act](Ctx& c, const Inputs& in) {
          // forward first, so a backend that keeps state from forward is exercised the way autograd calls it
          Tensor y = act(c, cc.y()), gx = act(c, cc.x);
          OpStatePtr st = no_state();
          c.be.conv2d_forward(y, in[2], in[1], Tensor(), cc.p, st);
          c.be.conv2d_backward_data(gx, in[0], in[1], cc.p, st);
          return std::vector<Tensor>{gx};
        });
    // the way autograd calls them: one state from forward through backward-data then backward-weight, twice
    // (a second gradient must not be served from what the first call left in the state)
    t.add(
        "conv2d_backward_data", cc.str() + " +weight, shared state, 2 steps", OpKind::Conv2d, kConv32, kConv64,
        [cc, cl](DType dt, Rng& rng) {
          return Inputs{cl ? relayout(uni(cc.x, dt, rng), cc.lx) : uni(cc.x, dt, rng), uni(cc.w(), dt, rng, -0.5, 0.5),
                        relayout(uni(cc.y(), dt, rng), cc.lx), uni(cc.y(), dt, rng)};
        },
        [cc, act](Ctx& c, const Inputs& in) {
          Tensor y = act(c, cc.y());
          OpStatePtr st = no_state();
          c.be.conv2d_forward(y, in[0], in[1], Tensor(), cc.p, st);
          std::vector<Tensor> outs;
          for (int step = 0; step < 2; ++step) {
            Tensor gx = act(c, cc.x), gw = c.out(cc.w());
            Tensor gb = cc.bias ? c.out({cc.K}) : Tensor();
            c.be.conv2d_backward_data(gx, in[2 + step], in[1], cc.p, st);
            c.be.conv2d_backward_weight(gw, gb, in[2 + step], in[0], cc.p, st);
            outs.insert(outs.end(), {gx, gw});
            if (cc.bias) outs.push_back(gb);
          }
          return outs;
        });
    // inference: bias, then optionally a residual (in the case's layout) and a ReLU, fused on fast backends
    for (const int mode : {0, 1, 2}) {  // 0: bias + relu, 1: + residual + relu, 2: + residual, no relu
      const bool res = mode >= 1, rl = mode <= 1;
      t.add(
          "conv2d_inference", cc.str() + (res ? " +residual" : "") + (rl ? " +relu" : ""), OpKind::Conv2d, kConv32,
          kConv64,
          [cc, res](DType dt, Rng& rng) {
            return Inputs{relayout(uni(cc.x, dt, rng), cc.lx), uni(cc.w(), dt, rng, -0.5, 0.5), uni({cc.K}, dt, rng),
                          res ? relayout(uni(cc.y(), dt, rng), cc.lx) : Tensor()};
          },
          [cc, act, rl](Ctx& c, const Inputs& in) {
            Tensor y = act(c, cc.y());
            c.be.conv2d_inference(y, in[0], in[1], in[2], cc.p, in[3], rl);
            return std::vector<Tensor>{y};
          });
    }
    t.add(
        "conv2d_backward_weight", cc.str(), OpKind::Conv2d, kConv32, kConv64,
        [cc](DType dt, Rng& rng) {
          return Inputs{relayout(uni(cc.y(), dt, rng), cc.lx), relayout(uni(cc.x, dt, rng), cc.lx),
                        uni(cc.w(), dt, rng, -0.5, 0.5)};
        },
        [cc, act](Ctx& c, const Inputs& in) {
          Tensor y = act(c, cc.y()), gw = c.out(cc.w());
          Tensor gb = cc.bias ? c.out({cc.K}) : Tensor();
          OpStatePtr st = no_state();
          c.be.conv2d_forward(y, in[1], in[2], Tensor(), cc.p, st);
          c.be.conv2d_backward_weight(gw, gb, in[0], in[1], cc.p, st);
          std::vector<Tensor> outs{gw};
          if (cc.bias) outs.push_back(gb);
          return outs;
        });
  }
}

// ---------------------------------------------------------------- batch norm
void add_batch_norm(Table& t, Rng& rng, int n_random) {
  struct BC {
    Shape x;
    bool affine;
    Layout l;
  };
  std::vector<BC> cases = {
      {{4, 3, 5, 7}, true, Layout::Contig},
      {{1, 8, 3, 3}, true, Layout::Contig},  // batch 1
      {{16, 5}, true, Layout::Contig},
      {{6, 4, 1, 9}, false, Layout::Contig},  // (N,C), H = 1
      {{3, 6, 4, 5}, false, Layout::Permuted},
      {{2, 7, 6, 5}, true, Layout::Sliced},
      {{8, 16, 16, 16}, true, Layout::Contig},
      {{2, 3, 1, 1}, true, Layout::Contig},  // 2 values per channel
      {{8, 16, 16, 16}, true, Layout::ChannelsLast},
      {{3, 5, 7, 6}, false, Layout::ChannelsLast},
      {{300, 4, 3, 3}, true, Layout::ChannelsLast},  // more rows than one summation block
  };
  // random: (N,C) or (N,C,H,W), batch 1-5, channels 1-6, extents 1-7 (at least 2 values per channel)
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int n_fixed = static_cast<int>(cases.size());
  while (static_cast<int>(cases.size()) < n_fixed + n_random) {
    Shape x{pick(1, 5), pick(1, 6)};
    if (pick(0, 2)) x.insert(x.end(), {pick(1, 7), pick(1, 7)});
    if (shape_numel(x) / x[1] < 2) continue;
    cases.push_back({x, pick(0, 1) == 1, static_cast<Layout>(pick(0, 2))});
  }
  const double eps = 1e-5;
  for (const auto& bc : cases) {
    const int64_t C = bc.x[1];
    const bool cl = bc.l == Layout::ChannelsLast;
    auto act = [cl](Ctx& c, const Shape& s) { return cl ? c.act_out(s) : c.out(s); };
    const std::string v = shape_str(bc.x) + (bc.affine ? " affine " : " no-affine ") + layout_name(bc.l);
    auto affine = [bc, C](DType dt, Rng& rng, Inputs& in) {
      in.push_back(bc.affine ? uni({C}, dt, rng, 0.5, 1.5) : Tensor());
      in.push_back(bc.affine ? uni({C}, dt, rng) : Tensor());
    };
    t.add(
        "batch_norm_forward_training", v, OpKind::BatchNorm, kBn32, kBn64,
        [=](DType dt, Rng& rng) {
          Inputs in{relayout(uni(bc.x, dt, rng, -1.0, 3.0), bc.l)};
          affine(dt, rng, in);
          return in;
        },
        [=](Ctx& c, const Inputs& in) {
          Tensor y = act(c, bc.x), m = c.out({C}), is = c.out({C});
          OpStatePtr st = no_state();
          c.be.batch_norm_forward_training(y, m, is, in[0], in[1], in[2], eps, st);
          return std::vector<Tensor>{y, m, is};
        });
    t.add(
        "batch_norm_forward_inference", v, OpKind::BatchNorm, kBn32, kBn64,
        [=](DType dt, Rng& rng) {
          Inputs in{relayout(uni(bc.x, dt, rng, -1.0, 3.0), bc.l)};
          affine(dt, rng, in);
          in.push_back(uni({C}, dt, rng, -0.5, 0.5));
          in.push_back(uni({C}, dt, rng, 0.2, 2.0));
          return in;
        },
        [=](Ctx& c, const Inputs& in) {
          Tensor y = act(c, bc.x);
          c.be.batch_norm_forward_inference(y, in[0], in[3], in[4], in[1], in[2], eps);
          return std::vector<Tensor>{y};
        });
    t.add(
        "batch_norm_relu_forward_training", v, OpKind::BatchNorm, kBn32, kBn64,
        [=](DType dt, Rng& rng) {
          Inputs in{relayout(uni(bc.x, dt, rng, -1.0, 3.0), bc.l)};
          affine(dt, rng, in);
          return in;
        },
        [=](Ctx& c, const Inputs& in) {
          Tensor y = act(c, bc.x), m = c.out({C}), is = c.out({C});
          OpStatePtr st = no_state();
          c.be.batch_norm_relu_forward_training(y, m, is, in[0], in[1], in[2], eps, st);
          return std::vector<Tensor>{y, m, is};
        });
    t.add(
        "batch_norm_relu_backward", v, OpKind::BatchNorm, kBn32, kBn64,
        [=](DType dt, Rng& rng) {
          Inputs in{relayout(uni(bc.x, dt, rng, -1.0, 3.0), bc.l)};
          affine(dt, rng, in);
          in.push_back(relayout(uni(bc.x, dt, rng), bc.l));  // gy
          return in;
        },
        [=](Ctx& c, const Inputs& in) {
          Tensor y = act(c, bc.x), m = c.out({C}), is = c.out({C});
          OpStatePtr st = no_state();
          c.be.batch_norm_relu_forward_training(y, m, is, in[0], in[1], in[2], eps, st);
          Tensor gx = act(c, bc.x), gw = c.out({C}), gb = c.out({C});
          c.be.batch_norm_relu_backward(gx, gw, gb, in[3], y, in[0], m, is, in[1], eps, st);
          return std::vector<Tensor>{gx, gw, gb};
        });
    // batch norm + residual add + ReLU: the residual in x's layout and in another one (channels-last against plain,
    // or permuted); backward with every output, without gx and the parameters' (only the residual needs one), and
    // without gresidual; gresidual allocated in the residual's layout
    const Layout other = bc.x.size() == 4 && bc.l != Layout::ChannelsLast ? Layout::ChannelsLast
                         : bc.l == Layout::ChannelsLast                   ? Layout::Contig
                                                                          : Layout::Permuted;
    for (Layout rl : {bc.l, other}) {
      const bool rcl = rl == Layout::ChannelsLast;
      auto res_out = [rcl](Ctx& c, const Shape& s) { return rcl ? c.act_out(s) : c.out(s); };
      const std::string rv = v + ", residual " + layout_name(rl);
      auto gen = [=](DType dt, Rng& rng) {
        Inputs in{relayout(uni(bc.x, dt, rng, -1.0, 3.0), bc.l)};
        affine(dt, rng, in);
        in.push_back(relayout(uni(bc.x, dt, rng), rl));    // residual
        in.push_back(relayout(uni(bc.x, dt, rng), bc.l));  // gy
        return in;
      };
      t.add("batch_norm_add_relu_forward_training", rv, OpKind::BatchNorm, kBn32, kBn64, gen,
            [=](Ctx& c, const Inputs& in) {
              Tensor y = act(c, bc.x), m = c.out({C}), is = c.out({C});
              OpStatePtr st = no_state();
              c.be.batch_norm_add_relu_forward_training(y, m, is, in[0], in[3], in[1], in[2], eps, st);
              return std::vector<Tensor>{y, m, is};
            });
      enum Want { All, ResidualOnly, NoResidual };
      for (Want want : {All, ResidualOnly, NoResidual}) {
        if (rl != bc.l && want != All) continue;
        const char* wname = want == All ? " all grads" : want == ResidualOnly ? " gresidual only" : " no gresidual";
        t.add("batch_norm_add_relu_backward", rv + wname, OpKind::BatchNorm, kBn32, kBn64, gen,
              [=](Ctx& c, const Inputs& in) {
                Tensor y = act(c, bc.x), m = c.out({C}), is = c.out({C});
                OpStatePtr st = no_state();
                c.be.batch_norm_add_relu_forward_training(y, m, is, in[0], in[3], in[1], in[2], eps, st);
                Tensor gx, gr, gw, gb;
                if (want != ResidualOnly) {
                  gx = act(c, bc.x);
                  gw = c.out({C});
                  gb = c.out({C});
                }
                if (want != NoResidual) gr = res_out(c, bc.x);
                c.be.batch_norm_add_relu_backward(gx, gr, gw, gb, in[4], y, in[0], m, is, in[1], eps, st);
                std::vector<Tensor> outs;
                for (const Tensor& o : {gx, gr, gw, gb})
                  if (o.defined()) outs.push_back(o);
                return outs;
              });
      }
    }
    for (bool want_params : {true, false}) {
      t.add(
          "batch_norm_backward", v + (want_params ? " +param grads" : " gx only"), OpKind::BatchNorm, kBn32, kBn64,
          [=](DType dt, Rng& rng) {
            Inputs in{relayout(uni(bc.x, dt, rng, -1.0, 3.0), bc.l)};
            affine(dt, rng, in);
            in.push_back(relayout(uni(bc.x, dt, rng), bc.l));  // gy
            return in;
          },
          [=](Ctx& c, const Inputs& in) {
            Tensor y = act(c, bc.x), m = c.out({C}), is = c.out({C});
            OpStatePtr st = no_state();
            c.be.batch_norm_forward_training(y, m, is, in[0], in[1], in[2], eps, st);
            Tensor gx = act(c, bc.x);
            Tensor gw = want_params ? c.out({C}) : Tensor(), gb = want_params ? c.out({C}) : Tensor();
            c.be.batch_norm_backward(gx, gw, gb, in[3], in[0], m, is, in[1], eps, st);
            std::vector<Tensor> outs{gx};
            if (want_params) outs.insert(outs.end(), {gw, gb});
            return outs;
          });
    }
  }
}

// ---------------------------------------------------------------- pooling
Pool2dParams pp(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, bool include_pad = true) {
  Pool2dParams p;
  p.kernel_h = kh, p.kernel_w = kw, p.stride_h = sh, p.stride_w = sw, p.pad_h = ph, p.pad_w = pw;
  p.count_include_pad = include_pad;
  return p;
}

struct PC {
  Shape x;
  Pool2dParams p;
  Layout l;
};

std::vector<PC> fixed_pool_cases() {
  return {
      {{2, 3, 9, 11}, pp(3, 3, 2, 2, 1, 1), Layout::Contig},
      {{2, 3, 9, 11}, pp(3, 3, 2, 2, 1, 1, false), Layout::Contig},
      {{1, 4, 8, 8}, pp(2, 2, 2, 2, 0, 0), Layout::Contig},    // batch 1
      {{2, 2, 7, 6}, pp(3, 2, 1, 1, 1, 1), Layout::Permuted},  // overlapping, stride 1
      {{2, 2, 7, 6}, pp(3, 2, 1, 1, 1, 1, false), Layout::Sliced},
      {{3, 5, 11, 10}, pp(3, 2, 2, 1, 1, 0), Layout::Contig},         // non-square
      {{1, 1, 5, 5}, pp(5, 5, 1, 1, 2, 2, false), Layout::Contig},    // window covers everything
      {{8, 16, 32, 32}, pp(3, 3, 2, 2, 1, 1), Layout::Contig},        // ResNet-18 stem shape, parallel path
      {{8, 16, 32, 32}, pp(3, 3, 2, 2, 1, 1), Layout::ChannelsLast},  // the same in a channels-last network
      {{2, 5, 9, 7}, pp(3, 2, 2, 1, 1, 1), Layout::ChannelsLast},
      {{1, 3, 5, 5}, pp(5, 5, 1, 1, 2, 2, false), Layout::ChannelsLast},
  };
}

// Random windows 1-4, strides 1-3, padding up to half the window, both count_include_pad settings.
std::vector<PC> random_pool_cases(Rng& rng, int n) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<PC> v;
  while (static_cast<int>(v.size()) < n) {
    const int kh = pick(1, 4), kw = pick(1, 4);
    const Pool2dParams p = pp(kh, kw, pick(1, 3), pick(1, 3), pick(0, kh / 2), pick(0, kw / 2));
    const Shape x{pick(1, 3), pick(1, 4), pick(1, 12), pick(1, 12)};
    if (x[2] + 2 * p.pad_h < kh || x[3] + 2 * p.pad_w < kw) continue;  // window must fit the padded input
    const auto l = static_cast<Layout>(pick(0, 2));
    v.push_back({x, p, l});
    Pool2dParams q = p;  // the same geometry without counting the padding (avg pool only)
    q.count_include_pad = false;
    v.push_back({x, q, l});
  }
  return v;
}

// Max-pool outputs as autograd allocates them: y and its indices share the layout (channels-last in a
// channels-last network on a backend that prefers it).
std::pair<Tensor, Tensor> max_pool_outputs(Ctx& c, const Shape& ys, Layout l) {
  if (l != Layout::ChannelsLast || !c.be.prefers_channels_last(c.dt)) return {c.out(ys), c.out(ys, DType::i64)};
  Tensor idx = empty(ys, TensorOptions{}.dtype(DType::i64).device(c.dev), MemoryFormat::ChannelsLast);
  c.be.fill(idx, -7.0);
  return {c.act_out(ys), idx};
}

void add_pool(Table& t, const std::vector<PC>& cases) {
  for (const auto& pc : cases) {
    const Shape ys{pc.x[0], pc.x[1], conv_out_size(pc.x[2], pc.p.kernel_h, pc.p.stride_h, pc.p.pad_h),
                   conv_out_size(pc.x[3], pc.p.kernel_w, pc.p.stride_w, pc.p.pad_w)};
    const std::string v = shape_str(pc.x) + " k" + std::to_string(pc.p.kernel_h) + "x" + std::to_string(pc.p.kernel_w) +
                          " s" + std::to_string(pc.p.stride_h) + "," + std::to_string(pc.p.stride_w) + " p" +
                          std::to_string(pc.p.pad_h) + "," + std::to_string(pc.p.pad_w) +
                          (pc.p.count_include_pad ? " incl-pad " : " excl-pad ") + layout_name(pc.l);
    const bool first_of_pair = pc.p.count_include_pad;  // max pool ignores count_include_pad: run it once
    if (first_of_pair) {
      t.add(
          "max_pool2d_forward", v, OpKind::MaxPool2d, kExact32, kExact64,
          [pc](DType dt, Rng& rng) { return Inputs{relayout(uni(pc.x, dt, rng), pc.l)}; },
          [pc, ys](Ctx& c, const Inputs& in) {
            auto [y, idx] = max_pool_outputs(c, ys, pc.l);
            c.be.max_pool2d_forward(y, idx, in[0], pc.p);
            return std::vector<Tensor>{y, idx};
          });
      t.add(
          "max_pool2d_backward", v, OpKind::MaxPool2d, kSum32, kSum64,
          [pc, ys](DType dt, Rng& rng) {
            return Inputs{relayout(uni(pc.x, dt, rng), pc.l), relayout(uni(ys, dt, rng), pc.l)};
          },
          [pc, ys](Ctx& c, const Inputs& in) {
            auto [y, idx] = max_pool_outputs(c, ys, pc.l);
            Tensor gx = pc.l == Layout::ChannelsLast ? c.act_out(pc.x) : c.out(pc.x);
            c.be.max_pool2d_forward(y, idx, in[0], pc.p);
            c.be.max_pool2d_backward(gx, in[1], idx, pc.p);
            return std::vector<Tensor>{gx};
          });
    }
    t.add(
        "avg_pool2d_forward", v, OpKind::AvgPool2d, kSum32, kSum64,
        [pc](DType dt, Rng& rng) { return Inputs{relayout(uni(pc.x, dt, rng), pc.l)}; },
        [pc, ys](Ctx& c, const Inputs& in) {
          Tensor y = c.out(ys);
          c.be.avg_pool2d_forward(y, in[0], pc.p);
          return std::vector<Tensor>{y};
        });
    t.add(
        "avg_pool2d_backward", v, OpKind::AvgPool2d, kSum32, kSum64,
        [pc, ys](DType dt, Rng& rng) { return Inputs{relayout(uni(ys, dt, rng), pc.l)}; },
        [pc](Ctx& c, const Inputs& in) {
          Tensor gx = c.out(pc.x);
          c.be.avg_pool2d_backward(gx, in[0], pc.p);
          return std::vector<Tensor>{gx};
        });
  }
}

void add_adaptive_pool(Table& t) {
  struct AC {
    Shape x;
    int64_t P, Q;
    Layout l;
  };
  for (const auto& ac : std::vector<AC>{{{2, 3, 7, 9}, 3, 4, Layout::Contig},
                                        {{2, 5, 8, 8}, 1, 1, Layout::Permuted},  // global pooling
                                        {{1, 2, 5, 5}, 5, 5, Layout::Contig},    // identity cells
                                        {{2, 3, 10, 6}, 4, 3, Layout::Sliced},   // overlapping cells
                                        {{3, 2, 4, 5}, 6, 7, Layout::Contig},    // upsampling cells
                                        {{16, 64, 8, 8}, 1, 1, Layout::Contig}}) {
    const Shape ys{ac.x[0], ac.x[1], ac.P, ac.Q};
    const std::string v =
        shape_str(ac.x) + " -> " + std::to_string(ac.P) + "x" + std::to_string(ac.Q) + " " + layout_name(ac.l);
    t.add(
        "adaptive_avg_pool2d_forward", v, OpKind::AdaptiveAvgPool2d, kSum32, kSum64,
        [ac](DType dt, Rng& rng) { return Inputs{relayout(uni(ac.x, dt, rng), ac.l)}; },
        [ys](Ctx& c, const Inputs& in) {
          Tensor y = c.out(ys);
          c.be.adaptive_avg_pool2d_forward(y, in[0]);
          return std::vector<Tensor>{y};
        });
    t.add(
        "adaptive_avg_pool2d_backward", v, OpKind::AdaptiveAvgPool2d, kSum32, kSum64,
        [ac, ys](DType dt, Rng& rng) { return Inputs{relayout(uni(ys, dt, rng), ac.l)}; },
        [ac](Ctx& c, const Inputs& in) {
          Tensor gx = c.out(ac.x);
          c.be.adaptive_avg_pool2d_backward(gx, in[0]);
          return std::vector<Tensor>{gx};
        });
  }
}

// ---------------------------------------------------------------- softmax and loss
void add_softmax_loss(Table& t) {
  struct SC {
    Shape x;
    Layout l;
  };
  for (const auto& sc : std::vector<SC>{{{7, 10}, Layout::Contig},
                                        {{1, 1000}, Layout::Contig},
                                        {{64, 10}, Layout::Permuted},
                                        {{5, 1}, Layout::Contig},
                                        {{9, 13}, Layout::Sliced},
                                        {{3, 4, 5}, Layout::Contig},
                                        {{512, 100}, Layout::Contig}}) {
    const std::string v = shape_str(sc.x) + " " + layout_name(sc.l);
    t.add(
        "log_softmax_forward", v, OpKind::LogSoftmax, kSum32, kSum64,
        [sc](DType dt, Rng& rng) { return Inputs{relayout(uni(sc.x, dt, rng, -8, 8), sc.l)}; },
        [sc](Ctx& c, const Inputs& in) {
          Tensor y = c.out(sc.x);
          c.be.log_softmax_forward(y, in[0]);
          return std::vector<Tensor>{y};
        });
    t.add(
        "log_softmax_backward", v, OpKind::LogSoftmax, kSum32, kSum64,
        [sc](DType dt, Rng& rng) {
          Tensor x = uni(sc.x, dt, rng, -4, 4), y = empty(sc.x, TensorOptions{}.dtype(dt));
          ref().log_softmax_forward(y, x);  // a genuine log-softmax output
          return Inputs{relayout(uni(sc.x, dt, rng), sc.l), relayout(y, sc.l)};
        },
        [sc](Ctx& c, const Inputs& in) {
          Tensor gx = c.out(sc.x);
          c.be.log_softmax_backward(gx, in[0], in[1]);
          return std::vector<Tensor>{gx};
        });
  }
  struct NC {
    int64_t N, C;
    double s;
    DType tdt;
    Layout l;
  };
  for (const auto& nc : std::vector<NC>{{7, 10, 0.0, DType::i64, Layout::Contig},
                                        {7, 10, 0.1, DType::i64, Layout::Permuted},
                                        {1, 5, 0.0, DType::i64, Layout::Contig},
                                        {1, 5, 0.3, DType::i32, Layout::Contig},
                                        {128, 10, 0.1, DType::i64, Layout::Sliced},
                                        {300, 1000, 0.0, DType::i32, Layout::Contig}}) {
    const std::string v = "N" + std::to_string(nc.N) + " C" + std::to_string(nc.C) + " smoothing " +
                          std::to_string(nc.s) + " target " + dtype_name(nc.tdt) + " " + layout_name(nc.l);
    t.add(
        "nll_loss_forward", v, OpKind::NllLoss, kSum32, kSum64,
        [nc](DType dt, Rng& rng) {
          Tensor x = uni({nc.N, nc.C}, dt, rng, -4, 4), lp = empty({nc.N, nc.C}, TensorOptions{}.dtype(dt));
          ref().log_softmax_forward(lp, x);
          return Inputs{relayout(lp, nc.l), targets(nc.N, nc.C, rng, nc.tdt)};
        },
        [nc](Ctx& c, const Inputs& in) {
          Tensor loss = c.out({});
          c.be.nll_loss_forward(loss, in[0], in[1], nc.s);
          return std::vector<Tensor>{loss};
        });
    t.add(
        "nll_loss_backward", v, OpKind::NllLoss, kSum32, kSum64,
        [nc](DType dt, Rng& rng) {
          return Inputs{uni({}, dt, rng, 0.5, 2.0), targets(nc.N, nc.C, rng, nc.tdt)};
        },
        [nc](Ctx& c, const Inputs& in) {
          Tensor g = c.out({nc.N, nc.C});
          c.be.nll_loss_backward(g, in[0], in[1], nc.s);
          return std::vector<Tensor>{g};
        });
  }
}

// Random broadcasting: rank 1-4, extents 1-7; each operand independently broadcast along a random subset of
// dims (stride 0) or laid out in a random layout.
void add_random_binary(Table& t, Rng& rng, int n) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const BinaryOp ops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Maximum, BinaryOp::ReluBackward};
  for (int i = 0; i < n; ++i) {
    Shape s;
    std::vector<int64_t> ba, bb;
    const int rank = pick(1, 4);
    for (int d = 0; d < rank; ++d) {
      s.push_back(pick(1, 7));
      if (pick(0, 2) == 0) ba.push_back(d);
      if (pick(0, 2) == 0) bb.push_back(d);
    }
    const BinaryOp op = ops[pick(0, 4)];
    const auto la = static_cast<Layout>(pick(0, 2));
    auto dims = [](const std::vector<int64_t>& v) {
      std::string r = "{";
      for (int64_t d : v) r += std::to_string(d) + " ";
      return r + "}";
    };
    t.add(
        "binary",
        std::string(op_name(op)) + " random " + shape_str(s) + " a bcast " + dims(ba) + " " + layout_name(la) +
            ", b bcast " + dims(bb),
        OpKind::Binary, kElem32, kElem64,
        [=](DType dt, Rng& r) {
          Tensor a = ba.empty() ? relayout(uni(s, dt, r), la) : expanded(s, ba, dt, r);
          return Inputs{a, expanded(s, bb, dt, r)};
        },
        [op](Ctx& c, const Inputs& in) {
          Tensor o = c.out(in[0].sizes());
          c.be.binary(op, o, in[0], in[1]);
          return std::vector<Tensor>{o};
        });
  }
}

// ---------------------------------------------------------------- quantization
void add_quant(Table& t) {
  struct QC {
    std::vector<double> levels;
    bool symmetric;
    Shape s;
    Layout l;
    std::string name;
  };
  std::vector<double> pot{0.0, 0.125, 0.25, 0.5, 1.0};  // power-of-two set, non-negative (symmetric use)
  std::vector<double> uni8;                             // 8-bit uniform: the binary-search path
  for (int i = -128; i < 128; ++i) uni8.push_back(i / 64.0);
  const std::vector<QC> cases = {{{-1.0, -1.0 / 3, 1.0 / 3, 1.0}, false, {7, 9}, Layout::Contig, "2-bit uniform"},
                                 {pot, true, {5, 6, 7}, Layout::Permuted, "PoT symmetric"},
                                 {{0.5}, false, {11}, Layout::Contig, "single level"},
                                 {uni8, false, {190, 201}, Layout::Sliced, "8-bit uniform, large"},
                                 {uni8, true, {33, 17}, Layout::Contig, "8-bit symmetric"}};
  for (const auto& qc : cases) {
    Row& r = t.add(
        "project_to_levels", qc.name + " " + shape_str(qc.s) + " " + layout_name(qc.l), OpKind::Quantize, kExact32,
        kExact64,
        [qc](DType dt, Rng& rng) {
          // every third input is exactly a level or a midpoint: ties must go to the lower level
          Tensor x64 = uni(qc.s, DType::f64, rng, -2.5, 2.5);
          double* p = x64.data<double>();
          const auto& lv = qc.levels;
          for (int64_t i = 0; i < x64.numel(); i += 3) {
            const size_t k = static_cast<size_t>(i / 3) % lv.size();
            p[i] = ((i / 3) % 2 || k + 1 == lv.size()) ? lv[k] : (lv[k] + lv[k + 1]) / 2;
          }
          Tensor x = empty(qc.s, TensorOptions{}.dtype(dt));
          ref().copy(x, x64);
          const int64_t L = static_cast<int64_t>(lv.size());
          Tensor levels = empty({L}, TensorOptions{}.dtype(dt));
          ref().copy(levels, from_vector(lv, {L}, TensorOptions{}.dtype(DType::f64)));
          return Inputs{relayout(x, qc.l), levels};
        },
        [qc](Ctx& c, const Inputs& in) {
          Tensor o = c.out(in[0].sizes());
          c.be.project_to_levels(o, in[0], in[1], qc.symmetric);
          return std::vector<Tensor>{o};
        });
    r.ask_supports = false;  // the Backend base class has the reference: every backend runs it
  }
}

/// The seed of the random cases: fixed so CI is reproducible; MINIDL_CONFORMANCE_SEED explores others.
uint64_t suite_seed() {
  const char* e = std::getenv("MINIDL_CONFORMANCE_SEED");
  return e && *e ? std::strtoull(e, nullptr, 10) : 20261124ULL;
}

const std::vector<Row>& table() {
  static const std::vector<Row> rows = [] {
    Table t;
    add_fill_copy(t);
    add_unary(t);
    add_binary(t);
    Rng rng(suite_seed());
    add_random_binary(t, rng, 12);
    add_reduce(t, fixed_reduce_cases());
    add_reduce(t, random_reduce_cases(rng, 12));
    add_matmul(t, rng, 10);
    add_conv(t, fixed_conv_cases());
    add_conv(t, random_conv_cases(rng, 16));
    add_batch_norm(t, rng, 8);
    add_pool(t, fixed_pool_cases());
    add_pool(t, random_pool_cases(rng, 8));
    add_adaptive_pool(t);
    add_softmax_loss(t);
    add_quant(t);
    for (Row& r : quant_clip_rows()) t.rows.push_back(std::move(r));
    for (Row& r : actnn_rows()) t.rows.push_back(std::move(r));
    for (Row& r : optim_update_rows()) t.rows.push_back(std::move(r));
    return t.rows;
  }();
  return rows;
}

void run_kind(OpKind k) {
  if (runnable_backends().empty()) MINIDL_SKIP("no backend besides ref can run here (" << cuda_device_status() << ")");
  bool own_kernel = false;  // cuda-host alone has no conv / matmul of its own (it delegates them to ref)
  for (const std::string& name : runnable_backends()) own_kernel = own_kernel || !delegates_to_ref(name, k);
  if (!own_kernel) MINIDL_SKIP(op_name(k) << ": no backend besides ref has its own kernel here");
  const int n = run_rows(table(), [k](const Row& r) { return r.kind == k; });
  MESSAGE(std::string(op_name(k)), ": ", n, " outputs compared against ref");
  // a case that compared nothing (no rows of this kind, or every row skipped) must not pass
  CHECK_MESSAGE(n > 0, op_name(k), ": no output was compared against ref");
}

}  // namespace

TEST_CASE("conformance: the table covers every Backend primitive") {
  const std::set<std::string> primitives = {"fill",
                                            "copy",
                                            "unary",
                                            "binary",
                                            "reduce",
                                            "matmul",
                                            "conv2d_forward",
                                            "conv2d_backward_data",
                                            "conv2d_backward_weight",
                                            "conv2d_inference",
                                            "batch_norm_forward_training",
                                            "batch_norm_forward_inference",
                                            "batch_norm_backward",
                                            "batch_norm_relu_forward_training",
                                            "batch_norm_relu_backward",
                                            "batch_norm_add_relu_forward_training",
                                            "batch_norm_add_relu_backward",
                                            "max_pool2d_forward",
                                            "max_pool2d_backward",
                                            "avg_pool2d_forward",
                                            "avg_pool2d_backward",
                                            "adaptive_avg_pool2d_forward",
                                            "adaptive_avg_pool2d_backward",
                                            "log_softmax_forward",
                                            "log_softmax_backward",
                                            "nll_loss_forward",
                                            "nll_loss_backward",
                                            "project_to_levels",
                                            "quantize_clip_forward",
                                            "quantize_clip_backward",
                                            "quantize_clip_backward_from_input",
                                            "pact_forward",
                                            "pact_backward_from_input",
                                            "actnn_quantize",
                                            "actnn_dequantize",
                                            "pack_mask_bits",
                                            "unpack_mask_bits",
                                            "mask_from_bits_",
                                            "sgd_update",
                                            "adam_update",
                                            "hysteresis_update"};
  std::set<std::string> seen;
  for (const Row& r : table()) seen.insert(r.op);
  for (const auto& p : primitives) CHECK_MESSAGE(seen.count(p) == 1, "no conformance row for primitive ", p);
  CHECK(seen.size() == primitives.size());
}

TEST_CASE("conformance: non-ref CPU backends are deterministic (bit-identical on repeat)") {
  // the heavy and the reducing primitives, where a parallel split or a kernel choice could vary run to run
  const std::set<OpKind> kinds = {OpKind::Reduce,    OpKind::Matmul,     OpKind::Conv2d, OpKind::BatchNorm,
                                  OpKind::AvgPool2d, OpKind::LogSoftmax, OpKind::NllLoss};
  bool cpu_like = false;
  for (const std::string& name : runnable_backends()) cpu_like = cpu_like || name != "cuda";
  if (!cpu_like) MINIDL_SKIP("no CPU backend besides ref is built");
  const int n = run_twice_identical(table(), [&](const Row& r) { return kinds.count(r.kind) > 0; });
  MESSAGE(n, " outputs checked");
  CHECK_MESSAGE(n > 0, "no output was checked");
}

TEST_CASE("conformance: fill") { run_kind(OpKind::Fill); }
TEST_CASE("conformance: copy") { run_kind(OpKind::Copy); }
TEST_CASE("conformance: unary") { run_kind(OpKind::Unary); }
TEST_CASE("conformance: binary") { run_kind(OpKind::Binary); }
TEST_CASE("conformance: reduce") { run_kind(OpKind::Reduce); }
TEST_CASE("conformance: matmul") { run_kind(OpKind::Matmul); }
TEST_CASE("conformance: conv2d") { run_kind(OpKind::Conv2d); }
TEST_CASE("conformance: batch_norm") { run_kind(OpKind::BatchNorm); }
TEST_CASE("conformance: max_pool2d") { run_kind(OpKind::MaxPool2d); }
TEST_CASE("conformance: avg_pool2d") { run_kind(OpKind::AvgPool2d); }
TEST_CASE("conformance: adaptive_avg_pool2d") { run_kind(OpKind::AdaptiveAvgPool2d); }
TEST_CASE("conformance: log_softmax") { run_kind(OpKind::LogSoftmax); }
TEST_CASE("conformance: nll_loss") { run_kind(OpKind::NllLoss); }
TEST_CASE("conformance: quantize") { run_kind(OpKind::Quantize); }
TEST_CASE("conformance: optimizer updates") { run_kind(OpKind::OptimUpdate); }

}  // namespace conf
