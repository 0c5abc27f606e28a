// quant::pack (see pack.h).
#include "quant/packed/pack.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "autograd/grad_mode.h"
#include "core/error.h"
#include "nn/modules/batch_norm.h"
#include "quant/quant_layers.h"
#include "tensor/safetensors.h"

namespace minidl::quant {

namespace {

// The codes of a quantized weight wq (the tensor the fake-quant conv uses) over `unit`. The quantizer computed
// wq = alpha * level in float32, so wq / unit lies within ~1e-7 relative of its integer code; anything further
// than 1e-3 of a code, or a code outside `allowed`, is a weight this format cannot hold exactly.
std::vector<int32_t> codes_over_unit(const std::string& name, const Tensor& wq, double unit,
                                     const std::set<int64_t>& allowed, const char* grid) {
  MINIDL_CHECK(unit > 0 && std::isfinite(unit), "quant::pack: layer '", name, "': weight unit must be > 0, got ", unit);
  const std::vector<double> v = wq.to_vector<double>();
  std::vector<int32_t> codes(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double q = v[i] / unit, c = std::nearbyint(q);
    MINIDL_CHECK(std::abs(q - c) <= 1e-3 && allowed.count(static_cast<int64_t>(c)) == 1, "quant::pack: layer '", name,
                 "': weight ", i, " = ", v[i], " is not a code of the ", grid, " grid of unit ", unit, " (it is ", q,
                 " units); the packed format cannot represent this layer exactly");
    codes[i] = static_cast<int32_t>(c);
  }
  return codes;
}

std::set<int64_t> range_set(int64_t lo, int64_t hi) {
  std::set<int64_t> s;
  for (int64_t c = lo; c <= hi; ++c) s.insert(c);
  return s;
}

void check_cpu_f32(const std::string& name, const Tensor& t) {
  MINIDL_CHECK(t.device() == kCPU && t.dtype() == DType::f32, "quant::pack: layer '", name,
               "': expected float32 cpu weights (move the model to the cpu in float32 first), got ",
               dtype_name(t.dtype()), " on ", t.device().str());
}

// Weights, unit and input quantizer of a quantized layer.
void fill_weights(PackedLayer& l, const Tensor& weight, const Tensor& act_alpha, const QuantSpec& spec,
                  WeightQuantizer& wqz) {
  check_cpu_f32(l.name, weight);
  l.weight_kind = spec.weight_quantized() ? spec.weight : WeightQuant::Float;
  l.weight_bits = spec.weight_quantized() ? spec.weight_bits : 32;
  l.act = spec.act_quantized() ? spec.act : ActQuant::Float;
  l.act_bits = spec.act_quantized() ? spec.act_bits : 32;
  l.semantics = spec.semantics;
  l.act_alpha = act_alpha.defined() ? act_alpha.item<double>() : 0.0;
  if (l.weight_kind == WeightQuant::Float) {
    l.float_weight = weight.detach().contiguous().clone();
    return;
  }
  NoGradGuard no_grad;
  const Tensor wq = wqz.forward(weight);
  std::vector<int32_t> codes;
  switch (l.weight_kind) {
    case WeightQuant::SignedMax8: {
      // round(127 w / m) * (m / 127), m = max(w); APoT-C leaves codes below -127 unclamped (-128 still fits).
      const std::vector<float> w = weight.to_vector<float>();
      float m = w[0];
      for (float x : w) m = std::max(m, x);
      l.weight_unit = static_cast<double>(m) / 127.0;
      codes = codes_over_unit(l.name, wq, l.weight_unit, range_set(-128, 127), "8-bit signed-max");
      break;
    }
    case WeightQuant::Binary: {
      // mean|w| * sign(w) (or, with the hysteresis optimizer, the stored +-scale values): one scale per layer.
      double u = 0;
      for (double x : wq.to_vector<double>()) u = std::max(u, std::abs(x));
      MINIDL_CHECK(u > 0, "quant::pack: layer '", l.name, "': every binary weight is 0");
      l.weight_unit = u;
      codes = codes_over_unit(l.name, wq, u, {-1, 0, 1}, "binary");
      break;
    }
    default: {
      MINIDL_CHECK(wqz.wgt_alpha.defined(), "quant::pack: layer '", l.name, "': no weight clip alpha");
      const double alpha = wqz.wgt_alpha.item<double>();
      if (wqz.levels.rounding) {
        const auto s = static_cast<int64_t>(wqz.levels.steps);
        l.weight_unit = alpha / static_cast<double>(s);
        codes = codes_over_unit(l.name, wq, l.weight_unit, range_set(-s, s), "uniform");
      } else {
        int64_t n_max = 0;
        std::set<int64_t> allowed;
        for (int64_t n : integer_levels(wqz.levels, n_max)) {
          allowed.insert(n);
          allowed.insert(-n);
        }
        l.weight_unit = alpha / static_cast<double>(n_max);
        codes = codes_over_unit(l.name, wq, l.weight_unit, allowed, wqz.levels.str().c_str());
      }
    }
  }
  l.codes = pack_codes(codes);
}

void fold_bn(PackedLayer& l, const nn::BatchNorm2d* bn) {
  MINIDL_CHECK(bn != nullptr, "quant::pack: layer '", l.name, "' is not followed by a BatchNorm2d");
  MINIDL_CHECK(bn->num_features == l.out && bn->running_mean.defined() && bn->running_var.defined(),
               "quant::pack: the batch norm after '", l.name, "' has no running statistics for ", l.out, " channels");
  const auto mean = bn->running_mean.to_vector<double>(), var = bn->running_var.to_vector<double>();
  const std::vector<double> gamma =
      bn->weight.defined() ? bn->weight.to_vector<double>() : std::vector<double>(l.out, 1.0);
  const std::vector<double> beta = bn->bias.defined() ? bn->bias.to_vector<double>() : std::vector<double>(l.out, 0.0);
  l.scale.resize(static_cast<size_t>(l.out));
  l.shift.resize(static_cast<size_t>(l.out));
  // eval batch norm: (y - mean) / sqrt(var + eps) * gamma + beta = y * scale + shift, folded in double.
  for (size_t c = 0; c < l.scale.size(); ++c) {
    const double s = gamma[c] / std::sqrt(var[c] + bn->options.eps);
    l.scale[c] = static_cast<float>(s);
    l.shift[c] = static_cast<float>(beta[c] - mean[c] * s);
  }
}

PackedLayer pack_conv(const nn::ModulePtr& m, const nn::BatchNorm2d* bn, const std::string& name) {
  auto* q = dynamic_cast<QuantConv2d*>(m.get());
  MINIDL_CHECK(q != nullptr, "quant::pack: layer '", name, "' is a ", m ? m->type_name() : std::string("null"),
               ", not a QuantConv2d (build the model with quant::make_quant_resnet_cifar)");
  MINIDL_CHECK(!q->bias.defined(), "quant::pack: layer '", name, "': a conv bias is not supported");
  PackedLayer l;
  l.name = name;
  l.in = q->geometry.in_channels;
  l.out = q->geometry.out_channels;
  l.kernel = q->geometry.kernel;
  l.stride = q->geometry.stride;
  l.padding = q->geometry.padding;
  fill_weights(l, q->weight, q->act_alpha, q->spec, *q->weight_quant);
  fold_bn(l, bn);
  return l;
}

}  // namespace

PackedResNet pack(const nn::ResNet& model) {
  MINIDL_CHECK(model.kind == nn::ResNet::Kind::Cifar, "quant::pack: only the CIFAR ResNets (resnet20/32/56) pack");
  PackedResNet p;
  p.in_channels = model.config.in_channels;
  p.num_classes = model.config.num_classes;
  p.stem = pack_conv(model.conv1, model.bn1.get(), "conv1");
  for (size_t li = 0; li < model.layers.size(); ++li) {
    const auto children = model.layers[li]->children();
    for (size_t bi = 0; bi < children.size(); ++bi) {
      const auto* blk = dynamic_cast<const nn::BasicBlock*>(children[bi].get());
      MINIDL_CHECK(blk != nullptr, "quant::pack: layer", li + 1, ".", bi, " is not a BasicBlock");
      PackedBlock b;
      b.name = "layer" + std::to_string(li + 1) + "." + std::to_string(bi);
      b.in_planes = blk->in_planes;
      b.planes = blk->planes;
      b.stride = blk->stride;
      b.conv1 = pack_conv(blk->conv1, blk->bn1.get(), b.name + ".conv1");
      b.conv2 = pack_conv(blk->conv2, blk->bn2.get(), b.name + ".conv2");
      if (blk->downsample) {
        const auto ds = blk->downsample->children();
        MINIDL_CHECK(ds.size() == 2, "quant::pack: ", b.name, ".downsample must be conv + batch norm");
        b.shortcut = PackedBlock::Shortcut::Conv;
        b.downsample = pack_conv(ds[0], dynamic_cast<const nn::BatchNorm2d*>(ds[1].get()), b.name + ".downsample.0");
      } else {
        b.shortcut = blk->pad_shortcut ? PackedBlock::Shortcut::Pad : PackedBlock::Shortcut::Identity;
      }
      if (p.description.empty()) {
        if (auto* q = dynamic_cast<QuantConv2d*>(blk->conv1.get())) p.description = q->spec.str();
      }
      p.blocks.push_back(std::move(b));
    }
  }
  auto* fc = dynamic_cast<QuantLinear*>(model.fc.get());
  MINIDL_CHECK(fc != nullptr, "quant::pack: the fc is a ", model.fc ? model.fc->type_name() : std::string("null"),
               ", not a QuantLinear");
  p.fc.name = "fc";
  p.fc.linear = true;
  p.fc.in = fc->geometry.in_features;
  p.fc.out = fc->geometry.out_features;
  fill_weights(p.fc, fc->weight, fc->act_alpha, fc->spec, *fc->weight_quant);
  p.fc.scale.assign(static_cast<size_t>(p.fc.out), 1.0f);
  p.fc.shift =
      fc->bias.defined() ? fc->bias.to_vector<float>() : std::vector<float>(static_cast<size_t>(p.fc.out), 0.0f);
  p.prepare();
  return p;
}

PackedSizes measure_sizes(const nn::Module& model, const std::string& packed_path, const std::string& scratch_path) {
  PackedSizes s;
  TensorMap sd;
  for (const auto& [k, t] : model.state_dict()) sd[k] = t.dtype() == DType::f64 ? t.to(DType::f32) : t;
  save_safetensors(scratch_path, sd);
  s.fp32 = static_cast<int64_t>(std::filesystem::file_size(scratch_path));
  std::filesystem::remove(scratch_path);
  s.packed = static_cast<int64_t>(std::filesystem::file_size(packed_path));
  return s;
}

}  // namespace minidl::quant
