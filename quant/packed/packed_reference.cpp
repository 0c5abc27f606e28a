// Float64 evaluation of packed ResNets and the float64 fake-quant reference they are compared with (see
// packed_reference.h; docs/deploy.md, "Exactness in float64"). Kept apart from packed_resnet.cpp, whose float32
// forward is the deployment path: here every step is a plain loop in double, except the integer sums (exact:
// backends::gemm_u8s8_s32, or int64 loops) and the activation quantizer (the fake-quant op itself, in float64).
#include "quant/packed/packed_reference.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "nn/modules/batch_norm.h"
#include "quant/quant_layers.h"

namespace minidl::quant {

namespace {

void check_f64_cpu(const Tensor& t, const std::string& what) {
  MINIDL_CHECK(t.defined() && t.dtype() == DType::f64 && t.device() == kCPU, what,
               ": expected a float64 cpu tensor, got ",
               t.defined() ? std::string(dtype_name(t.dtype())) : std::string("undefined"));
}

TensorOptions f64_options() { return TensorOptions{}.dtype(DType::f64); }

// Direct convolution of in (N, C, H, W) with w (O, C, k, k) into acc (N, O, OH, OW), all row-major, summed in Acc
// (int64 for codes: exact; double for a float input).
template <typename Acc, typename In, typename Wt>
void direct_conv(std::vector<Acc>& acc, const std::vector<In>& in, const std::vector<Wt>& w, int64_t N, int64_t C,
                 int64_t H, int64_t W, int64_t O, int64_t k, int64_t stride, int64_t pad, int64_t OH, int64_t OW) {
  acc.assign(static_cast<size_t>(N * O * OH * OW), Acc(0));
#pragma omp parallel for schedule(static)
  for (int64_t no = 0; no < N * O; ++no) {
    const int64_t n = no / O, o = no % O;
    Acc* dst = acc.data() + no * OH * OW;
    for (int64_t c = 0; c < C; ++c) {
      const In* src = in.data() + (n * C + c) * H * W;
      for (int64_t r = 0; r < k; ++r) {
        for (int64_t s = 0; s < k; ++s) {
          const Acc wv = static_cast<Acc>(w[static_cast<size_t>(((o * C + c) * k + r) * k + s)]);
          for (int64_t oh = 0; oh < OH; ++oh) {
            const int64_t ih = oh * stride - pad + r;
            if (ih < 0 || ih >= H) continue;
            for (int64_t ow = 0; ow < OW; ++ow) {
              const int64_t iw = ow * stride - pad + s;
              if (iw < 0 || iw >= W) continue;
              dst[oh * OW + ow] += static_cast<Acc>(src[ih * W + iw]) * wv;
            }
          }
        }
      }
    }
  }
}

// Option A shortcut in double: every stride-th pixel, zero channels split front / back (nn::option_a_shortcut).
Tensor pad_shortcut_f64(const Tensor& x, int64_t stride, int64_t planes) {
  const Tensor xc = x.contiguous();
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  MINIDL_CHECK(planes >= C && stride >= 1, "packed ResNet (float64): option-A shortcut from ", C, " to ", planes,
               " channels, stride ", stride);
  const int64_t OH = (H + stride - 1) / stride, OW = (W + stride - 1) / stride, front = (planes - C) / 2;
  Tensor z = zeros({N, planes, OH, OW}, f64_options());
  const double* s = xc.data<double>();
  double* d = z.data<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j)
          d[((n * planes + front + c) * OH + i) * OW + j] = s[((n * C + c) * H + i * stride) * W + j * stride];
  return z;
}

// The batch norm the cpu backend's float32 inference kernel applies (bn_infer / bn_infer_nhwc): a and b in double
// from the float32 statistics, then rounded to float32. quant::pack folds the same way (fold_bn).
void cpu_kernel_affine(const nn::BatchNorm2d& bn, std::vector<float>& a32, std::vector<float>& b32) {
  const auto C = static_cast<size_t>(bn.num_features);
  const auto mean = bn.running_mean.to_vector<double>(), var = bn.running_var.to_vector<double>();
  const std::vector<double> w = bn.weight.defined() ? bn.weight.to_vector<double>() : std::vector<double>(C, 1.0);
  const std::vector<double> b = bn.bias.defined() ? bn.bias.to_vector<double>() : std::vector<double>(C, 0.0);
  a32.resize(C);
  b32.resize(C);
  for (size_t c = 0; c < C; ++c) {
    const double a = w[c] / std::sqrt(var[c] + bn.options.eps);
    a32[c] = static_cast<float>(a);
    b32[c] = static_cast<float>(b[c] - mean[c] * a);
  }
}

// Name of the batch norm after a conv of the CIFAR ResNet: conv1 -> bn1, layerX.Y.convK -> layerX.Y.bnK,
// layerX.Y.downsample.0 -> layerX.Y.downsample.1.
std::string bn_name_for(const std::string& conv) {
  const auto ends = [&](const std::string& t) {
    return conv.size() >= t.size() && conv.compare(conv.size() - t.size(), t.size(), t) == 0;
  };
  if (conv == "conv1") return "bn1";
  if (ends(".conv1")) return conv.substr(0, conv.size() - 5) + "bn1";
  if (ends(".conv2")) return conv.substr(0, conv.size() - 5) + "bn2";
  if (ends(".downsample.0")) return conv.substr(0, conv.size() - 1) + "1";
  return "";
}

void write_f64(Tensor& t, const std::vector<double>& v, const std::string& what) {
  MINIDL_CHECK(t.dtype() == DType::f64 && t.is_contiguous() && t.numel() == static_cast<int64_t>(v.size()),
               "make_f64_reference: ", what, " is not a contiguous float64 tensor of ", v.size(), " values");
  std::copy(v.begin(), v.end(), t.data<double>());
}

}  // namespace

LevelSet exact_levels_f64(const LevelSet& ls) {
  if (ls.rounding || !ls.magnitudes.defined()) return ls;
  int64_t n_max = 0;
  const std::vector<int64_t> n = integer_levels(ls, n_max);
  MINIDL_CHECK(static_cast<int64_t>(n.size()) == ls.magnitudes.numel() && n_max > 0, "exact_levels_f64: ", ls.str(),
               " has ", ls.magnitudes.numel(), " magnitudes but ", n.size(), " integer levels");
  std::vector<double> v(n.size());
  for (size_t i = 0; i < n.size(); ++i) v[i] = static_cast<double>(n[i]) / static_cast<double>(n_max);
  LevelSet e = ls;
  e.magnitudes = from_vector(v, {static_cast<int64_t>(v.size())}, f64_options().device(ls.magnitudes.device()));
  return e;
}

// ---- PackedLayer / PackedResNet in float64 ----

std::vector<int32_t> PackedLayer::input_codes_f64(const Tensor& x) const {
  MINIDL_CHECK(act != ActQuant::Float && act_unit_ > 0, "packed layer '", name,
               "': input codes need a quantized input (prepare() first)");
  check_f64_cpu(x, "packed layer '" + name + "' (float64) input");
  NoGradGuard no_grad;
  const Tensor alpha = act_alpha_t_.defined() ? scalar_tensor(act_alpha, f64_options()) : Tensor();
  const Tensor xq = quantize_input(x, act_spec_, alpha, exact_levels_f64(act_levels_)).contiguous();
  const double* p = xq.data<double>();
  const int64_t n = xq.numel();
  std::vector<int32_t> codes(static_cast<size_t>(n));
  // The quantizer's float64 output is alpha * level (level = n / n_max, k / steps, or PACT's t / k): the code
  // times the unit within a few double roundings.
  for (int64_t i = 0; i < n; ++i) {
    const double v = p[i] / act_unit_, c = std::nearbyint(v);
    MINIDL_CHECK(c >= 0 && c <= static_cast<double>(act_max_code_) && std::abs(v - c) < 1e-6, "packed layer '", name,
                 "' (float64): quantized input ", p[i], " is not a code 0..", act_max_code_, " times the unit ",
                 act_unit_);
    codes[static_cast<size_t>(i)] = static_cast<int32_t>(c);
  }
  return codes;
}

Tensor PackedLayer::forward_f64(const Tensor& x, const Tensor& residual, bool relu) const {
  const std::string what = "packed layer '" + name + "' (float64)";
  check_f64_cpu(x, what + " input");
  if (linear) {
    MINIDL_CHECK(x.dim() == 2 && x.size(1) == in, what, ": expected input (N, ", in, "), got ", shape_str(x.sizes()));
  } else {
    MINIDL_CHECK(x.dim() == 4 && x.size(1) == in, what, ": expected input (N, ", in, ", H, W), got ",
                 shape_str(x.sizes()));
  }
  MINIDL_CHECK(static_cast<int64_t>(scale.size()) == out && static_cast<int64_t>(shift.size()) == out &&
                   (act == ActQuant::Float || act_unit_ > 0),
               what, ": the layer is not prepared (prepare() first)");
  const int64_t N = x.size(0);
  const int64_t H = linear ? 1 : x.size(2), W = linear ? 1 : x.size(3);
  const int64_t OH = (H + 2 * padding - kernel) / stride + 1, OW = (W + 2 * padding - kernel) / stride + 1;
  MINIDL_CHECK(OH > 0 && OW > 0, what, ": input ", shape_str(x.sizes()), " is smaller than the kernel");
  const Shape out_shape = linear ? Shape{N, out} : Shape{N, out, OH, OW};
  Tensor rc;
  if (residual.defined()) {
    check_f64_cpu(residual, what + " residual");
    MINIDL_CHECK(residual.sizes() == out_shape, what, ": residual ", shape_str(residual.sizes()), ", expected ",
                 shape_str(out_shape));
    rc = residual.contiguous();
  }
  const Tensor xc = x.contiguous();
  const int64_t P = OH * OW, K = in * kernel * kernel;
  std::vector<double> sum(static_cast<size_t>(N * out * P));  // the conv value, (n, o, p)

  const bool quantized_w = weight_kind != WeightQuant::Float;
  std::vector<int32_t> wcodes;
  if (quantized_w) wcodes = unpack_codes(codes, what + " weight codes");
  if (act != ActQuant::Float) {
    const std::vector<int32_t> a = input_codes_f64(xc);
    // u8 activation codes and s8 weight codes (what forward() runs on integers): the int32 GEMM; otherwise int64
    // loops. Both sums are exact, so the choice (decided here, not by forward()'s integer()) changes no bit.
    bool fits8 = quantized_w && act_max_code_ <= 255;
    for (int32_t c : wcodes) fits8 = fits8 && c >= -128 && c <= 127;
    if (fits8) {
      // Exact int32 sums, one image at a time: im2col rows of u8 codes (padding 0) in (c, r, s) order against the
      // weight codes packed here in the same order (independent of the layout forward() keeps its weights in).
      const std::vector<int8_t> w8(wcodes.begin(), wcodes.end());
      const backends::PackedInt8Weights gw = backends::pack_int8_weights(out, K, w8.data(), K);
      const double unit_prod = act_unit_ * weight_unit;
      std::vector<uint8_t> A(static_cast<size_t>(P * K));
      std::vector<int32_t> C(static_cast<size_t>(P * out));
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            uint8_t* row = A.data() + (oh * OW + ow) * K;
            for (int64_t c = 0; c < in; ++c)
              for (int64_t r = 0; r < kernel; ++r)
                for (int64_t s = 0; s < kernel; ++s) {
                  const int64_t ih = oh * stride - padding + r, iw = ow * stride - padding + s;
                  const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                  row[(c * kernel + r) * kernel + s] =
                      inside ? static_cast<uint8_t>(a[static_cast<size_t>(((n * in + c) * H + ih) * W + iw)]) : 0;
                }
          }
        backends::gemm_u8s8_s32(P, A.data(), K, gw, C.data(), out);
        for (int64_t o = 0; o < out; ++o)
          for (int64_t p = 0; p < P; ++p)
            sum[static_cast<size_t>((n * out + o) * P + p)] =
                static_cast<double>(C[static_cast<size_t>(p * out + o)]) * unit_prod;
      }
    } else if (quantized_w) {
      // Codes beyond 8 bits (PoT 4-bit activations): exact int64 sums.
      std::vector<int64_t> acc;
      direct_conv<int64_t>(acc, a, wcodes, N, in, H, W, out, kernel, stride, padding, OH, OW);
      const double u = act_unit_ * weight_unit;
      for (size_t i = 0; i < acc.size(); ++i) sum[i] = static_cast<double>(acc[i]) * u;
    } else {
      std::vector<double> av(a.size());
      for (size_t i = 0; i < a.size(); ++i) av[i] = static_cast<double>(a[i]) * act_unit_;
      direct_conv<double>(sum, av, float_weight.contiguous().to_vector<double>(), N, in, H, W, out, kernel, stride,
                          padding, OH, OW);
    }
  } else {
    // A float input (stem, fc): summed in double against the weights' values, code * unit or the float32 weight.
    std::vector<double> wv;
    if (quantized_w) {
      wv.resize(wcodes.size());
      for (size_t i = 0; i < wcodes.size(); ++i) wv[i] = static_cast<double>(wcodes[i]) * weight_unit;
    } else {
      wv = float_weight.contiguous().to_vector<double>();
    }
    direct_conv<double>(sum, xc.to_vector<double>(), wv, N, in, H, W, out, kernel, stride, padding, OH, OW);
  }

  // Epilogue in double: x * scale + shift (the float32 values the cpu kernel uses; fc: + bias), + residual, ReLU.
  Tensor z = empty(out_shape, f64_options());
  double* d = z.data<double>();
  const double* rp = rc.defined() ? rc.data<double>() : nullptr;
  for (int64_t no = 0; no < N * out; ++no) {
    const auto o = static_cast<size_t>(no % out);
    const auto sc = static_cast<double>(scale[o]), sh = static_cast<double>(shift[o]);
    for (int64_t p = 0; p < P; ++p) {
      const size_t i = static_cast<size_t>(no * P + p);
      const double t = linear ? sum[i] : sum[i] * sc;
      double v = t + sh;
      if (rp) v += rp[i];
      d[i] = relu ? std::max(v, 0.0) : v;
    }
  }
  return z;
}

Tensor PackedResNet::forward_f64(const Tensor& x) const {
  check_f64_cpu(x, "packed ResNet (float64) input");
  MINIDL_CHECK(x.dim() == 4 && x.size(1) == in_channels, "packed ResNet (float64): expected input (N, ", in_channels,
               ", H, W), got ", shape_str(x.sizes()));
  NoGradGuard no_grad;
  Tensor y = stem.forward_f64(x, Tensor(), true);
  for (const auto& b : blocks) {
    const Tensor identity = b.shortcut == PackedBlock::Shortcut::Identity ? y
                            : b.shortcut == PackedBlock::Shortcut::Conv   ? b.downsample.forward_f64(y, Tensor(), false)
                                                                          : pad_shortcut_f64(y, b.stride, b.planes);
    const Tensor h = b.conv1.forward_f64(y, Tensor(), true);
    y = b.conv2.forward_f64(h, identity, true);
  }
  // global average pool in double
  const int64_t N = y.size(0), C = y.size(1), S = y.size(2) * y.size(3);
  Tensor pooled = empty({N, C}, f64_options());
  const double* s = y.data<double>();
  double* d = pooled.data<double>();
  for (int64_t nc = 0; nc < N * C; ++nc) {
    double acc = 0;
    for (int64_t i = 0; i < S; ++i) acc += s[nc * S + i];
    d[nc] = acc / static_cast<double>(S);
  }
  return fc.forward_f64(pooled, Tensor(), false);
}

// ---- the float64 fake-quant reference ----

void make_f64_reference(nn::ResNet& model, const PackedResNet& packed) {
  const char* fn = "make_f64_reference";
  MINIDL_CHECK(model.kind == nn::ResNet::Kind::Cifar, fn, ": only the CIFAR ResNets (resnet20/32/56) pack");
  std::map<std::string, nn::ModulePtr> mods;
  for (auto& [n, m] : model.named_modules()) mods[n] = m;
  NoGradGuard no_grad;

  struct Target {
    Tensor* weight = nullptr;
    WeightQuantizer* wq = nullptr;
    LevelSet* act_levels = nullptr;
    nn::BatchNorm2d* bn = nullptr;
    std::vector<double> w;        // the weight's values in double
    std::vector<float> a32, b32;  // the folded batch norm
  };
  std::vector<Target> targets;
  for (const PackedLayer* l : packed.layers()) {
    const std::string what = std::string(fn) + ": layer '" + l->name + "'";
    const auto it = mods.find(l->name);
    MINIDL_CHECK(it != mods.end(), what, ": the model has no such layer");
    Target t;
    Tensor wq32, act_alpha;
    const QuantSpec* spec = nullptr;
    if (auto* q = dynamic_cast<QuantConv2d*>(it->second.get())) {
      MINIDL_CHECK(!l->linear, what, " is a conv in the model, a linear layer in the packed file");
      wq32 = q->quantized_weight();
      act_alpha = q->act_alpha;
      spec = &q->spec;
      t.weight = &q->weight;
      t.wq = q->weight_quant.get();
      t.act_levels = &q->act_levels;
    } else if (auto* f = dynamic_cast<QuantLinear*>(it->second.get())) {
      MINIDL_CHECK(l->linear, what, " is a linear layer in the model, a conv in the packed file");
      wq32 = f->quantized_weight();
      act_alpha = f->act_alpha;
      spec = &f->spec;
      t.weight = &f->weight;
      t.wq = f->weight_quant.get();
      t.act_levels = &f->act_levels;
      const std::vector<float> bias =
          f->bias.defined() ? f->bias.to_vector<float>() : std::vector<float>(static_cast<size_t>(l->out), 0.0f);
      MINIDL_CHECK(bias == l->shift, what, ": the fc bias is not the packed shift");
    } else {
      MINIDL_FAIL(what, ": the model's module is a ", it->second->type_name(), ", not a QuantConv2d / QuantLinear");
    }
    MINIDL_CHECK(wq32.dtype() == DType::f32 && wq32.device() == kCPU, what,
                 ": expected the float32 cpu model (make the reference before converting it)");
    const ActQuant act = spec->act_quantized() ? spec->act : ActQuant::Float;
    const double alpha = act_alpha.defined() ? act_alpha.item<double>() : 0.0;
    MINIDL_CHECK(act == l->act && (act == ActQuant::Float || spec->act_bits == l->act_bits) &&
                     spec->semantics == l->semantics && alpha == l->act_alpha,
                 what, ": the activation quantizer differs from the packed layer's (", act_quant_name(act), " ",
                 spec->act_bits, "-bit, alpha ", alpha, " vs ", act_quant_name(l->act), " ", l->act_bits,
                 "-bit, alpha ", l->act_alpha, ")");
    const std::vector<double> w32 = wq32.to_vector<double>();
    if (l->weight_kind == WeightQuant::Float) {
      t.w = l->float_weight.contiguous().to_vector<double>();
      MINIDL_CHECK(t.w == w32, what, ": the float weight differs from the packed one");
    } else {
      const std::vector<int32_t> c = unpack_codes(l->codes, what + " weight codes");
      MINIDL_CHECK(c.size() == w32.size(), what, ": ", c.size(), " packed codes for ", w32.size(), " weights");
      t.w.resize(c.size());
      for (size_t i = 0; i < c.size(); ++i) {
        t.w[i] = static_cast<double>(c[i]) * l->weight_unit;
        // float32 holds alpha * level rounded (and APoT levels as float32 values): within ~1e-5 units of the code
        MINIDL_CHECK(std::abs(w32[i] / l->weight_unit - static_cast<double>(c[i])) <= 1e-4, what, ": weight ", i,
                     " of the float32 model is ", w32[i], ", the packed code ", c[i], " times the unit ",
                     l->weight_unit, " is ", t.w[i], ": not the same weight");
      }
    }
    if (!l->linear) {
      const auto bit = mods.find(bn_name_for(l->name));
      MINIDL_CHECK(bit != mods.end(), what, ": no batch norm '", bn_name_for(l->name), "' after it");
      t.bn = dynamic_cast<nn::BatchNorm2d*>(bit->second.get());
      MINIDL_CHECK(t.bn != nullptr && t.bn->num_features == l->out, what, ": '", bit->first,
                   "' is not a BatchNorm2d of ", l->out, " channels");
      cpu_kernel_affine(*t.bn, t.a32, t.b32);
      MINIDL_CHECK(t.a32 == l->scale && t.b32 == l->shift, what,
                   ": the batch norm folded as the cpu kernel folds it is not the packed scale and shift");
    }
    targets.push_back(std::move(t));
  }

  model.to(DType::f64);
  for (Target& t : targets) {
    write_f64(*t.weight, t.w, "a weight");
    t.wq->spec.weight = WeightQuant::Float;  // the frozen weight passes the quantizer unchanged
    *t.act_levels = exact_levels_f64(*t.act_levels);
    if (t.bn) {
      t.bn->running_mean.fill_(0.0);
      t.bn->running_var.fill_(1.0);
      t.bn->options.eps = 0.0;
      write_f64(t.bn->weight, std::vector<double>(t.a32.begin(), t.a32.end()), "a batch norm weight");
      write_f64(t.bn->bias, std::vector<double>(t.b32.begin(), t.b32.end()), "a batch norm bias");
    }
  }
}

}  // namespace minidl::quant
