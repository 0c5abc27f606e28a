// See cpu_isa.h. The host is probed once (cpuid via __builtin_cpu_supports); the cap is read from the
// environment once and may be overridden by tests at any time, so the active level is computed on each call
// (an atomic load and a compare: callers ask once per kernel launch, not per element).
#include "core/cpu_isa.h"

#include <algorithm>
#include <atomic>
#include <cctype>

#include "core/env.h"
#include "core/error.h"

namespace minidl::cpu {
namespace {

std::atomic<int> g_cap_override{-1};  // -1: follow MINIDL_CPU_ISA

int env_cap() {
  static const int cap = [] {
    const auto v = env_string("MINIDL_CPU_ISA");
    if (!v || *v == "auto") return static_cast<int>(CpuIsa::Avx512);
    return static_cast<int>(parse_isa(*v));
  }();
  return cap;
}

}  // namespace

const char* isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Baseline: return "baseline";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Avx512: return "avx512";
  }
  return "?";
}

CpuIsa parse_isa(const std::string& name) {
  std::string s = name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "baseline") return CpuIsa::Baseline;
  if (s == "avx2") return CpuIsa::Avx2;
  if (s == "avx512") return CpuIsa::Avx512;
  MINIDL_FAIL("MINIDL_CPU_ISA must be 'baseline', 'avx2', 'avx512' or 'auto', got '", name, "'");
}

CpuIsa host_isa() {
  static const CpuIsa isa = [] {
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    return avx512 ? CpuIsa::Avx512 : avx2 ? CpuIsa::Avx2 : CpuIsa::Baseline;
  }();
  return isa;
}

CpuIsa active_isa() {
  const int o = g_cap_override.load(std::memory_order_relaxed);
  const int cap = o >= 0 ? o : env_cap();
  return static_cast<CpuIsa>(std::min(static_cast<int>(host_isa()), cap));
}

void set_cpu_isa_cap(std::optional<CpuIsa> cap) {
  g_cap_override.store(cap ? static_cast<int>(*cap) : -1, std::memory_order_relaxed);
}

std::optional<CpuIsa> cpu_isa_cap_override() {
  const int o = g_cap_override.load(std::memory_order_relaxed);
  if (o < 0) return std::nullopt;
  return static_cast<CpuIsa>(o);
}

}  // namespace minidl::cpu
