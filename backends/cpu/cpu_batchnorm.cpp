// Batch normalisation of the cpu backend over (N,C), (N,C,L) or (N,C,H,W), f32 and f64: OpenMP over
// channels, each channel a set of contiguous runs (one per sample) folded with simd reductions in double.
// Why not oneDNN: on the plain NCHW layout the interface hands over, oneDNN 2.6 only has its simple
// `ncsp_bnorm` (measured ~14x the time of a ReLU over the same tensor, against ~3-4x for these loops), and its
// jit kernels need the blocked layout, whose reorders cost as much as the loops. When activations stay blocked
// across conv/bn/relu (later optimisation, see cpu_conv.cpp), oneDNN's fused bnorm+relu becomes the right tool.
// Training forward: two passes (mean, then squared deviations) for a stable biased variance; backward is
// gx = w*invstd * (gy - mean(gy) - xhat * mean(gy*xhat)), written as gx = a*gy + b*(x - mean) + d.
// Channels-last tensors (how this backend keeps conv activations) take a second set of loops over (rows, C):
// per-channel partial sums over fixed blocks of rows (so results do not depend on the thread count), then an
// affine pass vectorised along C. A channels-last y or gx selects them.
// Fusions (both layouts): the ReLU after the batch norm, and the residual add before it (the tail of a ResNet
// block, relu(bn(x) + residual)), applied in the affine pass; backward reads the ReLU mask from y in its
// reduction pass (storing the masked gradient there when the residual needs it, which the second pass then reads).
#include <atomic>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "backends/cpu/cpu_act_quant_blocks.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_batchnorm_kernels.h"
#include "backends/cpu/cpu_loops.h"
#include "core/cpu_isa.h"

namespace minidl {
namespace {

struct BnGeom {
  int64_t N = 0, C = 0, S = 1;  // x viewed as (N, C, S), contiguous
  double M() const { return static_cast<double>(N * S); }
};

BnGeom check_bn_input(const char* op, const Tensor& x) {
  cpu::check_cpu(op, "x", x);
  if (!is_floating(x.dtype())) cpu::unsupported(op, x.dtype());
  MINIDL_CHECK(x.dim() >= 2 && x.dim() <= 4, op, " (backend cpu): input must be (N,C), (N,C,L) or (N,C,H,W), got ",
               shape_str(x.sizes()));
  BnGeom g;
  g.N = x.sizes()[0];
  g.C = x.sizes()[1];
  for (int64_t d = 2; d < x.dim(); ++d) g.S *= x.sizes()[static_cast<size_t>(d)];
  MINIDL_CHECK(g.N * g.S > 0 && g.C > 0, op, " (backend cpu): no elements per channel in x ", shape_str(x.sizes()));
  return g;
}

// A (C) vector as doubles: t's values, or `fallback` everywhere when t is undefined.
std::vector<double> channel_values(const char* op, const char* what, const Tensor& t, int64_t C, DType dt,
                                   double fallback) {
  std::vector<double> v(static_cast<size_t>(C), fallback);
  if (!t.defined()) return v;
  cpu::check_tensor(op, what, t, dt, {C});
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(t.raw_data());
    for (int64_t c = 0; c < C; ++c) v[static_cast<size_t>(c)] = static_cast<double>(p[c * t.strides()[0]]);
  });
  return v;
}

// Writes a (C) result into t (any stride) when t is defined.
void store_channels(const char* op, const char* what, Tensor& t, const std::vector<double>& v, DType dt) {
  if (!t.defined()) return;
  const int64_t C = static_cast<int64_t>(v.size());
  cpu::check_tensor(op, what, t, dt, {C});
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t c = 0; c < C; ++c) p[c * t.strides()[0]] = static_cast<T>(v[static_cast<size_t>(c)]);
  });
}

template <typename T>
double sum_run(const T* p, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]);
  return s;
}

template <typename T>
double sqdev_run(const T* p, int64_t n, double mean) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(p[i]) - mean;
    s += d * d;
  }
  return s;
}

// The fusions' switches as compile-time flags (the loops stay branch-free): f(bool_constant<a>, bool_constant<b>).
template <typename F>
void with_flags(bool a, bool b, F&& f) {
  auto second = [&](auto fa) { b ? f(fa, std::true_type{}) : f(fa, std::false_type{}); };
  a ? second(std::true_type{}) : second(std::false_type{});
}

// g where y > 0, else exactly 0 (ReluBackward's rule): one definition for these loops and the vector kernels' tails.
using cpu::relu_mask;

// The affine pass's epilogue: v (= x * a + b), plus the residual when Res, then max(., 0) when Relu.
template <bool Res, bool Relu, typename T>
inline T epilogue(T v, T r) {
  if constexpr (Res) v += r;
  if constexpr (Relu) v = v > T(0) ? v : T(0);
  return v;
}

// y = epilogue(x * a + b, res) over one channel (all N runs); res (x's layout) read only when Res.
template <typename T, bool Res = false, bool Relu = false>
void affine_channel(T* y, const T* x, const T* res, const BnGeom& g, int64_t c, double a, double b) {
  const T ta = static_cast<T>(a), tb = static_cast<T>(b);
  for (int64_t n = 0; n < g.N; ++n) {
    const int64_t off = (n * g.C + c) * g.S;
    const T* xr = x + off;
    const T* rr = Res ? res + off : xr;
    T* yr = y + off;
#pragma omp simd
    for (int64_t i = 0; i < g.S; ++i) yr[i] = epilogue<Res, Relu>(xr[i] * ta + tb, rr[i]);
  }
}

template <typename T, bool Res = false, bool Relu = false>
void bn_train_fwd(T* y, const T* x, const T* res, const BnGeom& g, double eps, const std::vector<double>& w,
                  const std::vector<double>& b, std::vector<double>& mean, std::vector<double>& invstd) {
  cpu::parallel_for(g.C, 3 * g.N * g.S, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0;
      for (int64_t n = 0; n < g.N; ++n) s += sum_run(x + (n * g.C + c) * g.S, g.S);
      const double m = s / g.M();
      double q = 0;
      for (int64_t n = 0; n < g.N; ++n) q += sqdev_run(x + (n * g.C + c) * g.S, g.S, m);
      const double is = 1.0 / std::sqrt(q / g.M() + eps);
      const auto cc = static_cast<size_t>(c);
      mean[cc] = m;
      invstd[cc] = is;
      const double a = is * w[cc];
      affine_channel<T, Res, Relu>(y, x, res, g, c, a, b[cc] - m * a);
    }
  });
}

template <typename T>
void bn_infer(T* y, const T* x, const BnGeom& g, double eps, const std::vector<double>& w, const std::vector<double>& b,
              const std::vector<double>& mean, const std::vector<double>& var) {
  cpu::parallel_for(g.C, g.N * g.S, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const auto cc = static_cast<size_t>(c);
      const double a = w[cc] / std::sqrt(var[cc] + eps);
      affine_channel<T>(y, x, nullptr, g, c, a, b[cc] - mean[cc] * a);
    }
  });
}

// Backward over (N, C, S). With Relu the incoming gradient is gy masked by relu_y > 0 (the fused ReLU's output);
// with StoreMask that gradient is also written to gres (the residual's gradient) in the reduction pass, and the
// second pass reads it back instead of masking again.
template <typename T, bool Relu = false, bool StoreMask = false>
void bn_bwd(T* gx, T* gres, const T* gy, const T* relu_y, const T* x, const BnGeom& g, const std::vector<double>& mean,
            const std::vector<double>& invstd, const std::vector<double>& w, std::vector<double>& gw,
            std::vector<double>& gb) {
  constexpr bool kMask2 = Relu && !StoreMask;  // the second pass masks gy itself
  const T* g2 = StoreMask ? gres : gy;
  cpu::parallel_for(g.C, 3 * g.N * g.S, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const auto cc = static_cast<size_t>(c);
      const double m = mean[cc], is = invstd[cc];
      double sg = 0, sgd = 0;  // sum gy, sum gy * (x - mean)
      for (int64_t n = 0; n < g.N; ++n) {
        const int64_t off = (n * g.C + c) * g.S;
        const T* gr = gy + off;
        const T* yr = Relu ? relu_y + off : gr;
        T* mr = StoreMask ? gres + off : nullptr;
        const T* xr = x + off;
        double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t i = 0; i < g.S; ++i) {
          const T gt = Relu ? relu_mask(gr[i], yr[i]) : gr[i];
          if constexpr (StoreMask) mr[i] = gt;
          const double gv = static_cast<double>(gt);
          s1 += gv;
          s2 += gv * (static_cast<double>(xr[i]) - m);
        }
        sg += s1;
        sgd += s2;
      }
      const double sum_gy_xhat = sgd * is;
      gb[cc] = sg;
      gw[cc] = sum_gy_xhat;
      if (!gx) continue;
      const double A = w[cc] * is, B = -w[cc] * is * is * sum_gy_xhat / g.M(), D = -w[cc] * is * sg / g.M();
      const T ta = static_cast<T>(A), tb = static_cast<T>(B), td = static_cast<T>(D), tm = static_cast<T>(m);
      for (int64_t n = 0; n < g.N; ++n) {
        const int64_t off = (n * g.C + c) * g.S;
        const T* gr = g2 + off;
        const T* yr = kMask2 ? relu_y + off : gr;
        const T* xr = x + off;
        T* o = gx + off;
#pragma omp simd
        for (int64_t i = 0; i < g.S; ++i) {
          const T gv = kMask2 ? relu_mask(gr[i], yr[i]) : gr[i];
          o[i] = ta * gv + tb * (xr[i] - tm) + td;
        }
      }
    }
  });
}

// ---- channels-last: x viewed as (M, C) rows, M = N*H*W ----

// The channels-last loops' vector kernels for the widest level present and allowed (cpu_batchnorm_kernels.h,
// float32: same bits, more lanes), or null: the portable loops.
const cpu::BnRowKernels* row_kernels() {
  if (cpu::isa_enabled(cpu::CpuIsa::Avx512)) return &cpu::bn_row_kernels_avx512();
  if (cpu::isa_enabled(cpu::CpuIsa::Avx2)) return &cpu::bn_row_kernels_avx2();
  return nullptr;
}

constexpr int64_t kRowsPerBlock = 256;  // rows summed into one partial: fixed, so sums are thread-count free

// sums[c] = sum over rows of f(row pointers, c), accumulated per block of rows in double, blocks then added in
// order. f(acc, r0, r1) adds the contributions of rows [r0, r1) (one block), in row order, to acc[0..C) (and
// acc[C..2C) when width is 2).
template <typename BlockFn>
std::vector<double> channel_sums(int64_t M, int64_t C, int width, BlockFn&& f) {
  const int64_t blocks = (M + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<double> part(static_cast<size_t>(blocks * C * width), 0.0);
  cpu::parallel_for(blocks, kRowsPerBlock * C, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk)
      f(part.data() + blk * C * width, blk * kRowsPerBlock, std::min(M, (blk + 1) * kRowsPerBlock));
  });
  std::vector<double> total(static_cast<size_t>(C * width), 0.0);
  for (int64_t blk = 0; blk < blocks; ++blk) {
    for (int64_t i = 0; i < C * width; ++i)
      total[static_cast<size_t>(i)] += part[static_cast<size_t>(blk * C * width + i)];
  }
  return total;
}

// rows [0, rows) of y = epilogue(x * a + b, res), C values per row; res (rows like x) read only when Res. Each
// element's value does not depend on where the rows sit, so a block computed into a buffer (the batch norm + ReLU +
// quantizer op, in forward and again in backward) has the bits of the whole pass.
template <typename T, bool Res = false, bool Relu = false>
void affine_block(T* y, const T* x, const T* res, int64_t rows, int64_t C, const T* pa, const T* pb) {
  if constexpr (std::is_same_v<T, float>) {
    if (const auto* k = row_kernels()) return k->affine_rows(y, x, Res ? res : nullptr, 0, rows, C, pa, pb, Relu);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    const T* rr = Res ? res + r * C : xr;
    T* yr = y + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = epilogue<Res, Relu>(xr[c] * pa[c] + pb[c], rr[c]);
  }
}

// y[r, c] = epilogue(x[r, c] * a[c] + b[c], res[r, c]) over M rows, in parallel
template <typename T, bool Res = false, bool Relu = false>
void affine_rows(T* y, const T* x, const T* res, int64_t M, int64_t C, const std::vector<T>& a,
                 const std::vector<T>& b) {
  cpu::parallel_for(M, C, [&](int64_t r0, int64_t r1) {
    affine_block<T, Res, Relu>(y + r0 * C, x + r0 * C, Res ? res + r0 * C : nullptr, r1 - r0, C, a.data(), b.data());
  });
}

// Per-channel mean and biased variance with one sweep over memory: each block of rows is summed, then its
// squared deviations from its own mean are summed while the block is still in cache; the blocks then merge in
// order with Chan et al.'s pairwise update (stable: no E[x^2] - E[x]^2 cancellation, thread-count free).
template <typename T>
void channel_moments(const T* x, int64_t M, int64_t C, std::vector<double>& mean, std::vector<double>& var) {
  const int64_t blocks = (M + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<double> bm(static_cast<size_t>(blocks * C), 0.0), bq(static_cast<size_t>(blocks * C), 0.0);
  cpu::parallel_for(blocks, 2 * kRowsPerBlock * C, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      double* m = bm.data() + blk * C;
      double* q = bq.data() + blk * C;
      const int64_t r0 = blk * kRowsPerBlock, r1 = std::min(M, r0 + kRowsPerBlock);
      const double inv_n = 1.0 / static_cast<double>(r1 - r0);
      if constexpr (std::is_same_v<T, float>) {
        if (const auto* k = row_kernels()) {
          k->sum_rows(x, r0, r1, C, m);
          for (int64_t c = 0; c < C; ++c) m[c] *= inv_n;
          k->sqdev_rows(x, r0, r1, C, m, q);
          continue;
        }
      }
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) m[c] += static_cast<double>(xr[c]);
      }
      for (int64_t c = 0; c < C; ++c) m[c] *= inv_n;
      for (int64_t r = r0; r < r1; ++r) {
        const T* xr = x + r * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const double d = static_cast<double>(xr[c]) - m[c];
          q[c] += d * d;
        }
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    double n = 0, mu = 0, m2 = 0;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const double nb = static_cast<double>(std::min(M, (blk + 1) * kRowsPerBlock) - blk * kRowsPerBlock);
      const double mb = bm[static_cast<size_t>(blk * C + c)], qb = bq[static_cast<size_t>(blk * C + c)];
      const double delta = mb - mu, nn = n + nb;
      mu += delta * nb / nn;
      m2 += qb + delta * delta * n * nb / nn;
      n = nn;
    }
    mean[static_cast<size_t>(c)] = mu;
    var[static_cast<size_t>(c)] = m2 / static_cast<double>(M);
  }
}

// A training forward's batch statistics of x's M rows and its affine pass's coefficients: y = x * a + sh per
// channel (a = w * invstd and sh = b - mean * a, computed in double, then rounded to T).
template <typename T>
void train_statistics(const T* x, int64_t M, int64_t C, double eps, const std::vector<double>& w,
                      const std::vector<double>& b, std::vector<double>& mean, std::vector<double>& invstd,
                      std::vector<T>& a, std::vector<T>& sh) {
  std::vector<double> var(static_cast<size_t>(C));
  channel_moments(x, M, C, mean, var);
  a.assign(static_cast<size_t>(C), T(0));
  sh.assign(static_cast<size_t>(C), T(0));
  for (size_t c = 0; c < static_cast<size_t>(C); ++c) {
    invstd[c] = 1.0 / std::sqrt(var[c] + eps);
    const double ac = invstd[c] * w[c];
    a[c] = static_cast<T>(ac);
    sh[c] = static_cast<T>(b[c] - mean[c] * ac);
  }
}

// keep (when not null) receives the affine pass's coefficients a, sh.
template <typename T, bool Res = false, bool Relu = false>
void bn_train_fwd_nhwc(T* y, const T* x, const T* res, int64_t M, int64_t C, double eps, const std::vector<double>& w,
                       const std::vector<double>& b, std::vector<double>& mean, std::vector<double>& invstd,
                       std::vector<T>* keep_a = nullptr, std::vector<T>* keep_sh = nullptr) {
  std::vector<T> a, sh;
  train_statistics(x, M, C, eps, w, b, mean, invstd, a, sh);
  affine_rows<T, Res, Relu>(y, x, res, M, C, a, sh);
  if (keep_a) *keep_a = std::move(a);
  if (keep_sh) *keep_sh = std::move(sh);
}

// What a channels-last float32 batch norm + ReLU forward leaves for batch_norm_relu_backward_from_input: its affine
// coefficients, so that backward recomputes the ReLU's mask from x with the forward's own arithmetic.
struct BnReluAffineState : OpState {
  std::vector<float> a, sh;
  Shape sizes;
};

template <typename T>
void bn_infer_nhwc(T* y, const T* x, int64_t M, int64_t C, double eps, const std::vector<double>& w,
                   const std::vector<double>& b, const std::vector<double>& mean, const std::vector<double>& var) {
  std::vector<T> a(static_cast<size_t>(C)), sh(static_cast<size_t>(C));
  for (size_t c = 0; c < static_cast<size_t>(C); ++c) {
    const double ac = w[c] / std::sqrt(var[c] + eps);
    a[c] = static_cast<T>(ac);
    sh[c] = static_cast<T>(b[c] - mean[c] * ac);
  }
  affine_rows<T>(y, x, nullptr, M, C, a, sh);
}

// A hook run on each row block of the backward's reduction pass before the block is summed (see
// batch_norm_relu_quantize_backward); by default nothing.
struct NoPre {
  void operator()(int64_t, int64_t) const {}
};

// Backward over (M, C) rows; Relu, StoreMask, relu_y and gres as in bn_bwd. pre(r0, r1) runs first on each block of
// rows of the reduction pass, in the thread that then sums it (it may write the block's gy).
// MaskX (with Relu): the mask is x * ya[c] + yb[c] > 0, the forward's affine recomputed (relu_y unused), instead of
// relu_y > 0: the same value before max(., 0), so the same mask, with one stream less per pass.
template <typename T, bool Relu = false, bool StoreMask = false, bool MaskX = false, typename Pre = NoPre>
void bn_bwd_nhwc(T* gx, T* gres, const T* gy, const T* relu_y, const T* x, int64_t M, int64_t C,
                 const std::vector<double>& mean, const std::vector<double>& invstd, const std::vector<double>& w,
                 std::vector<double>& gw, std::vector<double>& gb, const Pre& pre = Pre{}, const T* ya = nullptr,
                 const T* yb = nullptr) {
  static_assert(!MaskX || Relu, "MaskX is a ReLU mask");
  const double* m = mean.data();
  // the incoming gradient (masked by the ReLU when fused), written out in each loop so it vectorises
  // acc[0..C): sum gy; acc[C..2C): sum gy * (x - mean)
  const auto s = channel_sums(M, C, 2, [&](double* acc, int64_t r0, int64_t r1) {
    pre(r0, r1);
    double* acc2 = acc + C;
    if constexpr (std::is_same_v<T, float>) {
      if (const auto* k = row_kernels()) {
        cpu::BnReluMask mk;
        if (Relu) mk = MaskX ? cpu::BnReluMask{nullptr, ya, yb} : cpu::BnReluMask{relu_y, nullptr, nullptr};
        return k->bwd_sums_rows(x, gy, mk, StoreMask ? gres : nullptr, r0, r1, C, m, acc, acc2);
      }
    }
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      const T* gr = gy + r * C;
      const T* yr = Relu && !MaskX ? relu_y + r * C : gr;
      T* mr = StoreMask ? gres + r * C : nullptr;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const T gt = !Relu ? gr[c] : MaskX ? relu_mask(gr[c], xr[c] * ya[c] + yb[c]) : relu_mask(gr[c], yr[c]);
        if constexpr (StoreMask) mr[c] = gt;
        const double gv = static_cast<double>(gt);
        acc[c] += gv;
        acc2[c] += gv * (static_cast<double>(xr[c]) - m[c]);
      }
    }
  });
  std::vector<T> A(static_cast<size_t>(C)), B(static_cast<size_t>(C)), D(static_cast<size_t>(C)),
      Mu(static_cast<size_t>(C));
  const double Md = static_cast<double>(M);
  for (size_t c = 0; c < static_cast<size_t>(C); ++c) {
    const double sg = s[c], sum_gy_xhat = s[static_cast<size_t>(C) + c] * invstd[c];
    gb[c] = sg;
    gw[c] = sum_gy_xhat;
    A[c] = static_cast<T>(w[c] * invstd[c]);
    B[c] = static_cast<T>(-w[c] * invstd[c] * invstd[c] * sum_gy_xhat / Md);
    D[c] = static_cast<T>(-w[c] * invstd[c] * sg / Md);
    Mu[c] = static_cast<T>(mean[c]);
  }
  if (!gx) return;
  constexpr bool kMask2 = Relu && !StoreMask;  // the second pass masks gy itself
  const T* g2 = StoreMask ? gres : gy;
  const T *pa = A.data(), *pb = B.data(), *pd = D.data(), *pm = Mu.data();
  cpu::parallel_for(M, 3 * C, [&](int64_t r0, int64_t r1) {
    if constexpr (std::is_same_v<T, float>) {
      if (const auto* k = row_kernels()) {
        cpu::BnReluMask mk;
        if (kMask2) mk = MaskX ? cpu::BnReluMask{nullptr, ya, yb} : cpu::BnReluMask{relu_y, nullptr, nullptr};
        return k->bwd_dx_rows(gx, g2, mk, x, r0, r1, C, pa, pb, pd, pm);
      }
    }
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * C;
      const T* gr = g2 + r * C;
      const T* yr = kMask2 && !MaskX ? relu_y + r * C : gr;
      T* o = gx + r * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const T gv = !kMask2 ? gr[c] : MaskX ? relu_mask(gr[c], xr[c] * ya[c] + yb[c]) : relu_mask(gr[c], yr[c]);
        o[c] = pa[c] * gv + pb[c] * (xr[c] - pm[c]) + pd[c];
      }
    }
  });
}

// The layout a batch-norm call runs in: channels-last when its output (y, or gx) is, else contiguous; inputs
// are converted to it.
Tensor input_in_layout(const Tensor& t, bool nhwc) {
  return nhwc ? cpu::channels_last_input(t) : cpu::contiguous_input(t);
}
void check_out_layout(const char* op, const char* what, const Tensor& t) {
  MINIDL_CHECK(t.is_contiguous() || t.is_channels_last(), op, " (backend cpu): ", what,
               " must be contiguous or channels-last");
}

// True when t is dense in the layout a call runs in (its data can be walked as that layout's rows).
bool in_layout(const Tensor& t, bool nhwc) { return nhwc ? t.is_channels_last() : t.is_contiguous(); }

// Training forward, plain or fused with what follows it: + residual (when defined, any layout: made dense in
// the run layout first), then the ReLU (relu).
// state (when not null, for batch_norm_relu) receives a BnReluAffineState on the channels-last float32 path.
void train_forward(const char* op, Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                   const Tensor& residual, const Tensor& weight, const Tensor& bias, double eps, bool relu,
                   OpStatePtr* state = nullptr) {
  const BnGeom g = check_bn_input(op, x);
  const DType dt = x.dtype();
  cpu::check_tensor(op, "y", y, dt, x.sizes());
  check_out_layout(op, "y", y);
  if (residual.defined()) cpu::check_tensor(op, "residual", residual, dt, x.sizes());
  MINIDL_CHECK(save_mean.defined() && save_invstd.defined(), op,
               " (backend cpu): save_mean and save_invstd are required");
  const auto w = channel_values(op, "weight", weight, g.C, dt, 1.0);
  const auto b = channel_values(op, "bias", bias, g.C, dt, 0.0);
  std::vector<double> mean(static_cast<size_t>(g.C)), invstd(static_cast<size_t>(g.C));
  const bool nhwc = cpu::is_nhwc(y);
  const Tensor xc = input_in_layout(x, nhwc);
  const Tensor rc = residual.defined() ? input_in_layout(residual, nhwc) : Tensor();
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    const T* rp = rc.defined() ? rc.data<T>() : nullptr;
    with_flags(rp != nullptr, relu, [&](auto res_flag, auto relu_flag) {
      constexpr bool res = decltype(res_flag)::value, rl = decltype(relu_flag)::value;
      if constexpr (std::is_same_v<T, float> && rl && !res) {
        if (nhwc && state) {
          auto keep = std::make_shared<BnReluAffineState>();
          bn_train_fwd_nhwc<T, res, rl>(y.data<T>(), xc.data<T>(), rp, g.N * g.S, g.C, eps, w, b, mean, invstd,
                                        &keep->a, &keep->sh);
          keep->sizes = x.sizes();
          *state = std::move(keep);
          return;
        }
      }
      if (nhwc)
        bn_train_fwd_nhwc<T, res, rl>(y.data<T>(), xc.data<T>(), rp, g.N * g.S, g.C, eps, w, b, mean, invstd);
      else
        bn_train_fwd<T, res, rl>(y.data<T>(), xc.data<T>(), rp, g, eps, w, b, mean, invstd);
    });
  });
  store_channels(op, "save_mean", save_mean, mean, dt);
  store_channels(op, "save_invstd", save_invstd, invstd, dt);
}

// Backward, plain or through a fused ReLU whose output relu_y (when defined) masks gy; gres (when defined: the
// fused residual's gradient) receives the masked gy. Each of gx, gres, gweight, gbias is written when defined.
// affine (instead of relu_y; channels-last float32 only): the ReLU's mask recomputed from x with the forward's
// coefficients (bn_bwd_nhwc's MaskX).
template <typename Pre = NoPre>
void backward(const char* op, Tensor& gx, Tensor& gres, Tensor& gweight, Tensor& gbias, const Tensor& gy,
              const Tensor& x, const Tensor& save_mean, const Tensor& save_invstd, const Tensor& weight,
              const Tensor& relu_y, const Pre& pre = Pre{}, const BnReluAffineState* affine = nullptr) {
  const BnGeom g = check_bn_input(op, x);
  const DType dt = x.dtype();
  cpu::check_tensor(op, "gy", gy, dt, x.sizes());
  if (relu_y.defined()) cpu::check_tensor(op, "y", relu_y, dt, x.sizes());
  if (gx.defined()) {
    cpu::check_tensor(op, "gx", gx, dt, x.sizes());
    check_out_layout(op, "gx", gx);
  }
  if (gres.defined()) {
    cpu::check_tensor(op, "gresidual", gres, dt, x.sizes());
    check_out_layout(op, "gresidual", gres);
  }
  MINIDL_CHECK(save_mean.defined() && save_invstd.defined(), op,
               " (backend cpu): save_mean and save_invstd are required");
  const auto mean = channel_values(op, "save_mean", save_mean, g.C, dt, 0.0);
  const auto invstd = channel_values(op, "save_invstd", save_invstd, g.C, dt, 1.0);
  const auto w = channel_values(op, "weight", weight, g.C, dt, 1.0);
  std::vector<double> gw(static_cast<size_t>(g.C)), gb(static_cast<size_t>(g.C));
  const bool nhwc = gx.defined() ? cpu::is_nhwc(gx) : cpu::is_nhwc(x);
  const Tensor xc = input_in_layout(x, nhwc), gyc = input_in_layout(gy, nhwc);
  const Tensor yc = relu_y.defined() ? input_in_layout(relu_y, nhwc) : Tensor();
  // gres in another layout than the call's: written to a scratch tensor in the run layout, then copied
  Tensor gres_run = gres;
  if (gres.defined() && !in_layout(gres, nhwc))
    gres_run =
        empty(x.sizes(), TensorOptions{}.dtype(dt), nhwc ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous);
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    T* gxp = gx.defined() ? gx.data<T>() : nullptr;
    T* gresp = gres_run.defined() ? gres_run.data<T>() : nullptr;
    const T* yp = yc.defined() ? yc.data<T>() : nullptr;
    if constexpr (std::is_same_v<T, float>) {
      if (affine) {
        MINIDL_CHECK(nhwc && !gresp && !yp, op,
                     " (backend cpu): the mask from x is for channels-last batch norm + ReLU");
        bn_bwd_nhwc<T, true, false, true>(gxp, nullptr, gyc.data<T>(), nullptr, xc.data<T>(), g.N * g.S, g.C, mean,
                                          invstd, w, gw, gb, pre, affine->a.data(), affine->sh.data());
        return;
      }
    }
    with_flags(yp != nullptr, gresp != nullptr, [&](auto relu_flag, auto store_flag) {
      constexpr bool rl = decltype(relu_flag)::value, store = decltype(store_flag)::value;
      if (nhwc)
        bn_bwd_nhwc<T, rl, store>(gxp, gresp, gyc.data<T>(), yp, xc.data<T>(), g.N * g.S, g.C, mean, invstd, w, gw, gb,
                                  pre);
      else
        bn_bwd<T, rl, store>(gxp, gresp, gyc.data<T>(), yp, xc.data<T>(), g, mean, invstd, w, gw, gb);
    });
  });
  if (gres_run.defined() && !gres_run.is_same(gres)) cpu_backend().copy(gres, gres_run);
  store_channels(op, "gweight", gweight, gw, dt);
  store_channels(op, "gbias", gbias, gb, dt);
}

}  // namespace

void CpuBackend::batch_norm_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                             const Tensor& weight, const Tensor& bias, double eps,
                                             OpStatePtr& /*state: nothing to keep*/) {
  train_forward("batch_norm_forward_training", y, save_mean, save_invstd, x, Tensor(), weight, bias, eps, false);
}

void CpuBackend::batch_norm_forward_inference(Tensor& y, const Tensor& x, const Tensor& running_mean,
                                              const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                                              double eps) {
  const char* op = "batch_norm_forward_inference";
  const BnGeom g = check_bn_input(op, x);
  const DType dt = x.dtype();
  cpu::check_tensor(op, "y", y, dt, x.sizes());
  check_out_layout(op, "y", y);
  MINIDL_CHECK(running_mean.defined() && running_var.defined(), op,
               " (backend cpu): running_mean and running_var are required");
  const auto w = channel_values(op, "weight", weight, g.C, dt, 1.0);
  const auto b = channel_values(op, "bias", bias, g.C, dt, 0.0);
  const auto mean = channel_values(op, "running_mean", running_mean, g.C, dt, 0.0);
  const auto var = channel_values(op, "running_var", running_var, g.C, dt, 1.0);
  const bool nhwc = cpu::is_nhwc(y);
  const Tensor xc = input_in_layout(x, nhwc);
  dispatch_floating(dt, op, [&](auto tag) {
    using T = decltype(tag);
    if (nhwc)
      bn_infer_nhwc<T>(y.data<T>(), xc.data<T>(), g.N * g.S, g.C, eps, w, b, mean, var);
    else
      bn_infer<T>(y.data<T>(), xc.data<T>(), g, eps, w, b, mean, var);
  });
}

void CpuBackend::batch_norm_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& x,
                                     const Tensor& save_mean, const Tensor& save_invstd, const Tensor& weight,
                                     double /*eps: save_invstd has it*/, OpStatePtr& /*state*/) {
  Tensor no_gres;
  backward("batch_norm_backward", gx, no_gres, gweight, gbias, gy, x, save_mean, save_invstd, weight, Tensor());
}

// Fused batch norm + ReLU, both layouts: the ReLU applied in the affine pass; its mask read from y inside both
// backward passes.
void CpuBackend::batch_norm_relu_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd, const Tensor& x,
                                                  const Tensor& weight, const Tensor& bias, double eps,
                                                  OpStatePtr& state) {
  train_forward("batch_norm_relu_forward_training", y, save_mean, save_invstd, x, Tensor(), weight, bias, eps, true,
                &state);
}

void CpuBackend::batch_norm_relu_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy, const Tensor& y,
                                          const Tensor& x, const Tensor& save_mean, const Tensor& save_invstd,
                                          const Tensor& weight, double /*eps*/, OpStatePtr& /*state*/) {
  const char* op = "batch_norm_relu_backward";
  MINIDL_CHECK(y.defined(), op, " (backend cpu): y is required");
  Tensor no_gres;
  backward(op, gx, no_gres, gweight, gbias, gy, x, save_mean, save_invstd, weight, y);
}

bool CpuBackend::batch_norm_relu_backward_from_input(Tensor& gx, Tensor& gweight, Tensor& gbias, const Tensor& gy,
                                                     const Tensor& x, const Tensor& save_mean,
                                                     const Tensor& save_invstd, const Tensor& weight, double /*eps*/,
                                                     OpStatePtr& state) {
  const char* op = "batch_norm_relu_backward_from_input";
  // only after this backend's channels-last float32 forward, which left its affine coefficients
  const auto* affine = dynamic_cast<const BnReluAffineState*>(state.get());
  if (!affine || x.dtype() != DType::f32 || !x.device().is_cpu() || x.sizes() != affine->sizes || !cpu::is_nhwc(x) ||
      (gx.defined() && !cpu::is_nhwc(gx)))
    return false;
  MINIDL_CHECK(
      static_cast<int64_t>(affine->a.size()) == x.size(1) && static_cast<int64_t>(affine->sh.size()) == x.size(1), op,
      " (backend cpu): the forward's state has ", affine->a.size(), " channels, x has ", x.size(1));
  Tensor no_gres, no_relu_y;
  backward(op, gx, no_gres, gweight, gbias, gy, x, save_mean, save_invstd, weight, no_relu_y, NoPre{}, affine);
  return true;
}

// Fused batch norm + residual add + ReLU, both layouts: the add and the ReLU in the affine pass; backward masks gy
// by y > 0 in its reduction pass, storing the mask there as gresidual. A residual (or gresidual) in another layout
// than y (gx) is converted to it.
void CpuBackend::batch_norm_add_relu_forward_training(Tensor& y, Tensor& save_mean, Tensor& save_invstd,
                                                      const Tensor& x, const Tensor& residual, const Tensor& weight,
                                                      const Tensor& bias, double eps, OpStatePtr& /*state*/) {
  const char* op = "batch_norm_add_relu_forward_training";
  MINIDL_CHECK(residual.defined(), op, " (backend cpu): residual is required");
  train_forward(op, y, save_mean, save_invstd, x, residual, weight, bias, eps, true);
}

void CpuBackend::batch_norm_add_relu_backward(Tensor& gx, Tensor& gresidual, Tensor& gweight, Tensor& gbias,
                                              const Tensor& gy, const Tensor& y, const Tensor& x,
                                              const Tensor& save_mean, const Tensor& save_invstd, const Tensor& weight,
                                              double /*eps*/, OpStatePtr& /*state*/) {
  const char* op = "batch_norm_add_relu_backward";
  MINIDL_CHECK(y.defined(), op, " (backend cpu): y is required");
  backward(op, gx, gresidual, gweight, gbias, gy, x, save_mean, save_invstd, weight, y);
}

// ---- batch norm + ReLU + activation quantizer (quant::batch_norm_relu_quantize), channels-last float32 ----
// Forward: the batch statistics, then per block of kRowsPerBlock rows y = relu(x * a + sh) into a per-thread buffer
// and the quantizer's forward kernel from there into q (and codes): y never goes to memory, and the op saves only
// x, the statistics and a, sh. Backward: per block, y again into the buffer (the same kernel on the same values,
// so the same bits), the quantizer's backward kernel from it (gq over gx, the alpha partials of its whole
// 4096-element chunks: C * kRowsPerBlock is a multiple of 4096 for C a multiple of 16), the ReLU's mask applied
// to gq, then the block's batch-norm sums, all while the block is in cache; the batch norm's gx pass follows. The
// same bits as batch_norm_relu + quantize_activation (tests/backends/test_cpu_batchnorm_isa.cpp,
// tests/quant/test_bn_relu_quant.cpp). The quantizer is quantize_clip's (levels or grid, with its vector kernels:
// AVX2 or AVX-512) or PACT's. Anything else (other dtypes or layouts, C not a multiple of 16, a levels quantizer
// without a vector kernel on this host) is left to the base class's primitives.

namespace {

bool nhwc_f32_like(const Tensor& t, const Tensor& x) {
  return t.defined() && t.dtype() == DType::f32 && t.device().is_cpu() && t.sizes() == x.sizes() && cpu::is_nhwc(t);
}

bool fused_shapes_fit(const Tensor& x) {
  return nhwc_f32_like(x, x) && x.dim() == 4 && (x.size(1) * kRowsPerBlock) % cpu::ActQuantBlockKernels::kChunk == 0;
}

// A per-thread buffer of n floats (one block of rows), kept between calls.
float* block_buffer(int64_t n) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf.data();
}

}  // namespace

bool CpuBackend::batch_norm_relu_quantize_forward_training(Tensor& q, Tensor& codes, Tensor& save_mean,
                                                           Tensor& save_invstd, Tensor& y_scale, Tensor& y_shift,
                                                           const Tensor& x, const Tensor& weight, const Tensor& bias,
                                                           double eps, const ActQuantizer& quantizer, OpStatePtr&) {
  const char* op = "batch_norm_relu_quantize_forward_training";
  if (!fused_shapes_fit(x) || !nhwc_f32_like(q, x) || (codes.defined() && !cpu::is_nhwc(codes))) return false;
  const auto k = cpu::ActQuantBlockKernels::make(quantizer, cpu::ActQuantBlockKernels::For::Forward);
  if (!k) return false;
  if (codes.defined()) cpu::check_tensor(op, "codes", codes, DType::u8, x.sizes());
  MINIDL_CHECK(save_mean.defined() && save_invstd.defined() && y_scale.defined() && y_shift.defined(), op,
               " (backend cpu): save_mean, save_invstd, y_scale and y_shift are required");
  const BnGeom g = check_bn_input(op, x);
  const int64_t M = g.N * g.S, C = g.C;
  const auto w = channel_values(op, "weight", weight, C, DType::f32, 1.0);
  const auto b = channel_values(op, "bias", bias, C, DType::f32, 0.0);
  std::vector<double> mean(static_cast<size_t>(C)), invstd(static_cast<size_t>(C));
  std::vector<float> a, sh;
  const float* xp = x.data<float>();
  train_statistics(xp, M, C, eps, w, b, mean, invstd, a, sh);
  float* qp = q.data<float>();
  uint8_t* cp = codes.defined() ? codes.data<uint8_t>() : nullptr;
  const int64_t blocks = (M + kRowsPerBlock - 1) / kRowsPerBlock;
  std::atomic<bool> all_coded{true};
  cpu::parallel_for(blocks, kRowsPerBlock * C * 4, [&](int64_t b0, int64_t b1) {
    float* y = block_buffer(kRowsPerBlock * C);
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kRowsPerBlock, rows = std::min(M, r0 + kRowsPerBlock) - r0;
      affine_block<float, false, true>(y, xp + r0 * C, nullptr, rows, C, a.data(), sh.data());
      if (!k->forward(qp + r0 * C, cp ? cp + r0 * C : nullptr, y, rows * C))
        all_coded.store(false, std::memory_order_relaxed);
    }
  });
  if (!all_coded.load()) codes = Tensor();
  store_channels(op, "save_mean", save_mean, mean, DType::f32);
  store_channels(op, "save_invstd", save_invstd, invstd, DType::f32);
  store_channels(op, "y_scale", y_scale, std::vector<double>(a.begin(), a.end()), DType::f32);
  store_channels(op, "y_shift", y_shift, std::vector<double>(sh.begin(), sh.end()), DType::f32);
  return true;
}

void CpuBackend::batch_norm_relu_quantize_backward(Tensor& gx, Tensor& gweight, Tensor& gbias, Tensor& galpha,
                                                   const Tensor& g, const Tensor& y, const Tensor& x,
                                                   const Tensor& save_mean, const Tensor& save_invstd,
                                                   const Tensor& weight, double eps, const ActQuantizer& quantizer,
                                                   double scale, const Tensor& y_scale, const Tensor& y_shift,
                                                   const Tensor& codes, OpStatePtr& state) {
  using Kernels = cpu::ActQuantBlockKernels;
  const char* op = "batch_norm_relu_quantize_backward";
  std::unique_ptr<Kernels> k;
  const bool operands_fit =
      fused_shapes_fit(x) && nhwc_f32_like(g, x) && nhwc_f32_like(gx, x) && (!y.defined() || nhwc_f32_like(y, x)) &&
      (!galpha.defined() || (galpha.dtype() == DType::f32 && galpha.numel() == 1 && galpha.device().is_cpu()));
  if (operands_fit) k = Kernels::make(quantizer, Kernels::For::Backward);
  if (!k) {
    MINIDL_CHECK(
        y.defined(), op,
        " (backend cpu): without y (recomputed from x) the operands must be the fused forward's: channels-last "
        "float32, C a multiple of 16, a quantizer with a block kernel on this host");
    Backend::batch_norm_relu_quantize_backward(gx, gweight, gbias, galpha, g, y, x, save_mean, save_invstd, weight, eps,
                                               quantizer, scale, y_scale, y_shift, codes, state);
    return;
  }
  const int64_t n = g.numel(), C = x.size(1);
  std::vector<float> a, sh;
  if (!y.defined()) {
    MINIDL_CHECK(y_scale.defined() && y_shift.defined(), op,
                 " (backend cpu): y_scale and y_shift are required when y is not given");
    const auto av = channel_values(op, "y_scale", y_scale, C, DType::f32, 1.0);
    const auto shv = channel_values(op, "y_shift", y_shift, C, DType::f32, 0.0);
    a.assign(av.begin(), av.end());  // exact: they were float32
    sh.assign(shv.begin(), shv.end());
  }
  std::vector<double> partial(static_cast<size_t>((n + Kernels::kChunk - 1) / Kernels::kChunk), 0.0);
  float* gq = gx.data<float>();
  const float* gp = g.data<float>();
  const float* xp = x.data<float>();
  const float* yp = y.defined() ? y.data<float>() : nullptr;
  // the forward's codes of q (its level indices), read in place of the level search where they lie as x does
  const uint8_t* cp = codes.defined() && codes.dtype() == DType::u8 && codes.sizes() == x.sizes() &&
                              codes.device().is_cpu() && cpu::is_nhwc(codes)
                          ? codes.data<uint8_t>()
                          : nullptr;
  // run by the batch norm's reduction pass on each block of rows, just before it sums the block's gq
  const auto pre = [&](int64_t r0, int64_t r1) {
    const int64_t b0 = r0 * C, len = (r1 - r0) * C;
    const float* yb = yp ? yp + b0 : nullptr;
    if (!yb) {
      float* buf = block_buffer(kRowsPerBlock * C);
      affine_block<float, false, true>(buf, xp + b0, nullptr, r1 - r0, C, a.data(), sh.data());
      yb = buf;
    }
    for (int64_t i = 0; i < len; i += Kernels::kChunk) {
      const int64_t m = std::min(len - i, Kernels::kChunk);
      partial[static_cast<size_t>((b0 + i) / Kernels::kChunk)] =
          cp != nullptr ? k->backward_coded(gq + b0 + i, gp + b0 + i, yb + i, cp + b0 + i, m)
                        : k->backward(gq + b0 + i, gp + b0 + i, yb + i, m);
    }
    float* gblock = gq + b0;
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) gblock[i] = relu_mask(gblock[i], yb[i]);
  };
  Tensor no_gres, no_relu_y;  // the ReLU's mask is applied above
  backward(op, gx, no_gres, gweight, gbias, gx, x, save_mean, save_invstd, weight, no_relu_y, pre);
  Kernels::store(galpha, partial, scale);
}

}  // namespace minidl
