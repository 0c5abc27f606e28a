// CpuBackend: registration as "cpu", the supports() table, data movement (fill / copy / cast over any strides)
// and the small helpers the other cpu kernels share.
#include "backends/cpu/cpu_backend.h"

#include <cstring>

#include "backends/cpu/cpu_loops.h"

namespace minidl {

namespace {
CpuBackend g_cpu_backend;
const bool g_registered = (register_backend("cpu", &g_cpu_backend), true);
}  // namespace

CpuBackend& cpu_backend() { return g_cpu_backend; }

bool CpuBackend::supports(OpKind op, DType dtype) const {
  (void)g_registered;
  switch (op) {
    case OpKind::Fill:
    case OpKind::Copy: return true;
    case OpKind::Unary:
    case OpKind::Binary:
    case OpKind::Reduce:
    case OpKind::Matmul:
    case OpKind::MaxPool2d:
    case OpKind::AdaptiveAvgPool2d:
    case OpKind::BatchNorm:
    case OpKind::LogSoftmax:
    case OpKind::NllLoss: return is_floating(dtype);
    // oneDNN primitives: f32 only.
    case OpKind::Conv2d:
    case OpKind::AvgPool2d: return dtype == DType::f32;
    case OpKind::Quantize: return is_floating(dtype);  // project_to_levels
    case OpKind::OptimUpdate: return is_floating(dtype);  // the Backend base class's host loops
    case OpKind::kCount: return false;
  }
  return false;
}

namespace cpu {

void check_cpu(const char* op, const char* what, const Tensor& t) {
  MINIDL_CHECK(t.defined(), op, " (backend cpu): ", what, " is undefined");
  MINIDL_CHECK(t.device().is_cpu(), op, " (backend cpu): ", what, " lives on ", t.device().str());
}

void check_tensor(const char* op, const char* what, const Tensor& t, DType dt, const Shape& shape) {
  check_cpu(op, what, t);
  MINIDL_CHECK(t.dtype() == dt, op, " (backend cpu): ", what, " has dtype ", dtype_name(t.dtype()), ", expected ",
               dtype_name(dt));
  MINIDL_CHECK(t.sizes() == shape, op, " (backend cpu): ", what, " has shape ", shape_str(t.sizes()), ", expected ",
               shape_str(shape));
}

void unsupported(const char* op, DType dt) {
  MINIDL_FAIL(op, ": backend cpu does not support dtype ", dtype_name(dt),
              dt == DType::f64 ? " for this op (its oneDNN kernels are float32 only; the ref backend does float64)"
                               : " for this op");
}

Tensor contiguous_input(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor c = empty(t.sizes(), TensorOptions{}.dtype(t.dtype()));
  cpu_backend().copy(c, t);
  return c;
}

Tensor dense_input(const Tensor& t) {
  if (t.dim() == 4 && t.is_channels_last()) return t;
  return contiguous_input(t);
}

Tensor channels_last_input(const Tensor& t) {
  if (t.is_channels_last()) return t;
  Tensor c = empty(t.sizes(), TensorOptions{}.dtype(t.dtype()), MemoryFormat::ChannelsLast);
  cpu_backend().copy(c, t);
  return c;
}

}  // namespace cpu

void CpuBackend::fill(Tensor& out, double value) {
  cpu::check_cpu("fill", "out", out);
  dispatch_dtype(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out.raw_data());
    const T v = cpu::cast_value<T>(value);
    auto plan = cpu::make_plan<1>(out.sizes(), {&out.strides()});
    cpu::run_plan(plan, [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
      T* p = o + off[0];
      if (st[0] == 1) {
        for (int64_t j = 0; j < n; ++j) p[j] = v;
      } else {
        for (int64_t j = 0; j < n; ++j) p[j * st[0]] = v;
      }
    });
  });
}

void CpuBackend::copy(Tensor& dst, const Tensor& src) {
  cpu::check_cpu("copy", "dst", dst);
  cpu::check_cpu("copy", "src", src);
  MINIDL_CHECK(dst.sizes() == src.sizes(), "copy (backend cpu): dst shape ", shape_str(dst.sizes()),
               " differs from src shape ", shape_str(src.sizes()));
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    char* d = static_cast<char*>(dst.raw_data());
    const char* s = static_cast<const char*>(src.raw_data());
    const int64_t nbytes = static_cast<int64_t>(dst.nbytes());
    if (d != s) {
      cpu::parallel_for(nbytes / 4096 + 1, 1024, [&](int64_t b, int64_t e) {
        const int64_t lo = b * 4096, hi = std::min(nbytes, e * 4096);
        if (hi > lo) std::memcpy(d + lo, s + lo, static_cast<size_t>(hi - lo));
      });
    }
    return;
  }
  dispatch_dtype(dst.dtype(), [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_dtype(src.dtype(), [&](auto stag) {
      using S = decltype(stag);
      D* d = static_cast<D*>(dst.raw_data());
      const S* s = static_cast<const S*>(src.raw_data());
      auto plan = cpu::make_plan<2>(dst.sizes(), {&dst.strides(), &src.strides()});
      cpu::run_plan(plan, [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
        D* pd = d + off[0];
        const S* ps = s + off[1];
        if (st[0] == 1 && st[1] == 1) {
          for (int64_t j = 0; j < n; ++j) pd[j] = cpu::cast_value<D>(ps[j]);
        } else {
          for (int64_t j = 0; j < n; ++j) pd[j * st[0]] = cpu::cast_value<D>(ps[j * st[1]]);
        }
      });
    });
  });
}

}  // namespace minidl
