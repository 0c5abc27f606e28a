// See checkpoint_file.h.
#include "checkpoint_file.h"

#include <filesystem>

namespace minidl_examples {

using namespace minidl;

void save_checkpoint_file(const std::string& path, const std::string& format, const nn::Module& model,
                          const optim::Optimizer& opt, const optim::LRScheduler& sched, int64_t next_epoch,
                          double best_acc, const std::string& config_json) {
  TensorMap all;
  for (auto& [k, v] : model.state_dict()) all["model." + k] = v;
  for (auto& [k, v] : opt.state_dict()) all["optimizer." + k] = v;
  for (auto& [k, v] : sched.state_dict()) all["scheduler." + k] = v;
  save_safetensors(path, all,
                   {{"format", format},
                    {"next_epoch", std::to_string(next_epoch)},
                    {"best_acc", std::to_string(best_acc)},
                    {"config", config_json}});
}

CheckpointContents load_checkpoint_file(const std::string& path_in) {
  std::string path = path_in;
  if (std::filesystem::is_directory(path)) path = (std::filesystem::path(path) / "last.safetensors").string();
  SafetensorsFile f = load_safetensors(path);
  CheckpointContents ck;
  ck.metadata = f.metadata;
  bool prefixed = false;
  auto strip = [](const std::string& k, const std::string& prefix) { return k.substr(prefix.size()); };
  for (auto& [k, v] : f.tensors) {
    if (k.rfind("model.", 0) == 0) {
      ck.model[strip(k, "model.")] = v;
      prefixed = true;
    } else if (k.rfind("optimizer.", 0) == 0) {
      ck.optimizer[strip(k, "optimizer.")] = v;
    } else if (k.rfind("scheduler.", 0) == 0) {
      ck.scheduler[strip(k, "scheduler.")] = v;
    }
  }
  if (!prefixed) ck.model = f.tensors;
  if (auto it = f.metadata.find("config"); it != f.metadata.end()) ck.config_json = it->second;
  if (auto it = f.metadata.find("next_epoch"); it != f.metadata.end()) ck.next_epoch = std::stoll(it->second);
  if (auto it = f.metadata.find("best_acc"); it != f.metadata.end()) ck.best_acc = std::stod(it->second);
  return ck;
}

}  // namespace minidl_examples
