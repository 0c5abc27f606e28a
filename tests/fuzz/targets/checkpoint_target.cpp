// Fuzz target: a safetensors checkpoint loaded into models the way the programs load one: the "model." prefix
// of cifar_resnet20's checkpoints stripped (a bare state dict otherwise), then a strict and a non-strict
// load_state_dict into a float ResNet-20, quant::load_checkpoint and quant::load_progressive into a 4-bit APoT
// ResNet-20, and quant::config_from_metadata on the metadata. After a load that succeeded, every entry the model
// took must hold the checkpoint's values (cast to the model's dtype).
#include <cstring>
#include <memory>

#include "fuzz_targets.h"
#include "nn/models/resnet.h"
#include "quant/checkpoint.h"
#include "quant/quant_resnet.h"
#include "tensor/safetensors.h"

namespace minidl::fuzz {
namespace {

// Every state entry of `model` that `state` has must now equal it, byte for byte after the dtype cast.
// Returns how many entries were compared.
size_t require_loaded(const nn::Module& model, const TensorMap& state) {
  size_t matched = 0;
  for (const auto& [name, t] : model.state_dict()) {
    auto it = state.find(name);
    if (it == state.end()) continue;
    ++matched;
    FUZZ_REQUIRE(it->second.sizes() == t.sizes(), "'", name, "' loaded with shape ", shape_str(it->second.sizes()),
                 " into ", shape_str(t.sizes()));
    const Tensor want = it->second.to(t.dtype()).contiguous();
    const Tensor have = t.detach().contiguous();
    FUZZ_REQUIRE(std::memcmp(want.raw_data(), have.raw_data(), have.nbytes()) == 0, "'", name,
                 "' does not hold the checkpoint's values after the load");
  }
  return matched;
}

}  // namespace

Outcome fuzz_checkpoint(const uint8_t* data, size_t size) {
  Outcome out;
  SafetensorsFile file;
  attempt(out, [&] { file = load_safetensors(data, size, "fuzz-checkpoint"); });
  if (out.accepted == 0) return out;

  TensorMap model_state;
  for (const auto& [key, t] : file.tensors)
    if (key.rfind("model.", 0) == 0) model_state[key.substr(6)] = t;
  if (model_state.empty()) model_state = file.tensors;

  // Built once: construction (initialising 270k weights) would dominate the run time. A load that throws
  // leaves a model unchanged, and one that succeeds only changes values, so reuse is sound.
  static const std::shared_ptr<nn::ResNet> float_net = nn::resnet20();
  static const std::shared_ptr<nn::ResNet> quant_net = quant::make_quant_resnet_cifar(20, quant::QuantConfig::apot(4));

  attempt(out, [&] {
    float_net->load_state_dict(model_state, /*strict=*/true);
    FUZZ_REQUIRE(require_loaded(*float_net, model_state) == model_state.size(), "strict load skipped entries");
  });
  attempt(out, [&] {
    const nn::LoadResult r = float_net->load_state_dict(model_state, /*strict=*/false);
    const size_t matched = require_loaded(*float_net, model_state);
    FUZZ_REQUIRE(matched + r.unexpected_keys.size() == model_state.size(), matched, " matched + ",
                 r.unexpected_keys.size(), " unexpected of ", model_state.size());
  });
  attempt(out, [&] {
    quant::load_checkpoint(*quant_net, model_state);
    FUZZ_REQUIRE(require_loaded(*quant_net, model_state) == model_state.size(), "strict load skipped entries");
  });
  attempt(out, [&] {
    quant::load_progressive(*quant_net, model_state);
    require_loaded(*quant_net, model_state);
  });
  attempt(out, [&] {
    const quant::QuantConfig cfg = quant::config_from_metadata(file.metadata);
    FUZZ_REQUIRE(cfg.body.weight_bits > 0, "config_from_metadata gave ", cfg.body.weight_bits, " weight bits");
  });
  return out;
}

}  // namespace minidl::fuzz
