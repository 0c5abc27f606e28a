// Quantized ResNet builders (see quant_resnet.h).
#include "quant/quant_resnet.h"

#include <cctype>

#include "quant/quant_layers.h"

namespace minidl::quant {

QuantSpec QuantConfig::spec_for(const std::string& name) const {
  QuantSpec s;
  if (name == "conv1" || name == "fc") {
    s = edges == EdgeLayers::Int8 ? QuantSpec::first_last_int8(body.semantics) : QuantSpec::full_precision();
  } else {
    s = body;
  }
  size_t best = 0;
  for (const auto& [key, spec] : per_layer) {
    const bool match = name == key || (name.size() > key.size() && name.compare(0, key.size(), key) == 0 &&
                                       name[key.size()] == '.');
    if (match && key.size() >= best) {
      best = key.size();
      s = spec;
    }
  }
  return s;
}

QuantConfig QuantConfig::apot(int bits, Semantics sem) {
  QuantConfig c;
  c.body = bits == 32 ? QuantSpec::full_precision() : QuantSpec::same(Scheme::APoT, bits, sem);
  c.body.semantics = sem;
  return c;
}

QuantConfig QuantConfig::from_scheme(const std::string& scheme, int bits, int act_bits, Semantics sem,
                                     bool binary_from_optimizer) {
  std::string n;
  for (char ch : scheme) n += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  QuantConfig c;
  QuantSpec& s = c.body;
  s = QuantSpec::full_precision();
  s.semantics = sem;
  s.weight_bits = bits;
  s.act_bits = act_bits;
  if (n == "apot" || n == "pot" || n == "uniform") {
    const Scheme sc = parse_scheme(n);
    s.weight = sc == Scheme::APoT ? WeightQuant::APoT : sc == Scheme::PoT ? WeightQuant::PoT : WeightQuant::Uniform;
    s.act = sc == Scheme::APoT ? ActQuant::APoT : sc == Scheme::PoT ? ActQuant::PoT : ActQuant::Uniform;
  } else if (n == "pact") {
    s.weight = WeightQuant::Uniform;
    s.act = ActQuant::PACT;
  } else if (n == "binary") {
    MINIDL_CHECK(bits == 1 || bits == 32, "binary: weight bit width ", bits, " is not supported (valid: 1, or 32)");
    s.weight = WeightQuant::Binary;
    s.act = ActQuant::PACT;
    s.binary_from_optimizer = binary_from_optimizer;
    c.edges = EdgeLayers::Float;
  } else {
    MINIDL_FAIL("quant: unknown scheme '", scheme, "' (valid: apot, pot, uniform, pact, binary)");
  }
  s.validate();
  return c;
}

void QuantConfig::set_stage_act_bits(int stage, int act_bits) {
  MINIDL_CHECK(stage >= 1 && stage <= 4, "quant: stage ", stage, " does not exist (valid: 1..4)");
  QuantSpec s = body;
  s.act_bits = act_bits;
  if (s.act == ActQuant::Float && act_bits != 32) s.act = ActQuant::PACT;
  s.validate();
  per_layer["layer" + std::to_string(stage)] = s;
}

namespace {
nn::ResNetConfig factories(const QuantConfig& cfg) {
  nn::ResNetConfig rc;
  rc.in_channels = cfg.in_channels;
  rc.num_classes = cfg.num_classes;
  rc.shortcut = cfg.shortcut;
  rc.conv = [cfg](const nn::ConvSpec& s) -> nn::ModulePtr {
    return std::make_shared<QuantConv2d>(s, cfg.spec_for(s.name));
  };
  rc.linear = [cfg](const nn::LinearSpec& s) -> nn::ModulePtr {
    return std::make_shared<QuantLinear>(s, cfg.spec_for(s.name));
  };
  return rc;
}
}  // namespace

std::shared_ptr<nn::ResNet> make_quant_resnet_cifar(int64_t depth, const QuantConfig& cfg) {
  nn::ResNetConfig rc = factories(cfg);
  rc.depth = depth;
  return nn::resnet_cifar(rc);
}

std::shared_ptr<nn::ResNet> make_quant_resnet_imagenet(int64_t depth, const QuantConfig& cfg) {
  MINIDL_CHECK(depth == 18 || depth == 34, "quant::make_quant_resnet_imagenet: depth ", depth,
               " is not supported (valid: 18, 34)");
  nn::ResNetConfig rc = factories(cfg);
  return depth == 18 ? nn::resnet18(rc) : nn::resnet34(rc);
}

std::vector<std::string> describe_layers(const nn::Module& model) {
  std::vector<std::string> out;
  for (const auto& [name, m] : model.named_modules()) {
    if (auto c = std::dynamic_pointer_cast<QuantConv2d>(m)) out.push_back(name + ": " + c->spec.str());
    else if (auto l = std::dynamic_pointer_cast<QuantLinear>(m)) out.push_back(name + ": " + l->spec.str());
  }
  return out;
}

QuantConfig config_from_metadata(const Metadata& meta) {
  auto it = meta.find("bit");
  MINIDL_CHECK(it != meta.end(), "quant::config_from_metadata: the checkpoint metadata has no 'bit' entry");
  int bits = 0;
  try {
    size_t used = 0;
    bits = std::stoi(it->second, &used);
    MINIDL_CHECK(used == it->second.size(), "");
  } catch (...) {
    MINIDL_FAIL("quant::config_from_metadata: 'bit' is '", it->second, "', not a bit width");
  }
  auto s = meta.find("semantics");
  const Semantics sem = s == meta.end() ? Semantics::APoT_I : parse_semantics(s->second);
  return QuantConfig::apot(bits, sem);
}

}  // namespace minidl::quant
