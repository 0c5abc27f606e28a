// The cuda backend's settings (see cuda_settings.h): process-wide atomics, seeded from the environment once.
#include "backends/cuda_settings.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.h"

namespace minidl {
namespace {

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return false;
  const std::string s(v);
  MINIDL_CHECK(s == "0" || s == "1", name, " must be 0 or 1, got '", s, "'");
  return s == "1";
}

size_t env_workspace() {
  const char* v = std::getenv("MINIDL_CUDNN_WORKSPACE_MB");
  if (!v || !*v) return size_t{1024} << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(v, &end, 10);
  MINIDL_CHECK(end && *end == '\0' && mb >= 0, "MINIDL_CUDNN_WORKSPACE_MB must be a non-negative integer, got '", v,
               "'");
  return static_cast<size_t>(mb) << 20;
}

struct Settings {
  std::atomic<bool> tf32{env_flag("MINIDL_CUDA_TF32")};
  std::atomic<bool> deterministic{env_flag("MINIDL_CUDA_DETERMINISTIC")};
  std::atomic<bool> benchmark{env_flag("MINIDL_CUDNN_BENCHMARK")};
  std::atomic<size_t> workspace{env_workspace()};
};

Settings& settings() {
  static Settings s;
  return s;
}

std::string mib(size_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  return buf;
}

}  // namespace

bool cuda_allow_tf32() { return settings().tf32; }
void set_cuda_allow_tf32(bool on) { settings().tf32 = on; }
bool cuda_deterministic() { return settings().deterministic; }
void set_cuda_deterministic(bool on) { settings().deterministic = on; }
bool cudnn_benchmark() { return settings().benchmark; }
void set_cudnn_benchmark(bool on) { settings().benchmark = on; }
size_t cudnn_workspace_limit() { return settings().workspace; }
void set_cudnn_workspace_limit(size_t bytes) { settings().workspace = bytes; }

AllocatorStats cuda_memory_stats() { return allocator_for(Device::cuda(0)).stats(); }

std::string cuda_memory_summary() {
  const AllocatorStats s = cuda_memory_stats();
  return "live " + mib(s.live_bytes) + ", peak " + mib(s.peak_bytes) + ", reserved " + mib(s.reserved_bytes);
}

void cuda_reset_peak_memory() { allocator_for(Device::cuda(0)).reset_peak(); }
void cuda_empty_cache() { allocator_for(Device::cuda(0)).empty_cache(); }

}  // namespace minidl
