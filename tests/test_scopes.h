// Scope guards the unit tests share: each sets one process-wide setting for a scope and restores what was there,
// so a failing CHECK cannot leak a backend, an ISA cap or a thread count into the next test case.
#pragma once

#include <optional>
#include <string>

#include "backends/backend.h"
#include "core/cpu_isa.h"
#include "core/threads.h"

namespace minidl::test {

/// Selects the CPU backend ("cpu" or "ref") for a scope.
struct BackendScope {
  std::string saved = cpu_backend_name();
  explicit BackendScope(const std::string& name) { set_cpu_backend(name); }
  ~BackendScope() { set_cpu_backend(saved); }
  BackendScope(const BackendScope&) = delete;
  BackendScope& operator=(const BackendScope&) = delete;
};

/// Goes back to the environment's ISA cap (MINIDL_CPU_ISA) when the scope ends; set the cap inside with
/// cpu::set_cpu_isa_cap.
struct CapGuard {
  CapGuard() = default;
  ~CapGuard() { cpu::set_cpu_isa_cap(std::nullopt); }
  CapGuard(const CapGuard&) = delete;
  CapGuard& operator=(const CapGuard&) = delete;
};

/// Sets the OpenMP thread count for a scope.
struct ThreadsGuard {
  int saved = get_num_threads();
  explicit ThreadsGuard(int n) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(saved); }
  ThreadsGuard(const ThreadsGuard&) = delete;
  ThreadsGuard& operator=(const ThreadsGuard&) = delete;
};

}  // namespace minidl::test
