// Tensor's data-movement methods: contiguous/clone/to (differentiable), in-place writes (not recorded; they
// bump the version counter and refuse any tensor that requires grad while grad mode is on), item and to_vector.
#include "autograd/function.h"
#include "backends/backend.h"

namespace minidl {
namespace {

Tensor empty_like(const Tensor& t, Device d) { return empty(t.sizes(), TensorOptions().dtype(t.dtype()).device(d)); }

// Copies src into a fresh contiguous tensor on `d` (crossing devices through the device backend).
Tensor copy_to(const Tensor& src, Device d, DType dtype) {
  Tensor out = empty(src.sizes(), TensorOptions().dtype(dtype).device(d));
  if (src.device() == d) {
    backend_for(d).copy(out, src);
    return out;
  }
  // Cross-device: make the source contiguous with the target dtype on its own device, then a plain transfer.
  Tensor s = src;
  if (!s.is_contiguous() || s.dtype() != dtype) {
    Tensor tmp = empty(src.sizes(), TensorOptions().dtype(dtype).device(src.device()));
    backend_for(src.device()).copy(tmp, src);
    s = tmp;
  }
  backend_for(d.is_cpu() ? src.device() : d).copy(out, s);
  return out;
}

// In-place writes are not recorded, so while grad mode is on they refuse every tensor that requires grad: a leaf
// (as PyTorch does), and also a result or view of the graph, whose later uses would otherwise get the gradient of
// the values before the write, silently (PyTorch records the write instead; minidl does not).
void check_inplace(const Tensor& t, const char* op) {
  if (!t.requires_grad() || !autograd::GradMode::is_enabled()) return;
  MINIDL_CHECK(!t.is_leaf(), op,
               ": a leaf tensor that requires grad is used in an in-place operation (wrap it in NoGradGuard)");
  MINIDL_FAIL(op, ": a tensor that requires grad (an output of '", t.grad_fn()->name(),
              "') is modified in place; minidl's autograd does not record in-place operations, so the gradient "
              "through it would be wrong: use the out-of-place operation, or NoGradGuard for a write outside the "
              "graph");
}

struct ToFn : autograd::Function<ToFn> {
  static constexpr const char* kName = "to";
  static Tensor forward(autograd::Context& ctx, const Tensor& x, Device d, DType t) {
    ctx.data["device"] = x.device();
    ctx.data["dtype"] = x.dtype();
    return copy_to(x, d, t);
  }
  static std::vector<Tensor> backward(autograd::Context& ctx, std::vector<Tensor> g) {
    return {copy_to(g[0], ctx.get<Device>("device"), ctx.get<DType>("dtype"))};
  }
};

}  // namespace

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return ToFn::apply(*this, device(), dtype());
}

Tensor Tensor::clone() const { return ToFn::apply(*this, device(), dtype()); }

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  return ToFn::apply(*this, d, dtype());
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  return ToFn::apply(*this, device(), t);
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_");
  MINIDL_CHECK(src.sizes() == sizes(), "copy_: source shape ", shape_str(src.sizes()),
               " does not match destination shape ", shape_str(sizes()));
  if (src.device() == device()) {
    backend_for(*this).copy(*this, src);
  } else if (is_contiguous()) {
    Tensor s = copy_to(src, src.device(), dtype()).contiguous();
    backend_for(device().is_cpu() ? src.device() : device()).copy(*this, s);
  } else {
    Tensor tmp = copy_to(src, device(), dtype());
    backend_for(*this).copy(*this, tmp);
  }
  bump_version();
  return *this;
}

Tensor& Tensor::fill_(double value) {
  check_inplace(*this, "fill_");
  if (is_contiguous()) {
    backend_for(*this).fill(*this, value);
  } else {
    Tensor tmp = full(sizes(), value, TensorOptions().dtype(dtype()).device(device()));
    backend_for(*this).copy(*this, tmp);
  }
  bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace(*this, "add_");
  MINIDL_CHECK(other.sizes() == sizes(), "add_: shapes ", shape_str(sizes()), " and ", shape_str(other.sizes()),
               " differ");
  Backend& b = backend_for(*this);
  if (alpha == 1.0) {
    b.binary(BinaryOp::Add, *this, *this, other);
  } else {
    Tensor scaled = empty_like(other, device());
    b.unary(UnaryOp::MulScalar, scaled, other, {alpha, 0.0});
    b.binary(BinaryOp::Add, *this, *this, scaled);
  }
  bump_version();
  return *this;
}

Tensor& Tensor::mul_(double s) {
  check_inplace(*this, "mul_");
  backend_for(*this).unary(UnaryOp::MulScalar, *this, *this, {s, 0.0});
  bump_version();
  return *this;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  autograd::NoGradGuard no_grad;
  Tensor host = copy_to(*this, kCPU, dtype_v<T>);
  const T* p = host.data<T>();
  return std::vector<T>(p, p + host.numel());
}

template <typename T>
T Tensor::item() const {
  MINIDL_CHECK(numel() == 1, "item: the tensor has ", numel(), " elements (shape ", shape_str(sizes()),
               "), expected exactly one");
  return to_vector<T>()[0];
}

template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template int32_t Tensor::item<int32_t>() const;
template int64_t Tensor::item<int64_t>() const;
template uint8_t Tensor::item<uint8_t>() const;

}  // namespace minidl
