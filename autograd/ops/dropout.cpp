// Inverted dropout as a Function. The keep mask is drawn on the host from the counter-based generator (one
// reserved Philox range per call, stream kDropoutStream), so a seed gives the same mask on every backend and
// dtype; it is saved as a 0/1 SaveKind::Mask (a packer may store it as bits) and the scale 1/(1-p) rides in ctx.
#include "autograd/ops/op_utils.h"
#include "tensor/generator.h"

namespace minidl {

using namespace ops_detail;

namespace {

constexpr uint64_t kDropoutStream = 0x64726f70;  // "drop": apart from the stream 0 used by rand/randn

/// 1 where an element is kept (uniform draw >= p), else 0, in x's dtype and device.
Tensor keep_mask(const Tensor& x, double p) {
  const int64_t n = x.numel();
  auto& gen = default_generator();
  const uint64_t offset = gen.reserve(static_cast<uint64_t>(n));
  std::vector<float> u(static_cast<size_t>(n));
  philox_uniform(u.data(), n, gen.seed(), kDropoutStream, offset);
  std::vector<uint8_t> keep(static_cast<size_t>(n));
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = static_cast<double>(u[i]) >= p ? 1 : 0;
  // from_vector reads an empty shape as 1-D: build flat, then take x's shape (a 0-dim x keeps its 0-dim mask)
  return from_vector(keep, {n}, TensorOptions().dtype(x.dtype()).device(x.device())).reshape(x.sizes());
}

struct DropoutFn : autograd::Function<DropoutFn> {
  static constexpr const char* kName = "dropout";
  static Tensor forward(Context& ctx, const Tensor& x, double p) {
    const double scale = 1.0 / (1.0 - p);
    Tensor mask = keep_mask(x, p);
    Tensor y = binary_raw(BinaryOp::Mul, x, mask, kName);
    backend_for(y).unary(UnaryOp::MulScalar, y, y, UnaryParams{scale, 0.0});
    ctx.save(mask, SaveKind::Mask);
    ctx.data["scale"] = scale;
    return y;
  }
  static std::vector<Tensor> backward(Context& ctx, std::vector<Tensor> g) {
    Tensor gx = binary_raw(BinaryOp::Mul, g[0], ctx.saved(0), kName);
    backend_for(gx).unary(UnaryOp::MulScalar, gx, gx, UnaryParams{ctx.get<double>("scale"), 0.0});
    return {gx};
  }
};

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training) {
  MINIDL_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;
  check_floating("dropout", x);
  // p = 1 drops everything; the output is still connected to x (with a zero gradient), as in PyTorch.
  if (p == 1.0) return x * 0.0;
  return DropoutFn::apply(x, p);
}

}  // namespace minidl
