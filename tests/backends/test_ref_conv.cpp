// Ref conv2d forward / backward-data / backward-weight: a 1x1x3x3 case by hand, then strided, padded, dilated
// and grouped cases against a direct formula written the other way round (scatter from each input pixel instead
// of gather per output), and the backwards against the adjoint identities <conv(x), gy> = <x, gx> = <w, gw>.
#include <vector>

#include "ref_test_util.h"

using namespace reftest;
using minidl::Conv2dParams;
using minidl::OpStatePtr;

namespace {

// y = conv(x, w) + bias computed by scattering every input pixel through every tap to the output it reaches.
std::vector<double> naive_conv(const std::vector<double>& x, const std::vector<double>& w,
                               const std::vector<double>& bias, int64_t N, int64_t C, int64_t H, int64_t W, int64_t K,
                               int64_t R, int64_t S, const Conv2dParams& p, int64_t P, int64_t Q) {
  const int64_t Cg = C / p.groups, Kg = K / p.groups;
  std::vector<double> y(static_cast<size_t>(N * K * P * Q), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < P * Q; ++i) y[static_cast<size_t>((n * K + k) * P * Q + i)] = bias.empty() ? 0 : bias[k];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ih = 0; ih < H; ++ih)
        for (int64_t iw = 0; iw < W; ++iw) {
          const double xv = x[static_cast<size_t>(((n * C + c) * H + ih) * W + iw)];
          const int64_t g = c / Cg;
          for (int64_t k = g * Kg; k < (g + 1) * Kg; ++k)
            for (int64_t r = 0; r < R; ++r)
              for (int64_t s = 0; s < S; ++s) {
                // ih = oh*sh - ph + r*dh  <=>  oh = (ih + ph - r*dh) / sh when it divides exactly
                const int64_t th = ih + p.pad_h - r * p.dilation_h, tw = iw + p.pad_w - s * p.dilation_w;
                if (th < 0 || tw < 0 || th % p.stride_h || tw % p.stride_w) continue;
                const int64_t oh = th / p.stride_h, ow = tw / p.stride_w;
                if (oh >= P || ow >= Q) continue;
                y[static_cast<size_t>(((n * K + k) * P + oh) * Q + ow)] +=
                    xv * w[static_cast<size_t>(((k * Cg + (c - g * Cg)) * R + r) * S + s)];
              }
        }
  return y;
}

struct Case {
  int64_t N, C, H, W, K, R, S;
  Conv2dParams p;
};

void check_case(const Case& cs, DType dt, double tol) {
  const Conv2dParams& p = cs.p;
  const int64_t P = minidl::conv_out_size(cs.H, cs.R, p.stride_h, p.pad_h, p.dilation_h);
  const int64_t Q = minidl::conv_out_size(cs.W, cs.S, p.stride_w, p.pad_w, p.dilation_w);
  const auto xv = pseudo(static_cast<size_t>(cs.N * cs.C * cs.H * cs.W), 1);
  const auto wv = pseudo(static_cast<size_t>(cs.K * (cs.C / p.groups) * cs.R * cs.S), 2);
  const auto bv = pseudo(static_cast<size_t>(cs.K), 3);
  const auto gyv = pseudo(static_cast<size_t>(cs.N * cs.K * P * Q), 4);
  Tensor x = make(xv, {cs.N, cs.C, cs.H, cs.W}, dt);
  Tensor w = make(wv, {cs.K, cs.C / p.groups, cs.R, cs.S}, dt);
  Tensor b = make(bv, {cs.K}, dt);
  Tensor gy = make(gyv, {cs.N, cs.K, P, Q}, dt);
  // in float32 the inputs were rounded: feed the rounded values to the formula
  const auto xr = vals(x), wr = vals(w), br = vals(b), gyr = vals(gy);
  OpStatePtr st;

  Tensor y = out({cs.N, cs.K, P, Q}, dt);
  ref().conv2d_forward(y, x, w, b, p, st);
  check_close(y, naive_conv(xr, wr, br, cs.N, cs.C, cs.H, cs.W, cs.K, cs.R, cs.S, p, P, Q), tol);

  // backwards: conv without bias is linear in x and in w, so <conv(x, w), gy> = <x, gx> = <w, gw>
  Tensor y0 = out({cs.N, cs.K, P, Q}, dt);
  ref().conv2d_forward(y0, x, w, Tensor(), p, st);
  const double lhs = dot(vals(y0), gyr);
  Tensor gx = out({cs.N, cs.C, cs.H, cs.W}, dt);
  ref().conv2d_backward_data(gx, gy, w, p, st);
  Tensor gw = out({cs.K, cs.C / p.groups, cs.R, cs.S}, dt);
  Tensor gb = out({cs.K}, dt);
  ref().conv2d_backward_weight(gw, gb, gy, x, p, st);
  CHECK(dot(xr, vals(gx)) == doctest::Approx(lhs).epsilon(tol * 10));
  CHECK(dot(wr, vals(gw)) == doctest::Approx(lhs).epsilon(tol * 10));
  // each gx element is <gy, conv(e_i, w)>: check a few against the naive forward of a unit image
  for (size_t i : {size_t{0}, xr.size() / 2, xr.size() - 1}) {
    std::vector<double> e(xr.size(), 0.0);
    e[i] = 1.0;
    const double want = dot(naive_conv(e, wr, {}, cs.N, cs.C, cs.H, cs.W, cs.K, cs.R, cs.S, p, P, Q), gyr);
    CHECK(vals(gx)[i] == doctest::Approx(want).epsilon(tol).scale(1.0));
  }
  // gbias[k] = sum of gy over n, p, q
  for (int64_t k = 0; k < cs.K; ++k) {
    double s = 0;
    for (int64_t n = 0; n < cs.N; ++n)
      for (int64_t i = 0; i < P * Q; ++i) s += gyr[static_cast<size_t>((n * cs.K + k) * P * Q + i)];
    CHECK(vals(gb)[static_cast<size_t>(k)] == doctest::Approx(s).epsilon(tol).scale(1.0));
  }
}

}  // namespace

TEST_CASE("ref conv2d on a 1x1x3x3 image by hand") {
  Tensor x = make({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = make({1, 2, 3, 4}, {1, 1, 2, 2});
  Tensor b = make({0.5}, {1});
  OpStatePtr st;
  Tensor y = out({1, 1, 2, 2});
  ref().conv2d_forward(y, x, w, b, {}, st);
  // y[p][q] = x[p][q] + 2 x[p][q+1] + 3 x[p+1][q] + 4 x[p+1][q+1] + 0.5
  check_close(y, {37.5, 47.5, 67.5, 77.5});

  // 3x3 kernel of ones with padding 1: each output is the sum of its 3x3 neighbourhood
  Tensor ones = make(std::vector<double>(9, 1.0), {1, 1, 3, 3});
  Conv2dParams pad1;
  pad1.pad_h = pad1.pad_w = 1;
  Tensor y2 = out({1, 1, 3, 3});
  ref().conv2d_forward(y2, x, ones, Tensor(), pad1, st);
  check_close(y2, {12, 21, 16, 27, 45, 33, 24, 39, 28});

  // backwards of the first case with gy = ones (2x2)
  Tensor gy = make({1, 1, 1, 1}, {1, 1, 2, 2});
  Tensor gx = out({1, 1, 3, 3});
  ref().conv2d_backward_data(gx, gy, w, {}, st);
  check_close(gx, {1, 3, 2, 4, 10, 6, 3, 7, 4});
  Tensor gw = out({1, 1, 2, 2});
  Tensor gb = out({1});
  ref().conv2d_backward_weight(gw, gb, gy, x, {}, st);
  check_close(gw, {12, 16, 24, 28});
  check_close(gb, {4});
  Tensor no_bias;
  ref().conv2d_backward_weight(gw, no_bias, gy, x, {}, st);  // gbias undefined: only gw written
  check_close(gw, {12, 16, 24, 28});
}

TEST_CASE("ref conv2d strided / padded / dilated / grouped against a scatter formula") {
  Conv2dParams s2;
  s2.stride_h = s2.stride_w = 2;
  s2.pad_h = s2.pad_w = 1;
  check_case({2, 3, 7, 6, 4, 3, 3, s2}, DType::f64, 1e-12);

  Conv2dParams dil;
  dil.pad_h = dil.pad_w = 2;
  dil.dilation_h = dil.dilation_w = 2;
  dil.groups = 2;
  check_case({1, 4, 6, 7, 6, 3, 2, dil}, DType::f64, 1e-12);

  Conv2dParams mixed;  // asymmetric everything, depthwise-like groups (C = groups = 3, K = 6)
  mixed.stride_h = 2;
  mixed.stride_w = 1;
  mixed.pad_h = 0;
  mixed.pad_w = 1;
  mixed.dilation_h = 1;
  mixed.dilation_w = 3;
  mixed.groups = 3;
  check_case({2, 3, 8, 9, 6, 2, 3, mixed}, DType::f64, 1e-12);
  check_case({2, 3, 8, 9, 6, 2, 3, mixed}, DType::f32, 1e-5);

  Conv2dParams one_by_one;  // 1x1 kernel with stride 3
  one_by_one.stride_h = one_by_one.stride_w = 3;
  check_case({3, 5, 7, 7, 2, 1, 1, one_by_one}, DType::f64, 1e-12);
}

TEST_CASE("ref conv2d reads a non-contiguous input and rejects bad shapes") {
  // x as a (1, 1, 3, 3) view transposed in H/W: the kernel must read x^T
  Tensor xs = make({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor xt = xs.as_strided({1, 1, 3, 3}, {9, 9, 1, 3}, 0);  // xt[h][w] = x[w][h]
  Tensor w = make({1, 2, 3, 4}, {1, 1, 2, 2});
  OpStatePtr st;
  Tensor y = out({1, 1, 2, 2});
  ref().conv2d_forward(y, xt, w, Tensor(), {}, st);
  // x^T = [[1,4,7],[2,5,8],[3,6,9]]: y00 = 1 + 8 + 6 + 20 = 35
  check_close(y, {35, 65, 45, 75});
  Tensor bad = out({1, 1, 3, 3});
  CHECK_THROWS_WITH_AS(ref().conv2d_forward(bad, xs, w, Tensor(), {}, st), doctest::Contains("ref conv2d_forward"),
                       minidl::Error);
  Tensor w3 = make(std::vector<double>(8, 1.0), {2, 1, 2, 2});
  Conv2dParams g2;
  g2.groups = 2;  // C = 1 is not divisible by 2
  Tensor y3 = out({1, 2, 2, 2});
  CHECK_THROWS_AS(ref().conv2d_forward(y3, xs, w3, Tensor(), g2, st), minidl::Error);
  Tensor xi = minidl::zeros({1, 1, 3, 3}, TensorOptions().dtype(DType::i32));
  Tensor wi = minidl::zeros({1, 1, 2, 2}, TensorOptions().dtype(DType::i32));
  Tensor yi = minidl::zeros({1, 1, 2, 2}, TensorOptions().dtype(DType::i32));
  CHECK_THROWS_WITH_AS(ref().conv2d_forward(yi, xi, wi, Tensor(), {}, st), doctest::Contains("ref"), minidl::Error);
}
