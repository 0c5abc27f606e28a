// Checkpoint layout by key prefix; see checkpoint.h.
#include "checkpoint.h"

#include <filesystem>

namespace cifar_resnet20 {

using namespace minidl;

namespace {
void put(TensorMap& out, const std::string& prefix, const TensorMap& in) {
  for (auto& [k, v] : in) out[prefix + k] = v;
}
}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& opt,
                     const optim::LRScheduler& sched, const TrainState& st, const Config& c) {
  TensorMap all;
  put(all, "model.", model.state_dict());
  put(all, "optimizer.", opt.state_dict());
  put(all, "scheduler.", sched.state_dict());
  Metadata meta{{"format", "minidl-cifar-resnet/1"},
                {"next_epoch", std::to_string(st.next_epoch)},
                {"best_acc", std::to_string(st.best_acc)},
                {"arch", c.arch},
                {"config", c.to_json()}};
  save_safetensors(path, all, meta);
}

Checkpoint load_checkpoint(const std::string& path_in) {
  std::string path = path_in;
  if (std::filesystem::is_directory(path)) path = (std::filesystem::path(path) / "last.safetensors").string();
  SafetensorsFile f = load_safetensors(path);
  Checkpoint ck;
  ck.metadata = f.metadata;
  bool prefixed = false;
  for (auto& [k, v] : f.tensors) {
    if (k.rfind("model.", 0) == 0) {
      ck.model[k.substr(6)] = v, prefixed = true;
    } else if (k.rfind("optimizer.", 0) == 0) {
      ck.optimizer[k.substr(10)] = v;
    } else if (k.rfind("scheduler.", 0) == 0) {
      ck.scheduler[k.substr(10)] = v;
    }
  }
  if (!prefixed) ck.model = f.tensors;  // a bare state dict
  if (auto it = f.metadata.find("config"); it != f.metadata.end()) ck.config = Config::from_json(it->second);
  if (auto it = f.metadata.find("next_epoch"); it != f.metadata.end()) ck.state.next_epoch = std::stoll(it->second);
  if (auto it = f.metadata.find("best_acc"); it != f.metadata.end()) ck.state.best_acc = std::stod(it->second);
  return ck;
}

}  // namespace cifar_resnet20
