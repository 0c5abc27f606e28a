// Weight standardisation and the weight quantizer's backward are one backend call each on the host
// (Backend::weight_standardize_forward / _backward and quantize_weight_backward, backends/cpu/
// cpu_weight_reductions.cpp). These tests pin them to the chains of primitives the ops ran before (a float64 copy,
// Mean, Sub, Square, Sum, then Sub and Div in the weight's dtype; backward Mean, Mul, Sum, MulScalar, Sub, Affine;
// the quantizer's Mul by its mask and Sum of g * coef times the gradient scale), bit for bit: f32 and f64, sizes
// below and above the reductions' parallel split, 1 to 3 threads, live and detached statistics.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "autograd/ops.h"
#include "quant/op_utils.h"
#include "quant/ops.h"
#include "tensor/generator.h"
#include "test_scopes.h"

using namespace minidl;
using namespace minidl::quant::detail;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.dtype() == cb.dtype() && ca.sizes() == cb.sizes() &&
         std::memcmp(ca.raw_data(), cb.raw_data(), ca.nbytes()) == 0;
}

struct ChainForward {
  Tensor z;
  double stdv;  // rounded to the weight's dtype, as the op keeps it for backward
};

// The forward the op ran before, primitive by primitive.
ChainForward chain_forward(const Tensor& w) {
  const Tensor w64 = w.dtype() == DType::f64 ? w : w.to(DType::f64);
  const auto all = normalize_dims({}, w.dim(), "test");
  const double mean = reduce_raw(ReduceOp::Mean, w64, all).item<double>();
  const Tensor centred = binary_raw(BinaryOp::Sub, w64, scalar_like(mean, w64), "test");
  const double ss = reduce_raw(ReduceOp::Sum, unary_raw(UnaryOp::Square, centred), all).item<double>();
  const double stdv = std::sqrt(ss / static_cast<double>(w.numel() - 1));
  const Tensor mean_t = scalar_like(mean, w), std_t = scalar_like(stdv, w);
  return {div_raw(sub_raw(w, mean_t), std_t), std_t.item<double>()};
}

// Its backward through the live statistics.
Tensor chain_backward(const Tensor& gz, const Tensor& z, double stdv) {
  const auto all = normalize_dims({}, z.dim(), "test");
  const double gmean = reduce_raw(ReduceOp::Mean, gz, all).item<double>();
  const double gzdot = reduce_raw(ReduceOp::Sum, mul_raw(gz, z), all).item<double>();
  Tensor t = sub_raw(gz, unary_raw(UnaryOp::MulScalar, z, gzdot / static_cast<double>(z.numel() - 1)));
  return unary_raw(UnaryOp::Affine, t, 1.0 / stdv, -gmean / stdv);
}

}  // namespace

TEST_CASE("weight_standardize: the fused host calls give the primitives' bits, forward and backward") {
  // 16x16x3x3 and 64x64x3x3 (ResNet-20's smallest and largest), one above the reductions' parallel split
  // (kParallelGrain = 32768 elements), a 2-element tensor and an odd size
  const Shape shapes[] = {{16, 16, 3, 3}, {64, 64, 3, 3}, {2}, {7, 5, 3, 3}, {256, 128, 3, 3}};
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Shape& shape : shapes) {
      for (int threads : {1, 2, 3}) {
        INFO(dtype_name(dt) << " " << shape_str(shape) << ", " << threads << " threads");
        test::ThreadsGuard tg(threads);
        manual_seed(11);
        // an offset and a scale so that the mean and the centring matter
        const Tensor w0 = (randn(shape) * 0.05 + 0.01).to(dt);
        const Tensor gz = randn(shape).to(dt);
        for (bool detach : {false, true}) {
          Tensor w = w0.detach().set_requires_grad(true);
          const Tensor z = quant::weight_standardize(w, detach);
          const ChainForward ref = chain_forward(w0);
          CHECK(same_bits(z, ref.z));
          z.backward(gz);
          const Tensor want =
              detach ? unary_raw(UnaryOp::MulScalar, gz, 1.0 / ref.stdv) : chain_backward(gz, ref.z, ref.stdv);
          CHECK(same_bits(w.grad(), want));
        }
      }
    }
  }
}

TEST_CASE("quantize_weight: the fused host backward gives the primitives' bits") {
  const Shape shapes[] = {{16, 16, 3, 3}, {64, 64, 3, 3}, {3}, {256, 128, 3, 3}};
  for (DType dt : {DType::f32, DType::f64}) {
    for (const Shape& shape : shapes) {
      for (int threads : {1, 2, 3}) {
        for (const char* scheme : {"apot", "pot", "uniform"}) {
          for (quant::Semantics sem : {quant::Semantics::APoT_I, quant::Semantics::APoT_C}) {
            for (double scale : {1.0, 0.25}) {
              INFO(dtype_name(dt) << " " << shape_str(shape) << ", " << threads << " threads, " << scheme << " "
                                  << quant::semantics_name(sem) << ", grad scale " << scale);
              test::ThreadsGuard tg(threads);
              manual_seed(13);
              const Tensor w0 = randn(shape).to(dt);
              const Tensor g = randn(shape).to(dt);
              const quant::LevelSet ls = quant::LevelSet::make(quant::parse_scheme(scheme), 4, true, dt);
              const Tensor a0 = scalar_tensor(1.5, TensorOptions().dtype(dt));
              Tensor w = w0.detach().set_requires_grad(true), alpha = a0.detach().set_requires_grad(true);
              quant::quantize_weight(w, alpha, ls, sem, scale).backward(g);
              // the chain, from the forward's own mask and coefficient
              Tensor out = empty(shape, TensorOptions().dtype(dt)), coef = empty(shape, TensorOptions().dtype(dt)),
                     inside = empty(shape, TensorOptions().dtype(dt));
              backend_for(w0).quantize_weight_forward(out, coef, inside, w0, a0,
                                                      ls.rounding ? Tensor() : levels_like(ls, w0), ls.steps);
              const bool clip = sem == quant::Semantics::APoT_I;  // 4-bit: the clipped straight-through estimator
              CHECK(same_bits(w.grad(), clip ? mul_raw(g, inside) : g));
              CHECK(same_bits(alpha.grad(), sum_as(mul_raw(g, coef), a0.sizes(), scale)));
            }
          }
        }
      }
    }
  }
}

TEST_CASE("weight_standardize: constant or non-finite weights are an error, not garbage") {
  CHECK_THROWS_WITH_AS(quant::weight_standardize(ones({4, 4, 3, 3}), false), doctest::Contains("standard deviation"),
                       Error);
  Tensor w = randn({4, 4, 3, 3});
  w.data<float>()[5] = std::nanf("");
  CHECK_THROWS_WITH_AS(quant::weight_standardize(w, false), doctest::Contains("standard deviation"), Error);
}
