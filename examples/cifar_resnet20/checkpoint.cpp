// Checkpoint layout by key prefix and metadata; see checkpoint.h.
#include "checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

namespace cifar_resnet20 {

using namespace minidl;
namespace fs = std::filesystem;

namespace {

void put(TensorMap& out, const std::string& prefix, const TensorMap& in) {
  for (auto& [k, v] : in) out[prefix + k] = v;
}

// Doubles go into the metadata as hex floats, so a resumed run continues from exactly the same value (a
// decimal best accuracy rounded to 6 digits could make a later epoch's "is it the best?" flip).
std::string exact(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}

// Reads an optional metadata number; a malformed value is an error naming the checkpoint and the key.
template <class T>
void get(const Metadata& meta, const std::string& key, T& out, const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end()) return;
  const char* s = it->second.c_str();
  char* end = nullptr;
  errno = 0;
  if constexpr (std::is_floating_point_v<T>) {
    out = std::strtod(s, &end);
  } else if constexpr (std::is_signed_v<T>) {
    out = static_cast<T>(std::strtoll(s, &end, 10));
  } else {
    out = static_cast<T>(std::strtoull(s, &end, 10));
  }
  MINIDL_CHECK(end != s && *end == '\0' && errno == 0, "checkpoint ", path, ": metadata '", key, "' is not a number: '",
               it->second, "'");
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& opt,
                     const optim::LRScheduler& sched, const TrainState& st, const Config& c) {
  TensorMap all;
  put(all, "model.", model.state_dict());
  put(all, "optimizer.", opt.state_dict());
  put(all, "scheduler.", sched.state_dict());
  const Generator& gen = default_generator();
  Metadata meta{{"format", "minidl-cifar-resnet/2"},
                {"next_epoch", std::to_string(st.next_epoch)},
                {"next_step", std::to_string(st.next_step)},
                {"best_acc", exact(st.best_acc)},
                {"epoch_loss_sum", exact(st.loss_sum)},
                {"epoch_seen", std::to_string(st.seen)},
                {"epoch_correct", std::to_string(st.correct)},
                {"epoch_train_seconds", exact(st.train_seconds)},
                {"rng_seed", std::to_string(gen.seed())},
                {"rng_offset", std::to_string(gen.offset())},
                {"arch", c.arch},
                {"config", c.to_json()}};
  save_safetensors(path, all, meta);
}

Checkpoint load_checkpoint(const std::string& path_in) {
  std::string path = path_in;
  if (fs::is_directory(path)) path = (fs::path(path) / "last.safetensors").string();
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
  const Metadata& m = f.metadata;
  if (auto it = m.find("config"); it != m.end()) ck.config = Config::from_json(it->second);
  TrainState& st = ck.state;
  get(m, "next_epoch", st.next_epoch, path);
  get(m, "next_step", st.next_step, path);
  get(m, "best_acc", st.best_acc, path);
  get(m, "epoch_loss_sum", st.loss_sum, path);
  get(m, "epoch_seen", st.seen, path);
  get(m, "epoch_correct", st.correct, path);
  get(m, "epoch_train_seconds", st.train_seconds, path);
  st.has_rng = m.count("rng_seed") && m.count("rng_offset");
  get(m, "rng_seed", st.rng_seed, path);
  get(m, "rng_offset", st.rng_offset, path);
  MINIDL_CHECK(st.next_epoch >= 0 && st.next_step >= 0 && st.seen >= 0 && st.correct >= 0, "checkpoint ", path,
               ": negative training position or counts in its metadata");
  return ck;
}

void remove_stale_temporaries(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    for (const char* prefix : {"last.safetensors.tmp", "best.safetensors.tmp", "metrics.csv.tmp"}) {
      if (name.rfind(prefix, 0) == 0 && entry.is_regular_file()) {
        std::error_code ec;
        fs::remove(entry.path(), ec);
        if (!ec) std::printf("=> removed %s, left by a run that was killed while saving\n", name.c_str());
      }
    }
  }
}

}  // namespace cifar_resnet20
