// Packed ResNet forward, save and load (see packed_resnet.h; the file layout is documented in docs/deploy.md).
#include "quant/packed/packed_resnet.h"

#include <omp.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "backends/int_conv_bitserial.h"
#include "core/error.h"
#include "quant/quant_layers.h"
#include "tensor/safetensors.h"

namespace minidl::quant {

namespace {

constexpr const char* kFormat = "minidl.packed_resnet";
constexpr const char* kVersion = "1";

Scheme scheme_of(ActQuant a) {
  return a == ActQuant::Uniform ? Scheme::Uniform : a == ActQuant::PoT ? Scheme::PoT : Scheme::APoT;
}
Scheme scheme_of(WeightQuant w) {
  return w == WeightQuant::Uniform ? Scheme::Uniform : w == WeightQuant::PoT ? Scheme::PoT : Scheme::APoT;
}

int64_t weight_count(const PackedLayer& l) { return l.out * l.in * (l.linear ? 1 : l.kernel * l.kernel); }

Shape weight_shape(const PackedLayer& l) {
  return l.linear ? Shape{l.out, l.in} : Shape{l.out, l.in, l.kernel, l.kernel};
}

void check_float_cpu(const Tensor& t, const std::string& what) {
  MINIDL_CHECK(t.defined() && t.dtype() == DType::f32 && t.device() == kCPU, what,
               ": expected a float32 cpu tensor, got ",
               t.defined() ? std::string(dtype_name(t.dtype())) : std::string("undefined"));
}

// t itself when its memory is NHWC already, else a channels-last copy (the integer path's layout).
Tensor to_channels_last(const Tensor& t) {
  if (t.dim() != 4 || t.is_channels_last()) return t;
  Tensor c = empty(t.sizes(), TensorOptions{}.dtype(t.dtype()), MemoryFormat::ChannelsLast);
  c.copy_(t);
  return c;
}

// nn::option_a_shortcut (every stride-th pixel, the channels zero-padded to `planes`, the extra split front / back as
// there) of channels-last x, written channels-last in one pass: the sliced, concatenated copy and its NHWC copy cost
// 3-4 % of a batch-128 forward on AVX2.
Tensor option_a_shortcut_nhwc(const Tensor& x, int64_t stride, int64_t planes) {
  MINIDL_CHECK(x.dim() == 4 && stride >= 1 && planes >= x.size(1), "packed ResNet: option-A shortcut of ",
               shape_str(x.sizes()), " to ", planes, " planes, stride ", stride);
  const Tensor xc = to_channels_last(x);
  const int64_t N = xc.size(0), C = xc.size(1), H = xc.size(2), W = xc.size(3);
  const int64_t OH = (H + stride - 1) / stride, OW = (W + stride - 1) / stride, front = (planes - C) / 2;
  Tensor y = empty({N, planes, OH, OW}, TensorOptions{}, MemoryFormat::ChannelsLast);
  const float* src = xc.data<float>();
  float* dst = y.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        float* out = dst + ((n * OH + oh) * OW + ow) * planes;
        std::fill(out, out + front, 0.0f);
        std::copy_n(src + ((n * H + oh * stride) * W + ow * stride) * C, C, out + front);
        std::fill(out + front + C, out + planes, 0.0f);
      }
  return y;
}

// quantize_to_codes over OpenMP threads (a batch's whole activation), returning the NaN count.
int64_t quantize_parallel(const backends::CodeThresholds& q, const float* x, int64_t n, uint8_t* out) {
  constexpr int64_t kChunk = int64_t{1} << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  int64_t nan = 0;
#pragma omp parallel for schedule(static) reduction(+ : nan) if (chunks > 1 && omp_in_parallel() == 0)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t lo = c * kChunk;
    nan += backends::quantize_to_codes(q, x + lo, std::min(kChunk, n - lo), out + lo);
  }
  return nan;
}

// The float weight the fake-quant layer multiplies with, rebuilt from the codes in the quantizer's own float32
// operations (so the float path's conv sees the same bits): signed-max 8-bit (code / 127) * max; binary
// +-mean|w|; uniform (code / s) * alpha; APoT / PoT (+-level) * alpha with the level set's float32 magnitudes.
// The float32 max / alpha are the unit times 127 / s / n_max, which rounds back to the float exactly.
std::vector<float> dequantize_as_fake_quant(const PackedLayer& l, const std::vector<int32_t>& codes) {
  std::vector<float> d(codes.size());
  switch (l.weight_kind) {
    case WeightQuant::SignedMax8: {
      const auto m = static_cast<float>(l.weight_unit * 127.0);
      for (size_t i = 0; i < codes.size(); ++i) d[i] = static_cast<float>(codes[i]) / 127.0f * m;
      break;
    }
    case WeightQuant::Binary: {
      const auto u = static_cast<float>(l.weight_unit);
      for (size_t i = 0; i < codes.size(); ++i) d[i] = static_cast<float>(codes[i]) * u;
      break;
    }
    default: {
      const LevelSet ls = LevelSet::make(scheme_of(l.weight_kind), l.weight_bits, true);
      if (ls.rounding) {
        const auto s = static_cast<float>(ls.steps);
        const auto alpha = static_cast<float>(l.weight_unit * ls.steps);
        for (size_t i = 0; i < codes.size(); ++i) d[i] = static_cast<float>(codes[i]) / s * alpha;
      } else {
        int64_t n_max = 0;
        const std::vector<int64_t> n = integer_levels(ls, n_max);
        const std::vector<float> mag = ls.magnitudes.to_vector<float>();
        const auto alpha = static_cast<float>(l.weight_unit * static_cast<double>(n_max));
        for (size_t i = 0; i < codes.size(); ++i) {
          const int64_t a = std::abs(static_cast<int64_t>(codes[i]));
          const auto k = static_cast<size_t>(std::lower_bound(n.begin(), n.end(), a) - n.begin());
          MINIDL_CHECK(k < n.size() && n[k] == a, "packed layer '", l.name, "': weight code ", codes[i],
                       " is not on the ", ls.str(), " grid");
          d[i] = (codes[i] < 0 ? -mag[k] : mag[k]) * alpha;
        }
      }
    }
  }
  return d;
}

}  // namespace

// ---- PackedLayer ----

void PackedLayer::prepare() {
  const std::string what = "packed layer '" + name + "'";
  MINIDL_CHECK(in > 0 && out > 0 && kernel > 0 && stride > 0 && padding >= 0, what, ": invalid geometry in=", in,
               " out=", out, " kernel=", kernel, " stride=", stride, " padding=", padding);
  MINIDL_CHECK(!linear || (kernel == 1 && stride == 1 && padding == 0), what,
               ": a linear layer has kernel 1, stride 1, padding 0");
  MINIDL_CHECK(static_cast<int64_t>(scale.size()) == out && static_cast<int64_t>(shift.size()) == out, what, ": ",
               scale.size(), " scales and ", shift.size(), " shifts for ", out, " output channels");
  const int64_t nw = weight_count(*this);

  // The input quantizer: the same op and settings as the trained layer, plus the unit of one code.
  act_unit_ = 0;
  act_max_code_ = 0;
  act_alpha_t_ = Tensor();
  act_levels_ = LevelSet();
  act_spec_ = QuantSpec::full_precision();
  if (act != ActQuant::Float) {
    act_spec_.act = act;
    act_spec_.act_bits = act_bits;
    act_spec_.semantics = semantics;
    if (act != ActQuant::IntGrid) {
      MINIDL_CHECK(act_alpha > 0 && std::isfinite(act_alpha), what, ": activation clip alpha must be > 0, got ",
                   act_alpha);
      act_alpha_t_ = scalar_tensor(act_alpha);
    }
    MINIDL_CHECK(act_bits >= 1 && act_bits <= 8, what, ": activation bit width ", act_bits, " is outside 1..8");
    const int64_t k = (int64_t{1} << act_bits) - 1;
    switch (act) {
      case ActQuant::PACT:
        act_unit_ = act_alpha / static_cast<double>(k);
        act_max_code_ = k;
        break;
      case ActQuant::IntGrid:
        act_unit_ = 1.0;
        act_max_code_ = k;
        break;
      default: {
        act_levels_ = LevelSet::make(scheme_of(act), act_bits, false);
        if (act_levels_.rounding) {
          act_unit_ = act_alpha / act_levels_.steps;
          act_max_code_ = static_cast<int64_t>(act_levels_.steps);
        } else {
          int64_t n_max = 0;
          integer_levels(act_levels_, n_max);
          act_unit_ = act_alpha / static_cast<double>(n_max);
          act_max_code_ = n_max;
        }
      }
    }
  }

  // The weights: codes (checked against the geometry) or float32.
  std::vector<int32_t> w;
  if (weight_kind == WeightQuant::Float) {
    check_float_cpu(float_weight, what + " float weight");
    MINIDL_CHECK(float_weight.numel() == nw, what, ": float weight has ", float_weight.numel(), " values, expected ",
                 nw);
    deq_weight_ = float_weight.contiguous().reshape(weight_shape(*this));
  } else {
    MINIDL_CHECK(weight_unit > 0 && std::isfinite(weight_unit), what, ": weight unit must be > 0, got ", weight_unit);
    MINIDL_CHECK(codes.count == nw, what, ": ", codes.count, " weight codes, expected ", nw, " for ",
                 shape_str(weight_shape(*this)));
    w = unpack_codes(codes, what + " weight codes");
  }
  bool codes_fit_s8 = !w.empty();
  for (int32_t c : w) codes_fit_s8 = codes_fit_s8 && c >= -128 && c <= 127;
  integer_ =
      !linear && weight_kind != WeightQuant::Float && act != ActQuant::Float && act_max_code_ <= 255 && codes_fit_s8;
  unit_prod_ = 0;
  gemm_w_ = backends::PackedInt8Weights();
  act_codes_ = integer_ ? derive_thresholds() : backends::CodeThresholds();
  if (integer_) {
    const std::vector<int8_t> w8(w.begin(), w.end());
    // The codes this layer's quantizer produces are at most act_max_code_: the AVX2 kernel's int16 windows use it.
    gemm_w_ = backends::pack_conv_weights_rsc(out, in, kernel, w8.data(), static_cast<int>(act_max_code_));
    // The value of one unit of the integer sum: act_unit * weight_unit, in double.
    unit_prod_ = act_unit_ * weight_unit;
    deq_weight_ = Tensor();
  } else if (weight_kind != WeightQuant::Float) {
    deq_weight_ = from_vector(dequantize_as_fake_quant(*this, w), weight_shape(*this));
  }
  // The fc's bias goes into linear() itself, as in QuantLinear, so the float path adds it the same way.
  bias_t_ = Tensor();
  if (linear) {
    for (float sc : scale)
      MINIDL_CHECK(sc == 1.0f, what, ": a linear layer has scale 1 (its shift is the bias), got ", sc);
    bias_t_ = from_vector(shift, {out});
  }
}

std::string PackedLayer::int_kernel() const {
  if (!integer_) return "";
  // the geometry as forward() gives it; the spatial size does not enter the choice
  const backends::IntConvGeometry g{1, kernel, kernel, in, out, kernel, stride, padding, kCodeBorder};
  if (backends::bitserial_conv_runnable(g, gemm_w_)) return "bit-serial";
  return backends::int_gemm_kernel_name(backends::int_gemm_kernel());
}

Tensor PackedLayer::quantize(const Tensor& x) const {
  NoGradGuard no_grad;
  return quantize_input(x, act_spec_, act_alpha_t_, act_levels_);
}

// The thresholds of the input quantizer, found on the fake-quant op itself: for each code it can produce, the
// smallest float32 that reaches it, by bisection over the ordered bit patterns of the non-negative floats (the op
// runs once per step on all codes at once). Every activation quantizer clips and rounds or projects, so its code
// is monotone in its input; the result is checked on the thresholds' neighbours and a sweep of the range, so a
// quantizer that were not would fail here, not compute wrong codes.
backends::CodeThresholds PackedLayer::derive_thresholds() const {
  const std::string what = "packed layer '" + name + "'";
  std::vector<int64_t> book;
  if (act_levels_.magnitudes.defined()) {
    int64_t n_max = 0;
    book = integer_levels(act_levels_, n_max);
  } else {
    for (int64_t c = 0; c <= act_max_code_; ++c) book.push_back(c);
  }
  MINIDL_CHECK(book.size() >= 2 && book.front() >= 0 && book.back() <= 255, what, ": ", book.size(),
               " activation codes up to ", book.empty() ? 0 : book.back(), " do not fit unsigned 8 bits");
  const double inv = 1.0 / act_unit_;
  const auto codes_of = [&](const std::vector<float>& xs) {
    const std::vector<float> q = quantize(from_vector(xs, {static_cast<int64_t>(xs.size())})).to_vector<float>();
    std::vector<int64_t> c(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) {
      const double v = static_cast<double>(q[i]) * inv, r = std::nearbyint(v);
      MINIDL_CHECK(std::abs(v - r) < 1e-3 && r >= 0 && r <= static_cast<double>(act_max_code_), what,
                   ": the quantizer maps ", xs[i], " to ", q[i], ", not a code 0..", act_max_code_, " times the unit ",
                   act_unit_);
      c[i] = static_cast<int64_t>(r);
    }
    return c;
  };
  const std::vector<int64_t> ends = codes_of({0.0f, FLT_MAX});
  MINIDL_CHECK(ends[0] == book.front() && ends[1] == book.back(), what, ": the quantizer maps 0 and FLT_MAX to codes ",
               ends[0], " and ", ends[1], ", expected ", book.front(), " and ", book.back());
  // invariant per code k >= 1: code(lo[k]) < book[k] <= code(hi[k])
  const size_t L = book.size();
  std::vector<uint32_t> lo(L, 0), hi(L, std::bit_cast<uint32_t>(FLT_MAX));
  for (;;) {
    std::vector<float> mid;
    std::vector<size_t> which;
    for (size_t k = 1; k < L; ++k)
      if (hi[k] - lo[k] > 1) {
        mid.push_back(std::bit_cast<float>(lo[k] + (hi[k] - lo[k]) / 2));
        which.push_back(k);
      }
    if (mid.empty()) break;
    const std::vector<int64_t> c = codes_of(mid);
    for (size_t j = 0; j < which.size(); ++j) {
      const size_t k = which[j];
      (c[j] >= book[k] ? hi[k] : lo[k]) = std::bit_cast<uint32_t>(mid[j]);
    }
  }
  // A code the quantizer never produces shares its threshold with the next one: keep the higher code.
  std::vector<float> t;
  std::vector<uint8_t> b{static_cast<uint8_t>(book[0])};
  for (size_t k = 1; k < L; ++k) {
    const float tk = std::bit_cast<float>(hi[k]);
    if (!t.empty() && t.back() == tk) {
      b.back() = static_cast<uint8_t>(book[k]);
    } else {
      t.push_back(tk);
      b.push_back(static_cast<uint8_t>(book[k]));
    }
  }
  backends::CodeThresholds q(t, b);
  std::vector<float> probe{0.0f, -0.0f, -1.0f, FLT_MAX, -FLT_MAX, FLT_MIN};
  for (float tk : t) {
    probe.push_back(tk);
    probe.push_back(std::nextafter(tk, -FLT_MAX));
    probe.push_back(std::nextafter(tk, FLT_MAX));
  }
  const double top = act_unit_ * static_cast<double>(act_max_code_);
  for (int i = 0; i < 1024; ++i) probe.push_back(static_cast<float>(top * (-0.25 + 1.5 * i / 1023.0)));
  const std::vector<int64_t> want = codes_of(probe);
  for (size_t i = 0; i < probe.size(); ++i)
    MINIDL_CHECK(q.code(probe[i]) == want[i], what, ": the activation quantizer is not monotone (input ", probe[i],
                 " gives code ", want[i], ", its thresholds ", int{q.code(probe[i])}, ")");
  return q;
}

std::vector<uint8_t> PackedLayer::input_codes(const Tensor& x) const {
  MINIDL_CHECK(integer_, "packed layer '", name, "': input codes exist on the integer path only (prepare() first)");
  check_float_cpu(x, "packed layer '" + name + "' input");
  const Tensor xc = x.contiguous();
  std::vector<uint8_t> codes(static_cast<size_t>(xc.numel()));
  const int64_t nan = quantize_parallel(act_codes_, xc.data<float>(), xc.numel(), codes.data());
  MINIDL_CHECK(nan == 0, "packed layer '", name, "': ", nan, " input values are NaN");
  return codes;
}

Tensor PackedLayer::codes_nhwc(const Tensor& x) const {
  MINIDL_CHECK(integer_, "packed layer '", name, "': codes_nhwc needs the integer path (prepare() first)");
  check_float_cpu(x, "packed layer '" + name + "' input");
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == in, "packed layer '", name, "': expected input (N, ", in, ", H, W), got ",
               shape_str(x.sizes()));
  const Tensor xc = to_channels_last(x);
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3), B = kCodeBorder;
  Tensor codes = code_buffer(N, H, W, in);
  // Image by image into the bordered buffer, over OpenMP threads for a whole batch.
  const float* src = xc.data<float>();
  uint8_t* dst = codes.data<uint8_t>();
  const int64_t image = H * W * in, padded = backends::padded_codes_size(1, H, W, in, B);
  const bool parallel = N * image > (int64_t{1} << 16) && omp_in_parallel() == 0;
  int64_t nan = 0;
#pragma omp parallel for schedule(static) reduction(+ : nan) if (parallel)
  for (int64_t n = 0; n < N; ++n)
    nan += backends::quantize_to_codes_bordered(act_codes_, src + n * image, H, W, in, B, dst + n * padded);
  MINIDL_CHECK(nan == 0, "packed layer '", name, "': ", nan, " input values are NaN");
  return codes;
}

Tensor PackedLayer::code_buffer(int64_t N, int64_t H, int64_t W, int64_t C) {
  const int64_t B = kCodeBorder;
  Tensor t = empty({N, H + 2 * B, W + 2 * B, C}, TensorOptions{}.dtype(DType::u8));
  backends::zero_codes_border(t.data<uint8_t>(), N, H, W, C, B);
  return t;
}

void PackedLayer::conv_codes(int64_t N, int64_t H, int64_t W, const uint8_t* codes, backends::IntConvEpilogue e) const {
  MINIDL_CHECK(integer_, "packed layer '", name, "': conv_codes needs the integer path (prepare() first)");
  backends::IntConvGeometry g;
  g.batch = N;
  g.in_h = H;
  g.in_w = W;
  g.in_c = in;
  g.out_c = out;
  g.kernel = kernel;
  g.stride = stride;
  g.padding = padding;
  g.in_pad = kCodeBorder;
  e.codes_pad = kCodeBorder;
  e.unit = unit_prod_;
  e.scale = scale.data();
  e.shift = shift.data();
  const int64_t nan = backends::int_conv2d_nhwc(g, codes, gemm_w_, e);
  MINIDL_CHECK(nan == 0, "packed layer '", name, "': ", nan,
               " outputs are NaN (a non-finite input or residual reached the next quantizer)");
}

Tensor PackedLayer::forward(const Tensor& x, const Tensor& residual, bool relu) const {
  const std::string what = "packed layer '" + name + "'";
  check_float_cpu(x, what + " input");
  if (linear) {
    MINIDL_CHECK(x.dim() == 2 && x.size(1) == in, what, ": expected input (N, ", in, "), got ", shape_str(x.sizes()));
  } else {
    MINIDL_CHECK(x.dim() == 4 && x.size(1) == in, what, ": expected input (N, ", in, ", H, W), got ",
                 shape_str(x.sizes()));
  }
  const int64_t N = x.size(0);
  const int64_t H = linear ? 1 : x.size(2), W = linear ? 1 : x.size(3);
  const int64_t OH = (H + 2 * padding - kernel) / stride + 1, OW = (W + 2 * padding - kernel) / stride + 1;
  MINIDL_CHECK(OH > 0 && OW > 0, what, ": input ", shape_str(x.sizes()), " is smaller than the kernel");
  const Shape out_shape = linear ? Shape{N, out} : Shape{N, out, OH, OW};
  // Outputs (and the residual) are channels-last: pixel p's channels at p * out (for the fc, (N, out) row-major).
  Tensor res;
  if (residual.defined()) {
    check_float_cpu(residual, what + " residual");
    MINIDL_CHECK(residual.sizes() == out_shape, what, ": residual ", shape_str(residual.sizes()),
                 " does not match the output ", shape_str(out_shape));
    res = linear ? residual.contiguous() : to_channels_last(residual);
  }
  const float* rp = res.defined() ? res.data<float>() : nullptr;
  const int64_t P = OH * OW;

  if (integer_) {
    // Channels-last codes, one fused conv + epilogue (backends::int_conv2d_nhwc); the output is channels-last.
    const Tensor codes = codes_nhwc(x);
    Tensor y = empty(out_shape, TensorOptions{}, MemoryFormat::ChannelsLast);
    backends::IntConvEpilogue e;
    e.residual = rp;
    e.relu = relu;
    e.out = y.data<float>();
    conv_codes(N, H, W, codes.data<uint8_t>(), e);
    return y;
  }

  // Float path: the fake-quant layer's quantizer, then the float conv / linear on the dequantized codes.
  Tensor y;
  {
    NoGradGuard no_grad;
    const Tensor xq = act == ActQuant::Float ? x : quantize(x);
    if (linear) {
      // QuantLinear's own call (bias inside); scale is 1, so the epilogue below only adds a residual / ReLU.
      y = minidl::linear(xq, deq_weight_, bias_t_);
    } else {
      Conv2dParams cp;
      cp.stride_h = cp.stride_w = stride;
      cp.pad_h = cp.pad_w = padding;
      // The fake-quant model's activations are channels-last (its convolutions' output format), and the conv's
      // summation order depends on the input's layout: give it the same layout, so it computes the same bits.
      Tensor xin = xq;
      if (!xq.is_channels_last()) {
        xin = empty(xq.sizes(), TensorOptions{}.dtype(xq.dtype()), MemoryFormat::ChannelsLast);
        xin.copy_(xq);
      }
      y = conv2d(xin, deq_weight_, Tensor(), cp);
    }
  }
  y = linear ? y.contiguous() : to_channels_last(y);
  MINIDL_CHECK(y.sizes() == out_shape, what, ": float path produced ", shape_str(y.sizes()), ", expected ",
               shape_str(out_shape));
  // y is this call's own result (the conv's or the linear's, or its channels-last copy): the epilogue runs in
  // place, which saves a second activation-sized buffer and its write stream (the stem's output at batch 128 is
  // 6.4 MB at 28 x 28).
  float* d = y.data<float>();
  // batch norm as the cpu backend's inference kernel applies it: x * a + b in float32, then + residual, ReLU.
  // The fc's scale is 1 and its bias is already in: the affine step is skipped there. Branch-free inner loops
  // over restrict pointers, so the compiler vectorizes them.
  const int64_t pixels = N * P;
  const float* __restrict sc = scale.data();
  const float* __restrict sh = shift.data();
#pragma omp parallel for schedule(static) if (pixels * out >= (int64_t{1} << 15))
  for (int64_t p = 0; p < pixels; ++p) {
    float* __restrict v = d + p * out;
    if (!linear)
      for (int64_t o = 0; o < out; ++o) v[o] = v[o] * sc[o] + sh[o];
    if (rp) {
      const float* __restrict r = rp + p * out;
      for (int64_t o = 0; o < out; ++o) v[o] += r[o];
    }
    if (relu)
      for (int64_t o = 0; o < out; ++o) v[o] = std::max(v[o], 0.0f);
  }
  return y;
}

// ---- PackedResNet ----

std::vector<const PackedLayer*> PackedResNet::layers() const {
  std::vector<const PackedLayer*> v{&stem};
  for (const auto& b : blocks) {
    v.push_back(&b.conv1);
    v.push_back(&b.conv2);
    if (b.shortcut == PackedBlock::Shortcut::Conv) v.push_back(&b.downsample);
  }
  v.push_back(&fc);
  return v;
}

void PackedResNet::prepare() {
  MINIDL_CHECK(in_channels > 0 && num_classes > 0, "packed ResNet: in_channels ", in_channels, " and num_classes ",
               num_classes, " must be positive");
  MINIDL_CHECK(!stem.linear && stem.in == in_channels, "packed ResNet: the stem conv takes ", stem.in,
               " channels, the model ", in_channels);
  stem.prepare();
  int64_t ch = stem.out;
  for (auto& b : blocks) {
    MINIDL_CHECK(b.in_planes == ch && b.conv1.in == ch && b.conv1.out == b.planes && b.conv2.in == b.planes &&
                     b.conv2.out == b.planes && !b.conv1.linear && !b.conv2.linear && b.conv1.stride == b.stride,
                 "packed ResNet: block '", b.name, "' does not chain (", ch, " channels in, block ", b.in_planes,
                 " -> ", b.planes, ", convs ", b.conv1.in, "->", b.conv1.out, ", ", b.conv2.in, "->", b.conv2.out, ")");
    b.conv1.prepare();
    b.conv2.prepare();
    if (b.shortcut == PackedBlock::Shortcut::Conv) {
      MINIDL_CHECK(b.downsample.in == b.in_planes && b.downsample.out == b.planes && b.downsample.kernel == 1 &&
                       b.downsample.stride == b.stride && !b.downsample.linear,
                   "packed ResNet: block '", b.name, "': the shortcut conv does not match the block");
      b.downsample.prepare();
    } else if (b.shortcut == PackedBlock::Shortcut::Identity) {
      MINIDL_CHECK(b.stride == 1 && b.in_planes == b.planes, "packed ResNet: block '", b.name,
                   "' changes shape but has an identity shortcut");
    } else {
      MINIDL_CHECK(b.planes >= b.in_planes, "packed ResNet: block '", b.name,
                   "': a padding shortcut cannot reduce "
                   "channels");
    }
    ch = b.planes;
  }
  MINIDL_CHECK(fc.linear && fc.in == ch && fc.out == num_classes, "packed ResNet: the fc is ", fc.in, " -> ", fc.out,
               ", expected ", ch, " -> ", num_classes);
  fc.prepare();
}

namespace {

// One activation between blocks: channels-last floats, plus the codes its integer consumers read (filled in by the
// epilogue that produced it, or on demand).
struct BlockInput {
  Tensor f;
  Tensor codes1, codes_ds;  // u8 NHWC codes for the next block's conv1 / downsample; undefined: not computed
};

// The codes `l` reads from `in`: the ones the producer's epilogue wrote, else quantized now.
const uint8_t* codes_for(const PackedLayer& l, const Tensor& f, Tensor& cached) {
  if (!cached.defined()) cached = l.codes_nhwc(f);
  return cached.data<uint8_t>();
}

// The residual blocks on `cur` (channels-last floats of N images, and any codes already computed): the last
// block's output.
BlockInput run_blocks(const std::vector<PackedBlock>& blocks, BlockInput cur) {
  const int64_t N = cur.f.size(0);
  for (size_t bi = 0; bi < blocks.size(); ++bi) {
    const PackedBlock& b = blocks[bi];
    const PackedBlock* next = bi + 1 < blocks.size() ? &blocks[bi + 1] : nullptr;
    const int64_t H = cur.f.size(2), W = cur.f.size(3);
    const int64_t OH = (H + 2 * b.conv1.padding - b.conv1.kernel) / b.conv1.stride + 1;
    const int64_t OW = (W + 2 * b.conv1.padding - b.conv1.kernel) / b.conv1.stride + 1;
    const TensorOptions f32{};

    // The shortcut.
    Tensor identity;
    switch (b.shortcut) {
      case PackedBlock::Shortcut::Identity: identity = cur.f; break;
      case PackedBlock::Shortcut::Pad: identity = option_a_shortcut_nhwc(cur.f, b.stride, b.planes); break;
      case PackedBlock::Shortcut::Conv:
        if (b.downsample.integer()) {
          identity = empty({N, b.planes, OH, OW}, f32, MemoryFormat::ChannelsLast);
          backends::IntConvEpilogue e;
          e.out = identity.data<float>();
          b.downsample.conv_codes(N, H, W, codes_for(b.downsample, cur.f, cur.codes_ds), e);
        } else {
          identity = b.downsample.forward(cur.f, Tensor(), false);
        }
        break;
    }

    // conv1: straight into conv2's codes when both are integer (h is never stored as floats).
    Tensor h;
    Tensor h_codes;
    if (b.conv1.integer()) {
      backends::IntConvEpilogue e;
      e.relu = true;
      if (b.conv2.integer()) {
        h_codes = PackedLayer::code_buffer(N, OH, OW, b.planes);
        e.quant[0] = &b.conv2.input_quantizer();
        e.codes[0] = h_codes.data<uint8_t>();
      } else {
        h = empty({N, b.planes, OH, OW}, f32, MemoryFormat::ChannelsLast);
        e.out = h.data<float>();
      }
      b.conv1.conv_codes(N, H, W, codes_for(b.conv1, cur.f, cur.codes1), e);
    } else {
      h = b.conv1.forward(cur.f, Tensor(), true);
    }

    // conv2 + shortcut + ReLU: the block's output, with the next block's input codes from the same epilogue.
    BlockInput nxt;
    if (b.conv2.integer()) {
      const int64_t H2 = OH, W2 = OW;
      const int64_t OH2 = (H2 + 2 * b.conv2.padding - b.conv2.kernel) / b.conv2.stride + 1;
      const int64_t OW2 = (W2 + 2 * b.conv2.padding - b.conv2.kernel) / b.conv2.stride + 1;
      nxt.f = empty({N, b.planes, OH2, OW2}, f32, MemoryFormat::ChannelsLast);
      MINIDL_CHECK(identity.sizes() == nxt.f.sizes(), "packed ResNet: block '", b.name, "': shortcut ",
                   shape_str(identity.sizes()), " does not match the output ", shape_str(nxt.f.sizes()));
      const Tensor id_cl = to_channels_last(identity);
      backends::IntConvEpilogue e;
      e.residual = id_cl.data<float>();
      e.relu = true;
      e.out = nxt.f.data<float>();
      int k = 0;
      if (next && next->conv1.integer()) {
        nxt.codes1 = PackedLayer::code_buffer(N, OH2, OW2, b.planes);
        e.quant[k] = &next->conv1.input_quantizer();
        e.codes[k++] = nxt.codes1.data<uint8_t>();
      }
      if (next && next->shortcut == PackedBlock::Shortcut::Conv && next->downsample.integer()) {
        nxt.codes_ds = PackedLayer::code_buffer(N, OH2, OW2, b.planes);
        e.quant[k] = &next->downsample.input_quantizer();
        e.codes[k++] = nxt.codes_ds.data<uint8_t>();
      }
      const uint8_t* in_codes = codes_for(b.conv2, h, h_codes);
      b.conv2.conv_codes(N, H2, W2, in_codes, e);
    } else {
      nxt.f = b.conv2.forward(h, identity, true);
    }
    cur = std::move(nxt);
  }
  return cur;
}

}  // namespace

Tensor PackedResNet::forward(const Tensor& x) const {
  check_float_cpu(x, "packed ResNet input");
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == in_channels, "packed ResNet: expected input (N, ", in_channels,
               ", H, W), got ", shape_str(x.sizes()));
  NoGradGuard no_grad;
  const int64_t N = x.size(0);
  // A batch goes through the blocks and the average pool images_per_pass images at a time when every block layer is
  // integer, each pass on one OpenMP thread: a whole batch-128 activation (6.4 MB of floats at 28 x 28) does not stay
  // in cache from one layer to the next, a pass's does, and the threads need no barrier per layer. Integer layers
  // compute each image's bits independently of the others (int_conv2d_nhwc runs on the calling thread inside the
  // region), and so does the pool. Float layers keep the whole batch: the stem (its oneDNN convolution sums in an
  // order that depends on the batch and the threads: run per pass, it changed logits in the pass test) and, when one
  // is not integer, the blocks; the fc always does.
  bool all_integer = true;
  for (const PackedBlock& b : blocks)
    all_integer = all_integer && b.conv1.integer() && b.conv2.integer() &&
                  (b.shortcut != PackedBlock::Shortcut::Conv || b.downsample.integer());
  Tensor pooled;
  const int64_t per_pass = images_per_pass;
  if (!all_integer || per_pass <= 0 || N <= per_pass) {
    BlockInput in;
    in.f = stem.forward(x, Tensor(), true);  // channels-last
    pooled = adaptive_avg_pool2d(run_blocks(blocks, std::move(in)).f, 1, 1).flatten(1).contiguous();
  } else {
    const Tensor stem_out = stem.forward(x, Tensor(), true);  // channels-last
    const int64_t passes = (N + per_pass - 1) / per_pass;
    std::vector<Tensor> parts(static_cast<size_t>(passes));
    std::exception_ptr error;
#pragma omp parallel for schedule(static) \
    num_threads(static_cast <int>(std::min <int64_t>(passes, omp_get_max_threads())))
    for (int64_t i = 0; i < passes; ++i) {
      try {
        NoGradGuard pass_no_grad;  // grad mode is per thread
        BlockInput in;
        in.f = stem_out.narrow(0, i * per_pass, std::min(per_pass, N - i * per_pass));  // channels-last, contiguous
        parts[static_cast<size_t>(i)] = adaptive_avg_pool2d(run_blocks(blocks, std::move(in)).f, 1, 1).flatten(1);
      } catch (...) {
#pragma omp critical(minidl_packed_pass_error)
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    pooled = empty({N, parts.front().size(1)});
    for (int64_t i = 0; i < passes; ++i)
      pooled.narrow(0, i * per_pass, parts[static_cast<size_t>(i)].size(0)).copy_(parts[static_cast<size_t>(i)]);
  }
  return fc.forward(pooled, Tensor(), false);
}

// ---- save / load ----

namespace {

std::string layer_meta(const PackedLayer& l) {
  std::ostringstream s;
  s << "kind=" << (l.linear ? "linear" : "conv") << " in=" << l.in << " out=" << l.out << " kernel=" << l.kernel
    << " stride=" << l.stride << " padding=" << l.padding << " weight=" << weight_quant_name(l.weight_kind)
    << " wbits=" << l.weight_bits << " index_bits=" << l.codes.bits << " act=" << act_quant_name(l.act)
    << " abits=" << l.act_bits << " semantics=" << semantics_name(l.semantics);
  // The weight unit and the activation clip (a float32 value) in 17 significant digits: both read back exactly.
  char buf[64];
  std::snprintf(buf, sizeof buf, " unit=%.17g", l.weight_unit);
  s << buf;
  std::snprintf(buf, sizeof buf, " alpha=%.17g", l.act_alpha);
  s << buf;
  if (l.weight_kind != WeightQuant::Float) {
    s << " book=";
    for (size_t i = 0; i < l.codes.book.size(); ++i) s << (i ? "," : "") << l.codes.book[i];
  }
  return s.str();
}

void put_layer(TensorMap& t, Metadata& meta, const PackedLayer& l) {
  meta["layer." + l.name] = layer_meta(l);
  if (l.weight_kind == WeightQuant::Float) {
    t[l.name + ".weight"] = l.float_weight.contiguous();
  } else {
    t[l.name + ".codes"] =
        from_vector(l.codes.bytes, {static_cast<int64_t>(l.codes.bytes.size())}, TensorOptions{}.dtype(DType::u8));
  }
  std::vector<float> aff(l.scale);
  aff.insert(aff.end(), l.shift.begin(), l.shift.end());
  t[l.name + ".affine"] = from_vector(aff, {2, l.out});
}

std::map<std::string, std::string> parse_kv(const std::string& line, const std::string& what) {
  std::map<std::string, std::string> kv;
  std::istringstream is(line);
  std::string tok;
  while (is >> tok) {
    const auto eq = tok.find('=');
    MINIDL_CHECK(eq != std::string::npos && eq > 0, what, ": malformed entry '", tok, "'");
    kv[tok.substr(0, eq)] = tok.substr(eq + 1);
  }
  return kv;
}

const std::string& need(const std::map<std::string, std::string>& kv, const std::string& key, const std::string& what) {
  const auto it = kv.find(key);
  MINIDL_CHECK(it != kv.end(), what, ": missing '", key, "'");
  return it->second;
}

int64_t to_int(const std::string& s, const std::string& what) {
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  MINIDL_CHECK(pos == s.size() && !s.empty(), what, ": '", s, "' is not an integer");
  return v;
}

double to_double(const std::string& s, const std::string& what) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  MINIDL_CHECK(!s.empty() && end == s.c_str() + s.size() && std::isfinite(v), what, ": '", s, "' is not a number");
  return v;
}

WeightQuant parse_weight(const std::string& s, const std::string& what) {
  for (WeightQuant w : {WeightQuant::Float, WeightQuant::Uniform, WeightQuant::PoT, WeightQuant::APoT,
                        WeightQuant::Binary, WeightQuant::SignedMax8})
    if (s == weight_quant_name(w)) return w;
  MINIDL_FAIL(what, ": unknown weight quantizer '", s, "'");
}

ActQuant parse_act(const std::string& s, const std::string& what) {
  for (ActQuant a :
       {ActQuant::Float, ActQuant::Uniform, ActQuant::PoT, ActQuant::APoT, ActQuant::PACT, ActQuant::IntGrid})
    if (s == act_quant_name(a)) return a;
  MINIDL_FAIL(what, ": unknown activation quantizer '", s, "'");
}

const Tensor& need_tensor(const TensorMap& t, const std::string& key, DType dtype, const std::string& what) {
  const auto it = t.find(key);
  MINIDL_CHECK(it != t.end(), what, ": missing tensor '", key, "'");
  MINIDL_CHECK(it->second.dtype() == dtype, what, ": tensor '", key, "' has dtype ", dtype_name(it->second.dtype()),
               ", expected ", dtype_name(dtype));
  return it->second;
}

PackedLayer get_layer(const SafetensorsFile& f, const std::string& name) {
  const std::string what = "layer '" + name + "'";
  const auto mit = f.metadata.find("layer." + name);
  MINIDL_CHECK(mit != f.metadata.end(), "missing metadata entry 'layer.", name, "'");
  const auto kv = parse_kv(mit->second, what);
  PackedLayer l;
  l.name = name;
  const std::string kind = need(kv, "kind", what);
  MINIDL_CHECK(kind == "conv" || kind == "linear", what, ": unknown kind '", kind, "'");
  l.linear = kind == "linear";
  l.in = to_int(need(kv, "in", what), what);
  l.out = to_int(need(kv, "out", what), what);
  l.kernel = to_int(need(kv, "kernel", what), what);
  l.stride = to_int(need(kv, "stride", what), what);
  l.padding = to_int(need(kv, "padding", what), what);
  l.weight_kind = parse_weight(need(kv, "weight", what), what);
  l.weight_bits = static_cast<int>(to_int(need(kv, "wbits", what), what));
  l.act = parse_act(need(kv, "act", what), what);
  l.act_bits = static_cast<int>(to_int(need(kv, "abits", what), what));
  l.semantics = parse_semantics(need(kv, "semantics", what));
  MINIDL_CHECK(l.in > 0 && l.out > 0 && l.kernel > 0 && l.in < (int64_t{1} << 20) && l.out < (int64_t{1} << 20) &&
                   l.kernel < 32 && l.stride > 0 && l.stride < 32 && l.padding >= 0 && l.padding < 32,
               what, ": implausible geometry in=", l.in, " out=", l.out, " kernel=", l.kernel, " stride=", l.stride,
               " padding=", l.padding);
  if (l.weight_kind == WeightQuant::Float) {
    l.float_weight = need_tensor(f.tensors, name + ".weight", DType::f32, what);
  } else {
    const Tensor codes = need_tensor(f.tensors, name + ".codes", DType::u8, what);
    MINIDL_CHECK(codes.dim() == 1, what, ": codes must be 1-D");
    l.codes.bytes = codes.to_vector<uint8_t>();
    std::istringstream bs(need(kv, "book", what));
    std::string c;
    while (std::getline(bs, c, ',')) {
      const int64_t v = to_int(c, what + " book");
      MINIDL_CHECK(v >= INT32_MIN && v <= INT32_MAX, what, ": book code ", v, " is out of range");
      l.codes.book.push_back(static_cast<int32_t>(v));
    }
    l.codes.bits = static_cast<int>(to_int(need(kv, "index_bits", what), what));
    l.codes.count = weight_count(l);
  }
  l.weight_unit = to_double(need(kv, "unit", what), what);
  l.act_alpha = to_double(need(kv, "alpha", what), what);
  const Tensor aff = need_tensor(f.tensors, name + ".affine", DType::f32, what);
  MINIDL_CHECK(aff.sizes() == Shape({2, l.out}), what, ": affine has shape ", shape_str(aff.sizes()), ", expected (2, ",
               l.out, ")");
  const auto a = aff.to_vector<float>();
  l.scale.assign(a.begin(), a.begin() + l.out);
  l.shift.assign(a.begin() + l.out, a.end());
  return l;
}

}  // namespace

void save_packed(const PackedResNet& m, const std::string& path) {
  TensorMap t;
  Metadata meta{{"format", kFormat},
                {"version", kVersion},
                {"in_channels", std::to_string(m.in_channels)},
                {"num_classes", std::to_string(m.num_classes)},
                {"description", m.description}};
  put_layer(t, meta, m.stem);
  std::string blocks;
  for (const auto& b : m.blocks) {
    const char* sc = b.shortcut == PackedBlock::Shortcut::Identity ? "identity"
                     : b.shortcut == PackedBlock::Shortcut::Conv   ? "conv"
                                                                   : "pad";
    blocks += (blocks.empty() ? "" : " ") + b.name + ":" + std::to_string(b.in_planes) + ":" +
              std::to_string(b.planes) + ":" + std::to_string(b.stride) + ":" + sc;
    put_layer(t, meta, b.conv1);
    put_layer(t, meta, b.conv2);
    if (b.shortcut == PackedBlock::Shortcut::Conv) put_layer(t, meta, b.downsample);
  }
  meta["blocks"] = blocks;
  put_layer(t, meta, m.fc);
  save_safetensors(path, t, meta);
}

PackedResNet load_packed(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  try {
    const auto fmt = f.metadata.find("format");
    MINIDL_CHECK(fmt != f.metadata.end() && fmt->second == kFormat, "not a packed minidl ResNet (metadata 'format' is ",
                 fmt == f.metadata.end() ? std::string("missing") : "'" + fmt->second + "'", ", expected '", kFormat,
                 "')");
    const auto ver = f.metadata.find("version");
    MINIDL_CHECK(ver != f.metadata.end() && ver->second == kVersion, "unsupported packed format version (expected ",
                 kVersion, ")");
    PackedResNet m;
    const auto meta = [&](const std::string& k) -> const std::string& { return need(f.metadata, k, "metadata"); };
    m.in_channels = to_int(meta("in_channels"), "in_channels");
    m.num_classes = to_int(meta("num_classes"), "num_classes");
    if (f.metadata.count("description")) m.description = f.metadata.at("description");
    m.stem = get_layer(f, "conv1");
    std::istringstream bs(meta("blocks"));
    std::string tok;
    while (bs >> tok) {
      std::vector<std::string> parts;
      std::string p;
      std::istringstream ts(tok);
      while (std::getline(ts, p, ':')) parts.push_back(p);
      MINIDL_CHECK(parts.size() == 5, "blocks: malformed entry '", tok, "'");
      PackedBlock b;
      b.name = parts[0];
      b.in_planes = to_int(parts[1], "block " + b.name);
      b.planes = to_int(parts[2], "block " + b.name);
      b.stride = to_int(parts[3], "block " + b.name);
      MINIDL_CHECK(parts[4] == "identity" || parts[4] == "conv" || parts[4] == "pad", "block ", b.name,
                   ": unknown shortcut '", parts[4], "'");
      b.shortcut = parts[4] == "identity" ? PackedBlock::Shortcut::Identity
                   : parts[4] == "conv"   ? PackedBlock::Shortcut::Conv
                                          : PackedBlock::Shortcut::Pad;
      b.conv1 = get_layer(f, b.name + ".conv1");
      b.conv2 = get_layer(f, b.name + ".conv2");
      if (b.shortcut == PackedBlock::Shortcut::Conv) b.downsample = get_layer(f, b.name + ".downsample.0");
      m.blocks.push_back(std::move(b));
    }
    m.fc = get_layer(f, "fc");
    m.prepare();
    return m;
  } catch (const Error& e) {
    MINIDL_FAIL("load_packed(", path, "): ", e.what());
  }
}

}  // namespace minidl::quant
