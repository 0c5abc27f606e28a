// Elementwise unary and binary kernels of the cpu backend, f32 and f64. One templated loop per op family:
// operands are coalesced (cpu_loops.h) so contiguous and scalar-broadcast operands reach a stride-1 inner loop
// that g++ vectorises; other strides take the generic inner loop. Large sizes split across OpenMP threads.
#include <cmath>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/cpu_loops.h"

// glibc's libmvec has SIMD versions of expf / logf / tanhf, but <math.h> announces them only under -ffast-math.
// Declaring them `omp declare simd` here lets g++ vectorise the exp/log/tanh/sigmoid/pow loops (marked omp simd)
// with them (a few ulp from the scalar libm, well inside the conformance tolerance). Other platforms keep the scalar
// calls.
#if defined(__x86_64__) && defined(__GLIBC__) && defined(_OPENMP) && !defined(__clang__)
extern "C" {
#pragma omp declare simd notinbranch
float expf(float) noexcept;
#pragma omp declare simd notinbranch
float logf(float) noexcept;
#pragma omp declare simd notinbranch
float tanhf(float) noexcept;
#pragma omp declare simd notinbranch
float powf(float, float) noexcept;
}
#endif

namespace minidl {
namespace {

template <typename T, typename F>
void unary_loop(Tensor& out, const Tensor& in, F f) {
  T* o = static_cast<T*>(out.raw_data());
  const T* x = static_cast<const T*>(in.raw_data());
  auto plan = cpu::make_plan<2>(out.sizes(), {&out.strides(), &in.strides()});
  cpu::run_plan(plan, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
    T* po = o + off[0];
    const T* px = x + off[1];
    if (st[0] == 1 && st[1] == 1) {
      // omp simd: vectorise even loops with libm calls (errno would otherwise keep them scalar)
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) po[j] = f(px[j]);
    } else {
      for (int64_t j = 0; j < n; ++j) po[j * st[0]] = f(px[j * st[1]]);
    }
  });
}

template <typename T, typename O = T, typename F>
void binary_loop(Tensor& out, const Tensor& a, const Tensor& b, F f) {
  O* o = static_cast<O*>(out.raw_data());
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  auto plan = cpu::make_plan<3>(out.sizes(), {&out.strides(), &a.strides(), &b.strides()});
  cpu::run_plan(plan, [&](const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
    O* po = o + off[0];
    const T* xa = pa + off[1];
    const T* xb = pb + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) po[j] = f(xa[j], xb[j]);
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
      const T vb = *xb;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) po[j] = f(xa[j], vb);
    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
      const T va = *xa;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) po[j] = f(va, xb[j]);
    } else {
      for (int64_t j = 0; j < n; ++j) po[j * st[0]] = f(xa[j * st[1]], xb[j * st[2]]);
    }
  });
}

bool is_comparison(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::Lt || op == BinaryOp::Le;
}

// A comparison writing its 1/0 into an output of another dtype (e.g. a u8 or i64 mask).
template <typename T, typename O>
void compare_into(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::Eq: return binary_loop<T, O>(out, a, b, [](T x, T y) { return O(x == y); });
    case BinaryOp::Gt: return binary_loop<T, O>(out, a, b, [](T x, T y) { return O(x > y); });
    case BinaryOp::Ge: return binary_loop<T, O>(out, a, b, [](T x, T y) { return O(x >= y); });
    case BinaryOp::Lt: return binary_loop<T, O>(out, a, b, [](T x, T y) { return O(x < y); });
    case BinaryOp::Le: return binary_loop<T, O>(out, a, b, [](T x, T y) { return O(x <= y); });
    default: MINIDL_FAIL(op_name(op), " (backend cpu): not a comparison");
  }
}

void check_elementwise(const char* op, const Tensor& out, const Tensor& in, const char* in_name) {
  cpu::check_cpu(op, in_name, in);
  MINIDL_CHECK(in.sizes() == out.sizes(), op, " (backend cpu): ", in_name, " shape ", shape_str(in.sizes()),
               " differs from out shape ", shape_str(out.sizes()), " (inputs arrive broadcast)");
  MINIDL_CHECK(in.dtype() == out.dtype(), op, " (backend cpu): ", in_name, " dtype ", dtype_name(in.dtype()),
               " differs from out dtype ", dtype_name(out.dtype()));
}

template <typename T>
void unary_typed(UnaryOp op, Tensor& out, const Tensor& in, const UnaryParams& p) {
  const T a = static_cast<T>(p.a), b = static_cast<T>(p.b);
  switch (op) {
    case UnaryOp::Neg: return unary_loop<T>(out, in, [](T x) { return -x; });
    case UnaryOp::Exp: return unary_loop<T>(out, in, [](T x) { return std::exp(x); });
    case UnaryOp::Log: return unary_loop<T>(out, in, [](T x) { return std::log(x); });
    case UnaryOp::Sqrt: return unary_loop<T>(out, in, [](T x) { return std::sqrt(x); });
    case UnaryOp::Rsqrt: return unary_loop<T>(out, in, [](T x) { return T(1) / std::sqrt(x); });
    case UnaryOp::Abs: return unary_loop<T>(out, in, [](T x) { return std::abs(x); });
    // NaN passes through sign, relu and clamp (as in the ref backend and PyTorch)
    case UnaryOp::Sign: return unary_loop<T>(out, in, [](T x) { return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x); });
    case UnaryOp::Relu: return unary_loop<T>(out, in, [](T x) { return x < T(0) ? T(0) : x; });
    case UnaryOp::Sigmoid: return unary_loop<T>(out, in, [](T x) { return T(1) / (T(1) + std::exp(-x)); });
    case UnaryOp::Tanh: return unary_loop<T>(out, in, [](T x) { return std::tanh(x); });
    case UnaryOp::Square: return unary_loop<T>(out, in, [](T x) { return x * x; });
    case UnaryOp::Reciprocal: return unary_loop<T>(out, in, [](T x) { return T(1) / x; });
    case UnaryOp::PowScalar:
      if (p.a == 2.0) return unary_loop<T>(out, in, [](T x) { return x * x; });
      if (p.a == 1.0) return unary_loop<T>(out, in, [](T x) { return x; });
      return unary_loop<T>(out, in, [a](T x) { return std::pow(x, a); });
    case UnaryOp::Clamp: return unary_loop<T>(out, in, [a, b](T x) { return std::min(std::max(x, a), b); });
    case UnaryOp::AddScalar: return unary_loop<T>(out, in, [a](T x) { return x + a; });
    case UnaryOp::MulScalar: return unary_loop<T>(out, in, [a](T x) { return x * a; });
    case UnaryOp::Affine: return unary_loop<T>(out, in, [a, b](T x) { return x * a + b; });
    case UnaryOp::Round: return unary_loop<T>(out, in, [](T x) { return std::nearbyint(x); });
    case UnaryOp::Floor: return unary_loop<T>(out, in, [](T x) { return std::floor(x); });
    case UnaryOp::kCount: break;
  }
  MINIDL_FAIL("unary (backend cpu): unknown op ", static_cast<int>(op));
}

template <typename T>
void binary_typed(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
    case BinaryOp::Add: return binary_loop<T>(out, a, b, [](T x, T y) { return x + y; });
    case BinaryOp::Sub: return binary_loop<T>(out, a, b, [](T x, T y) { return x - y; });
    case BinaryOp::Mul: return binary_loop<T>(out, a, b, [](T x, T y) { return x * y; });
    case BinaryOp::Div: return binary_loop<T>(out, a, b, [](T x, T y) { return x / y; });
    case BinaryOp::Pow: return binary_loop<T>(out, a, b, [](T x, T y) { return std::pow(x, y); });
    // NaN propagates, as in torch.maximum / torch.minimum
    case BinaryOp::Maximum: return binary_loop<T>(out, a, b, [](T x, T y) { return (x > y || x != x) ? x : y; });
    case BinaryOp::Minimum: return binary_loop<T>(out, a, b, [](T x, T y) { return (x < y || x != x) ? x : y; });
    case BinaryOp::Eq: return binary_loop<T>(out, a, b, [](T x, T y) { return T(x == y); });
    case BinaryOp::Gt: return binary_loop<T>(out, a, b, [](T x, T y) { return T(x > y); });
    case BinaryOp::Ge: return binary_loop<T>(out, a, b, [](T x, T y) { return T(x >= y); });
    case BinaryOp::Lt: return binary_loop<T>(out, a, b, [](T x, T y) { return T(x < y); });
    case BinaryOp::Le: return binary_loop<T>(out, a, b, [](T x, T y) { return T(x <= y); });
    case BinaryOp::ReluBackward: return binary_loop<T>(out, a, b, [](T g, T y) { return y > T(0) ? g : T(0); });
    case BinaryOp::SigmoidBackward: return binary_loop<T>(out, a, b, [](T g, T y) { return g * y * (T(1) - y); });
    case BinaryOp::TanhBackward: return binary_loop<T>(out, a, b, [](T g, T y) { return g * (T(1) - y * y); });
    case BinaryOp::kCount: break;
  }
  MINIDL_FAIL("binary (backend cpu): unknown op ", static_cast<int>(op));
}

}  // namespace

void CpuBackend::unary(UnaryOp op, Tensor& out, const Tensor& in, const UnaryParams& p) {
  cpu::check_cpu(op_name(op), "out", out);
  check_elementwise(op_name(op), out, in, "input");
  if (!is_floating(out.dtype())) cpu::unsupported(op_name(op), out.dtype());
  dispatch_floating(out.dtype(), op_name(op), [&](auto tag) { unary_typed<decltype(tag)>(op, out, in, p); });
}

void CpuBackend::binary(BinaryOp op, Tensor& out, const Tensor& a, const Tensor& b) {
  cpu::check_cpu(op_name(op), "out", out);
  if (is_comparison(op) && out.dtype() != a.dtype()) {
    cpu::check_cpu(op_name(op), "a", a);
    cpu::check_cpu(op_name(op), "b", b);
    MINIDL_CHECK(a.sizes() == out.sizes() && b.sizes() == out.sizes(), op_name(op), " (backend cpu): shapes ",
                 shape_str(a.sizes()), " and ", shape_str(b.sizes()), " differ from out ", shape_str(out.sizes()));
    MINIDL_CHECK(a.dtype() == b.dtype(), op_name(op), " (backend cpu): a and b dtypes differ");
    if (!is_floating(a.dtype())) cpu::unsupported(op_name(op), a.dtype());
    dispatch_floating(a.dtype(), op_name(op), [&](auto tag) {
      using T = decltype(tag);
      dispatch_dtype(out.dtype(), [&](auto otag) { compare_into<T, decltype(otag)>(op, out, a, b); });
    });
    return;
  }
  check_elementwise(op_name(op), out, a, "a");
  check_elementwise(op_name(op), out, b, "b");
  if (!is_floating(out.dtype())) cpu::unsupported(op_name(op), out.dtype());
  dispatch_floating(out.dtype(), op_name(op), [&](auto tag) { binary_typed<decltype(tag)>(op, out, a, b); });
}

}  // namespace minidl
