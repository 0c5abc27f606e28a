// The target table and the scratch-file helper of fuzz_targets.h.
#include "fuzz_targets.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>

namespace minidl::fuzz {

const std::vector<Target>& all_targets() {
  static const std::vector<Target> targets = {
      {"safetensors", &fuzz_safetensors},
      {"checkpoint", &fuzz_checkpoint},
      {"idx_raw", &fuzz_idx},
      {"idx_gzip", &fuzz_idx},
      {"cifar", &fuzz_cifar},
      {"jpeg", &fuzz_image},
      {"png", &fuzz_image},
      {"packed", &fuzz_packed},
  };
  return targets;
}

namespace {

// Removes the scratch files at exit (a leftover per fuzzing process would pile up in /dev/shm).
struct ScratchFiles {
  std::map<std::string, std::string> paths;
  ~ScratchFiles() {
    for (const auto& [tag, path] : paths) std::remove(path.c_str());
  }
};

}  // namespace

std::string scratch_file(const std::string& tag, const uint8_t* data, size_t size) {
  static ScratchFiles files;
  auto it = files.paths.find(tag);
  if (it == files.paths.end()) {
    std::error_code ec;
    const std::string dir =
        std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : std::filesystem::temp_directory_path().string();
    const std::string path = dir + "/minidl-fuzz-" + std::to_string(::getpid()) + "-" + tag;
    it = files.paths.emplace(tag, path).first;
  }
  std::FILE* f = std::fopen(it->second.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("fuzz: cannot create the scratch file " + it->second);
  const bool written = size == 0 || std::fwrite(data, 1, size, f) == size;
  const bool ok = std::fclose(f) == 0 && written;
  if (!ok) throw std::runtime_error("fuzz: cannot write the scratch file " + it->second);
  return it->second;
}

}  // namespace minidl::fuzz
